"""Starting and watching the process inside an execution environment.

In AWS every execution environment is a Firecracker microVM running your runtime. Here it is an
ordinary OS process, started in its own process group (so a shutdown reaches a bash bootstrap
*and* the ``curl`` it is running) and tied to its owner: on Linux the kernel sends it SIGKILL
when the process that started it dies (``PR_SET_PDEATHSIG``), so a killed notebook kernel never
leaves orphaned runtimes behind.

Two ways to start one, both giving a :class:`RuntimeProcess`:

* :func:`spawn` runs any command (``python -m awslambdaric``, a ``bootstrap`` executable);
* :class:`~lambda_lab.zygote.ForkServer` forks a pre-warmed Python that has already imported our
  runtime, which makes a cold start several times cheaper (see ``zygote.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

__all__ = ["RuntimeProcess", "spawn", "output_pipes", "set_parent_death_signal", "describe_exit",
           "peak_rss_mb"]

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies. No-op elsewhere."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def describe_exit(code: int | None) -> str:
    """Go-style wording AWS uses in ``Runtime.ExitError``: "exit status 1", "signal: killed"."""
    if code is None:
        return "unknown exit"
    if code < 0:
        names = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated",
                 signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted"}
        return "signal: " + names.get(-code, signal.Signals(-code).name)  # type: ignore[call-overload]
    return f"exit status {code}"


def peak_rss_mb(pid: int) -> int | None:
    """The process's peak resident memory (Linux ``VmHWM``), for REPORT's Max Memory Used."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return max(1, round(int(line.split()[1]) / 1024))
    except (OSError, ValueError):
        pass
    return None


class RuntimeProcess:
    """A started runtime process: its pid, its output pipes and a future for its exit code.

    Lives on the lab's IOLoop thread. ``exited`` resolves with the return code (negative for a
    signal, as ``subprocess`` reports it).
    """

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int) -> None:
        self.pid = pid
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def set_exit(self, code: int) -> None:
        if not self.exited.done():
            self.exited.set_result(code)

    def signal(self, sig: int) -> None:
        """Signal the whole process group (the runtime and anything it started)."""
        if self.exited.done():
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover - not our group after all
            os.kill(self.pid, sig)

    def __repr__(self) -> str:
        state = "running" if self.running else describe_exit(self.exited.result())
        return f"<RuntimeProcess pid={self.pid} {state}>"


def _child_setup() -> None:
    # Runs in the child between fork and exec: new session (own process group, no terminal),
    # and SIGKILL when the lab's server thread (which forked us) goes away.
    os.setsid()
    set_parent_death_signal()


@contextlib.contextmanager
def output_pipes() -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
    """Two pipes for a new process's stdout and stderr: ``(read, write)`` each.

    The write ends are the child's: closed here once the child has them. The read ends are
    ours, closed here only if starting the child failed.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        yield (out_r, out_w), (err_r, err_w)
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)


def spawn(argv: Sequence[str], *, env: Mapping[str, str], cwd: str) -> RuntimeProcess:
    """Start ``argv`` with its output on fresh pipes; call on the lab's IOLoop thread."""
    with output_pipes() as ((out_r, out_w), (err_r, err_w)):
        popen = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out_w,
            stderr=err_w, preexec_fn=_child_setup, close_fds=True,
        )
    process = RuntimeProcess(popen.pid, out_r, err_r)
    _watch_exit(popen, process.set_exit)
    return process


def _watch_exit(popen: subprocess.Popen[bytes], on_exit: Callable[[int], None]) -> None:
    """Call ``on_exit(code)`` on the IOLoop thread when ``popen`` exits.

    On Linux a pidfd becomes readable when the process exits, so the event loop watches it
    like a socket; elsewhere a small thread waits.
    """
    loop = asyncio.get_running_loop()
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(popen.pid)
        except OSError:
            pidfd = -1
        if pidfd >= 0:
            def reap() -> None:
                loop.remove_reader(pidfd)
                os.close(pidfd)
                on_exit(popen.wait())

            loop.add_reader(pidfd, reap)
            return

    def wait() -> None:
        code = popen.wait()
        loop.call_soon_threadsafe(on_exit, code)

    threading.Thread(target=wait, name=f"wait-{popen.pid}", daemon=True).start()
