"""One execution environment: a runtime process, its Runtime API endpoint, and its lifecycle.

AWS runs each function in execution environments that go through three phases ("Lambda
execution environment lifecycle"): **Init** (start the runtime, import your code), **Invoke**
(one event at a time, as many times as the environment lives) and **Shutdown**. Here an
environment is a process plus its own listening socket on 127.0.0.1; the process finds that
socket in ``AWS_LAMBDA_RUNTIME_API``, exactly as in Lambda, and pulls events from it::

    initializing ──first `next`──► idle ◄──answer── busy
         │                          │ └──event sent──┘ │
         └──init error───► shutting down ◄──idle/timeout/crash/close

An environment never serves two invocations at once: that single fact is why concurrency in
Lambda means "number of environments". All methods run on the lab's IOLoop thread.
"""

from __future__ import annotations

import asyncio
import enum
import json
import math
import os
import signal
import socket
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer

from . import process as proc
from .config import INIT_TIMEOUT_S, FunctionConfig
from .events import EventLog
from .runtime_api import StateError, make_app

__all__ = ["ExecutionEnvironment", "State", "Invocation", "Answer", "InitFailed"]

SHUTDOWN_GRACE_S = 0.5  # AWS: SIGTERM, then SIGKILL ~300-500 ms later ("Shutdown phase")
LOG_TAIL_BYTES = 4096  # X-Amz-Log-Result carries the last 4 KB ("Invoke", API reference)
GRACEFUL_REASONS = ("idle", "close")


class State(str, enum.Enum):
    """The lifecycle states of an execution environment (see the diagram above)."""

    INITIALIZING = "initializing"
    IDLE = "idle"
    BUSY = "busy"
    SHUTTING_DOWN = "shutting down"
    GONE = "gone"


class InitFailed(Exception):
    """The Init phase failed; ``body`` is the error the waiting invocation receives."""

    def __init__(self, error_type: str, message: str, body: dict[str, Any] | None = None):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.body = body or {"errorType": error_type, "errorMessage": message}
        self.env_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """One event on its way to a runtime."""

    request_id: str
    payload: bytes
    function_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None
    attempt: int = 1  # async invokes are retried: 1, 2, 3


@dataclass(frozen=True, kw_only=True)
class Answer:
    """How an invocation ended, as the environment saw it."""

    outcome: str  # success | error | timeout | crash
    body: bytes
    error_type: str | None
    cold: bool
    init_ms: float | None
    duration_ms: float
    billed_ms: int
    max_memory_mb: int | None
    log_tail: str


