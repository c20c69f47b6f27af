"""A pre-warmed parent that forks Python runtimes: why our cold starts are cheap.

Starting Python and importing a runtime costs tens of milliseconds, most of it the same work
every time. AWS attacks the same cost with Firecracker snapshots (SnapStart resumes a microVM
that has already initialised). We do the small-scale version: one "zygote" process per lab
imports ``lambda_lab.runtime`` once, then *forks* a copy of itself for each new environment.
The copy only has to set its environment variables, working directory and output pipes and
call :func:`lambda_lab.runtime.main`; your handler's import (the function init) still happens
in the child, as in Lambda.

Protocol (a ``SOCK_SEQPACKET`` Unix socket pair, one message per packet): the lab sends
``{"env": {...}, "cwd": "..."}`` with the child's stdout and stderr write ends attached
(``SCM_RIGHTS``); the zygote answers ``{"pid": N}``, and later ``{"exited": N, "code": C}`` when
that child exits. Linux only; elsewhere the lab spawns ``python -m lambda_lab.runtime``.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from .process import RuntimeProcess, output_pipes, set_parent_death_signal

__all__ = ["ForkServer", "available"]

MAX_MESSAGE = 1 << 20


def available() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


# -- the lab's side -------------------------------------------------------------------------
class ForkServer:
    """The lab's handle on its zygote. Create and use on the lab's IOLoop thread."""

    def __init__(self) -> None:
        self._sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "lambda_lab.zygote", str(child_sock.fileno())],
            pass_fds=[child_sock.fileno()], env=env, stdin=subprocess.DEVNULL,
            preexec_fn=set_parent_death_signal, cwd=package_root,
        )
        child_sock.close()
        self._sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._send_lock = asyncio.Lock()
        self._waiting: deque[tuple[asyncio.Future[RuntimeProcess], int, int]] = deque()
        self._children: dict[int, RuntimeProcess] = {}
        self._loop.add_reader(self._sock.fileno(), self._on_message)

    async def fork(self, *, env: Mapping[str, str], cwd: str) -> RuntimeProcess:
        """A new runtime process with ``env`` and ``cwd``, already past the runtime's imports."""
        request = json.dumps({"env": dict(env), "cwd": cwd}).encode()
        started: asyncio.Future[RuntimeProcess] = self._loop.create_future()
        with output_pipes() as ((out_r, out_w), (err_r, err_w)):
            # One sender at a time, so requests and their answers stay in the same order.
            async with self._send_lock:
                await self._send(request, [out_w, err_w])
                self._waiting.append((started, out_r, err_r))
        return await started

    async def _send(self, request: bytes, fds: list[int]) -> None:
        """Send one request, waiting while the socket's buffer is full (a burst of forks)."""
        while True:
            try:
                socket.send_fds(self._sock, [request], fds)
                return
            except BlockingIOError:
                writable = self._loop.create_future()
                self._loop.add_writer(self._sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    self._loop.remove_writer(self._sock.fileno())

    def _on_message(self) -> None:
        try:
            data = self._sock.recv(MAX_MESSAGE)
        except BlockingIOError:
            return
        if not data:  # the zygote died: nothing more will start or be reported
            self._loop.remove_reader(self._sock.fileno())
            for started, out_r, err_r in self._waiting:
                os.close(out_r)
                os.close(err_r)
                if not started.done():
                    started.set_exception(RuntimeError("the fork server exited"))
            self._waiting.clear()
            return
        message = json.loads(data)
        if "pid" in message:
            started, out_r, err_r = self._waiting.popleft()
            process = RuntimeProcess(message["pid"], out_r, err_r)
            self._children[process.pid] = process
            if not started.done():
                started.set_result(process)
        elif "exited" in message:
            child = self._children.pop(message["exited"], None)
            if child is not None:
                child.set_exit(message["code"])

    def close(self) -> None:
        """Stop the zygote; its children are stopped by their environments first."""
        try:
            self._loop.remove_reader(self._sock.fileno())
        except (ValueError, OSError):
            pass
        self._sock.close()
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()


# -- the zygote's side ----------------------------------------------------------------------
def _child(sock: socket.socket, env: dict[str, str], cwd: str, out_fd: int, err_fd: int) -> None:
    """In the forked child: become a fresh runtime process, then run the runtime loop."""
    from . import runtime

    sock.close()
    os.setsid()  # own process group, as spawned runtimes have
    set_parent_death_signal()  # dies with the zygote, which dies with the lab
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    for fd in (devnull, out_fd, err_fd):
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [runtime.__file__]
    try:
        runtime.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    else:
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _serve(fd: int) -> None:
    set_parent_death_signal()
    from . import runtime  # noqa: F401  (the point: imported once, shared by every fork)

    # The runtime's first connect resolves "127.0.0.1"; doing it once here loads the C library's
    # name-service modules before forking, instead of once per child (about 2 ms each).
    socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    # Likewise, the first header parse and JSON round trip set up caches every child would redo.
    http.client.parse_headers(io.BytesIO(b"Content-Type: application/json\r\n\r\n"))
    json.loads(json.dumps({"warm": [1]}))
    # Move everything imported so far out of the garbage collector's sight: a collection in a
    # child would otherwise write to (and so copy) every shared page of the parent.
    gc.freeze()

    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the lab's to handle
    while True:
        readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 512)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                code = os.waitstatus_to_exitcode(status)
                sock.send(json.dumps({"exited": pid, "code": code}).encode())
        if sock.fileno() in readable:
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 2)
            if not data:
                return  # the lab closed its end
            request = json.loads(data)
            pid = os.fork()
            if pid == 0:
                os.close(wake_r)
                os.close(wake_w)
                _child(sock, request["env"], request["cwd"], fds[0], fds[1])
            for received in fds:
                os.close(received)
            sock.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