def new_trace_id() -> str:
    """An X-Ray style trace header ("Lambda-Runtime-Trace-Id")."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0"


class LineReader:
    """Turns a pipe from the process into ``log`` events, one per line."""

    def __init__(self, fd: int, on_line: Callable[[str], None]) -> None:
        self.fd, self.on_line, self._partial = fd, on_line, b""
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self.drain)
        self.open = True

    def drain(self) -> None:
        """Read whatever is in the pipe now (also called before END, so no line is late)."""
        while self.open:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.close()
                return
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self.on_line(line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        if self.open:
            self.open = False
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            if self._partial:
                self.on_line(self._partial.decode("utf-8", "replace"))


class ExecutionEnvironment:
    """A runtime process serving one function, one invocation at a time."""

    def __init__(
        self,
        *,
        env_id: str,
        config: FunctionConfig,
        events: EventLog,
        listener: socket.socket,
        host: str,
        region: str,
        launch: Callable[[ExecutionEnvironment, dict[str, str]], Any],
        provisioned: bool = False,
        on_gone: Callable[[ExecutionEnvironment], None] | None = None,
    ) -> None:
        self.env_id = env_id
        self.config = config
        self.events = events
        self.host = host
        self.region = region
        self.provisioned = provisioned
        self.state = State.INITIALIZING
        self.process: proc.RuntimeProcess | None = None
        self.invocations = 0
        self.last_used = time.monotonic()
        self.init_ms: float | None = None
        self.initialized = False  # True once the Init phase succeeded
        self.max_memory_mb: int | None = None
        self._listener = listener
        self.port: int = listener.getsockname()[1]
        self._launch = launch
        self._on_gone = on_gone
        self._server: HTTPServer | None = None
        self._readers: list[LineReader] = []
        self._loop = asyncio.get_running_loop()
        self._init_result: asyncio.Future[InitFailed | None] = self._loop.create_future()
        self._gone: asyncio.Future[None] = self._loop.create_future()
        self._polls: list[asyncio.Future[Invocation]] = []  # at most one live `next`
        self._pending: Invocation | None = None  # assigned, waiting for the runtime to ask
        self._current: Invocation | None = None  # sent to the runtime, not yet answered
        self._answer: asyncio.Future[tuple[str, bytes, str | None]] | None = None
        # Invocations this runtime was sent that have ended (the newest few hundred): a late
        # or second answer to one of them is a 403, an id never sent here is a 400.
        self._finished: deque[str] = deque(maxlen=512)
        self._sent_at = 0.0
        self._deadline = 0.0
        self._cold = True
        self._tail: list[str] = []
        self._log_stream = (
            f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        )

    # -- facts --------------------------------------------------------------------------
    @property
    def function(self) -> str:
        return self.config.name

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def initialization_type(self) -> str:
        """``AWS_LAMBDA_INITIALIZATION_TYPE``: how this environment came to exist."""
        return "provisioned-concurrency" if self.provisioned else "on-demand"

    @property
    def runtime_api(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"<ExecutionEnvironment {self.env_id} pid={self.pid} {self.state.value}>"

    def _event(self, kind: str, request_id: str | None = None, **fields: Any) -> None:
        self.events.append(kind, function=self.function, env=self.env_id,
                           request_id=request_id, **fields)

    def lambda_environment(self) -> dict[str, str]:
        """The variables Lambda sets ("Defined runtime environment variables")."""
        cfg = self.config
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": self.runtime_api,
            "_HANDLER": cfg.handler,
            "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self._log_stream,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "LAMBDA_TASK_ROOT": cfg.code_dir,
            "LAMBDA_RUNTIME_DIR": str(Path(__file__).resolve().parent),
            "AWS_LAMBDA_INITIALIZATION_TYPE": self.initialization_type,
        }
        if cfg.runtime != "provided":  # AWS sets it for managed runtimes only
            major, minor = sys.version_info[:2]
            env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_python{major}.{minor}"
            env["PYTHONUNBUFFERED"] = "1"  # handler output reaches the log line by line
        env.update(cfg.environment)
        return env

    # -- Init phase ---------------------------------------------------------------------
    async def start(self, request_id: str | None = None) -> None:
        """Run the Init phase; returns when the runtime first asks for an event.

        Raises :class:`InitFailed` (after shutting the environment down) when the runtime
        reports ``init/error``, exits, or does not ask within the 10 s init limit.
        """
        t0 = time.monotonic()
        self._event("env.init.start", request_id, init_delay=self.config.init_delay,
                    provisioned=self.provisioned, host=self.host,
                    initialization_type=self.initialization_type)
        self._server = HTTPServer(make_app(self), max_header_size=2 * 1024 * 1024,
                                  max_body_size=64 * 1024 * 1024)
        self._server.add_sockets([self._listener])
        failure: InitFailed | None
        try:
            if self.config.init_delay:  # simulated microVM boot and code download
                await asyncio.sleep(self.config.init_delay)
            t_process = time.monotonic()
            self.process = await self._launch(self, self.lambda_environment())
            self._readers = [LineReader(self.process.stdout_fd, self._stdout_line("stdout")),
                             LineReader(self.process.stderr_fd, self._stdout_line("stderr"))]
            self.process.exited.add_done_callback(self._on_exit)
            failure = await asyncio.wait_for(asyncio.shield(self._init_result), INIT_TIMEOUT_S)
        except asyncio.TimeoutError:
            failure = InitFailed("Sandbox.Timedout",
                                 f"Init phase timed out after {INIT_TIMEOUT_S:.2f} seconds")
        except OSError as exc:  # the runtime could not even start (e.g. bootstrap missing)
            failure = InitFailed("Runtime.InvalidEntrypoint", str(exc))
        done = time.monotonic()
        self.init_ms = (done - t0) * 1000
        if failure is not None:
            self._event("env.init.error", request_id, pid=self.pid, error_type=failure.error_type,
                        error_message=failure.body.get("errorMessage", ""),
                        init_ms=round(self.init_ms, 3))
            await self.shutdown("init_error")
            failure.env_id = self.env_id
            raise failure
        self.state = State.IDLE
        self.initialized = True
        self.last_used = done
        # A provisioned environment initialised ahead of time: no invocation waited for it.
        self._cold = not self.provisioned
        self._event("env.init.end", request_id, pid=self.pid, init_ms=round(self.init_ms, 3),
                    platform_ms=round((t_process - t0) * 1000, 3),
                    runtime_ms=round((done - t_process) * 1000, 3))

    def _stdout_line(self, stream: str) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            current = self._current or self._pending
            self._log(line, stream, current.request_id if current else None)
        return on_line

    def _log(self, line: str, stream: str, request_id: str | None) -> None:
        if request_id is not None:
            self._tail.append(line)
        self._event("log", request_id, stream=stream, line=line)

    # -- Runtime API side (called by runtime_api handlers) ------------------------------
    def poll(self) -> asyncio.Future[Invocation]:
        """``GET next``: a future that resolves with the next event for this runtime."""
        if self.state in (State.SHUTTING_DOWN, State.GONE):
            return self._loop.create_future()  # never resolves: the process is being stopped
        if self._current is not None:
            raise StateError(403, "InvalidStateTransition",
                             f"Invocation {self._current.request_id} has not been answered yet")
        if any(not p.done() for p in self._polls):
            raise StateError(403, "InvalidStateTransition", "A `next` request is already waiting")
        if not self._init_result.done():
            self._init_result.set_result(None)  # the first `next` ends the Init phase
        poll: asyncio.Future[Invocation] = self._loop.create_future()
        self._polls = [poll]
        if self._pending is not None:
            self._deliver()
        return poll

    def cancel_poll(self, poll: asyncio.Future[Invocation]) -> None:
        """The runtime hung up while waiting: that connection must never get an event."""
        if not poll.done():
            poll.cancel()
        if poll in self._polls:
            self._polls.remove(poll)

    def answer(self, request_id: str, kind: str, body: bytes, error_type: str | None) -> None:
        """``POST response`` / ``POST error`` from the runtime."""
        if self._current is None or self._current.request_id != request_id:
            if request_id in self._finished:
                raise StateError(403, "InvalidStateTransition",
                                 f"Invocation {request_id} has already been answered")
            raise StateError(400, "InvalidRequestID",
                             f"Invalid request ID: {request_id!r} was not sent to this runtime")
        self._current = None
        self._finished.append(request_id)
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((kind, body, error_type))

    def init_error(self, body: bytes, error_type: str | None) -> None:
        """``POST init/error``: allowed only before the first ``next``."""
        if self._init_result.done():
            raise StateError(403, "InvalidStateTransition",
                             "init/error is only allowed before the first `next`")
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = {}
        if not isinstance(parsed, dict):
            parsed = {}
        error_type = error_type or parsed.get("errorType") or "Runtime.Unknown"
        parsed.setdefault("errorType", error_type)
        parsed.setdefault("errorMessage", "")
        self._init_result.set_result(InitFailed(error_type, parsed["errorMessage"], parsed))

    def runtime_called(self, method: str, path: str, status: int, request_id: str | None) -> None:
        self._event("runtime.call", request_id, method=method, path=path, status=status)

    # -- Invoke phase -------------------------------------------------------------------
    async def invoke(self, invocation: Invocation) -> Answer:
        """Run one invocation to its end. The environment must be idle."""
        if self.state is not State.IDLE:
            raise RuntimeError(f"{self.env_id} is {self.state.value}, not idle")
        self.state = State.BUSY
        self._answer = self._loop.create_future()
        self._pending = invocation
        # The clock starts now, even if the runtime is slow to ask for the event (as in AWS's
        # Runtime Interface Emulator): a runtime that never polls again still times out.
        self._sent_at = time.monotonic()
        self._deadline = time.time() + self.config.timeout
        timer = self._loop.call_later(self.config.timeout, self._on_timeout, invocation)
        self._answer.add_done_callback(lambda _: timer.cancel())
        if any(not p.done() for p in self._polls):
            self._deliver()
        kind, body, error_type = await self._answer
        return self._finish(invocation, kind, body, error_type)

    def _deliver(self) -> None:
        invocation, self._pending = self._pending, None
        assert invocation is not None
        poll = next(p for p in self._polls if not p.done())
        self._polls.remove(poll)
        self._current = invocation
        self._tail = []
        self._event("invoke.start", invocation.request_id, cold=self._cold, pid=self.pid,
                    attempt=invocation.attempt)
        self._log(f"START RequestId: {invocation.request_id} Version: $LATEST", "platform",
                  invocation.request_id)
        poll.set_result(invocation)

    def deadline_ms(self) -> int:
        """Epoch milliseconds at which the current invocation times out."""
        return int(self._deadline * 1000)

    def _on_timeout(self, invocation: Invocation) -> None:
        if self._answer is None or self._answer.done():
            return
        message = (f"RequestId: {invocation.request_id} Error: Task timed out after "
                   f"{self.config.timeout:.2f} seconds")
        body = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message})
        self._pending = None  # never handed over: it must not reach the runtime later
        self._answer.set_result(("timeout", body.encode(), "Sandbox.Timedout"))

    def _finish(self, invocation: Invocation, kind: str, body: bytes,
                error_type: str | None) -> Answer:
        request_id = invocation.request_id
        duration_ms = (time.monotonic() - self._sent_at) * 1000 if self._sent_at else 0.0
        for reader in self._readers:
            reader.drain()  # lines printed before the answer belong to this invocation
        if self.pid:
            self.max_memory_mb = proc.peak_rss_mb(self.pid) or self.max_memory_mb
        cold, self._cold = self._cold, False
        init_ms = self.init_ms if cold else None
        # Since Aug 2025 AWS bills the Init phase of on-demand environments too
        # ("Understanding and Remediating Cold Starts", AWS Compute Blog); 1 ms granularity.
        billed_ms = math.ceil(duration_ms + (init_ms or 0.0) * (not self.provisioned))
        self._log(f"END RequestId: {request_id}", "platform", request_id)
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                  f"Billed Duration: {billed_ms} ms\tMemory Size: {self.config.memory_size} MB\t"
                  f"Max Memory Used: {self.max_memory_mb or 0} MB")
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        if kind == "timeout":
            report += "\tStatus: timeout"
        self._log(report, "platform", request_id)
        if kind in ("timeout", "crash"):  # ended without an answer; a late one gets a 403
            self._finished.append(request_id)
        tail = "\n".join(self._tail).encode()[-LOG_TAIL_BYTES:].decode("utf-8", "ignore")
        self._current = None
        self.invocations += 1
        self.last_used = time.monotonic()
        self._event("invoke.end", request_id, outcome=kind, duration_ms=round(duration_ms, 3),
                    billed_ms=billed_ms, max_memory_mb=self.max_memory_mb,
                    memory_size=self.config.memory_size, cold=cold,
                    init_ms=None if init_ms is None else round(init_ms, 3),
                    error_type=error_type, attempt=invocation.attempt)
        if kind in ("timeout", "crash"):
            # A timed-out or crashed environment is reset: the next invoke is a cold start.
            asyncio.ensure_future(self.shutdown(kind))
        elif self.state is State.BUSY:
            self.state = State.IDLE
        return Answer(outcome=kind, body=body, error_type=error_type, cold=cold,
                      init_ms=init_ms, duration_ms=duration_ms, billed_ms=billed_ms,
                      max_memory_mb=self.max_memory_mb, log_tail=tail)

    def _on_exit(self, exited: asyncio.Future[int]) -> None:
        code = exited.result()
        if not self._init_result.done():
            self._init_result.set_result(InitFailed(
                "Runtime.ExitError",
                f"Runtime exited with error: {proc.describe_exit(code)}"))
        elif self._answer is not None and not self._answer.done() and self.state is State.BUSY:
            request_id = self._current.request_id if self._current else "?"
            message = (f"RequestId: {request_id} Error: Runtime exited with error: "
                       f"{proc.describe_exit(code)}")
            body = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message})
            self._answer.set_result(("crash", body.encode(), "Runtime.ExitError"))
        elif self.state is State.IDLE:
            asyncio.ensure_future(self.shutdown("crash"))

    # -- Shutdown phase -----------------------------------------------------------------
    async def shutdown(self, reason: str) -> None:
        """Stop the environment: SIGTERM and a short grace for ``idle``/``close``, else SIGKILL."""
        if self.state in (State.SHUTTING_DOWN, State.GONE):
            await asyncio.shield(self._gone)
            return
        self.state = State.SHUTTING_DOWN
        self._event("env.shutdown.start", reason=reason)
        # A waiting `next` stays unanswered: the runtime gets SIGTERM while it long-polls, as in
        # Lambda, and its connection dies with the process.
        code: int | None = None
        if self.process is not None:
            if self.process.running and reason in GRACEFUL_REASONS:
                self.process.signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(self.process.exited), SHUTDOWN_GRACE_S)
                except asyncio.TimeoutError:
                    pass
            self.process.signal(signal.SIGKILL)
            code = await self.process.exited
        if self._answer is not None and not self._answer.done():
            message = f"Runtime exited with error: {proc.describe_exit(code)}"
            body = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message})
            self._answer.set_result(("crash", body.encode(), "Runtime.ExitError"))
        for poll in self._polls:
            poll.cancel()
        self._polls = []
        for reader in self._readers:
            reader.drain()
            reader.close()
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
        else:
            self._listener.close()
        self.state = State.GONE
        self._event("env.shutdown.end", exit_code=code if code is None or code >= 0 else None,
                    signal=(signal.Signals(-code).name if code is not None and code < 0
                            else None))
        self._gone.set_result(None)
        if self._on_gone is not None:
            self._on_gone(self)
