"""The lab: a miniature Lambda service running on a background thread of your notebook.

::

    from lambda_lab import Lab

    with Lab(account_concurrency=10) as lab:
        hello = lab.deploy("hello", handler="hello.handler", code_dir="handlers")
        hello.invoke({"name": "Ada"})   # cold start
        hello.invoke({"name": "Bob"})   # warm: same environment, same pid
        hello.burst(5, {"sleep": 1})   # five at once: new environments for the ones that collide

One daemon thread runs an asyncio/tornado event loop that owns everything: the Invoke API
server, the control plane (frontend, counting, assignment, placement) and every environment's
Runtime API and process. Your code talks to it from any thread through
``asyncio.run_coroutine_threadsafe``, so a cell may block in ``invoke()`` (or in ``time.sleep``)
while the simulated cloud keeps running. The event loop thread itself must never block.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import resource
import signal
import threading
import weakref
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, TypeVar, cast

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from .assignment import AssignmentService, EnvironmentInfo
from .config import FunctionConfig, LabConfig
from .counting import CountingService
from .errors import ConfigError, LabClosedError, TooManyRequestsError
from .events import EventLog
from .frontend import Frontend, InvokeResult
from .placement import PlacementService

__all__ = ["Lab", "Function"]

T = TypeVar("T")
_open_labs: weakref.WeakSet[Lab] = weakref.WeakSet()
LIVE_KEYS = ("reserved_concurrency", "provisioned_concurrency", "idle_timeout", "timeout",
             "memory_size", "environment", "init_delay", "handler")


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps({} if payload is None else payload).encode()


def raise_open_files_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE as far as the hard limit allows; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class Lab:
    """A running miniature Lambda. ``close()`` it (or use ``with``) to stop every environment."""

    def __init__(self, *, account_concurrency: int = 1000, unreserved_minimum: int | None = None,
                 scale_rate: int = 1000, retry_delays: tuple[float, ...] = (60.0, 120.0),
                 host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1") -> None:
        # The settings the lab started with; live changes (lab.account_concurrency = 5) go to
        # the counting service, which is what the lab obeys.
        self.config = LabConfig(account_concurrency=account_concurrency,
                                unreserved_minimum=unreserved_minimum, scale_rate=scale_rate,
                                retry_delays=retry_delays, region=region)
        # Each environment holds a listening socket, a connection and two pipes.
        needed = 64 + 8 * account_concurrency
        if raise_open_files_limit(needed) < needed:
            raise ConfigError(
                f"account_concurrency={account_concurrency} needs about {needed} open files, "
                f"but this host allows {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}: "
                "raise `ulimit -n` or choose a smaller account_concurrency")
        self.events = EventLog()
        self.functions: dict[str, Function] = {}
        self._host, self._port = host, port
        self._unreserved_minimum = unreserved_minimum  # None: follows account_concurrency
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="lambda-lab", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error
        _open_labs.add(self)

    # -- the server thread ----------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # report to the constructor instead of dying silently
            self._startup_error = exc
            self._loop.close()
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        from .invoke_api import make_app

        cfg = self.config
        self.counting = CountingService(account_concurrency=cfg.account_concurrency,
                                        unreserved_minimum=self._unreserved_minimum,
                                        scale_rate=cfg.scale_rate)
        self.placement = PlacementService()
        self.assignment = AssignmentService(events=self.events, counting=self.counting,
                                            placement=self.placement, region=cfg.region)
        self.frontend = Frontend(config=cfg, events=self.events, counting=self.counting,
                                 assignment=self.assignment)
        sockets = bind_sockets(self._port, self._host)
        self._server = HTTPServer(make_app(self.frontend), max_body_size=64 * 1024 * 1024)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the server thread and wait for its result (from any other thread)."""
        if self._closed:
            coro.close()
            raise LabClosedError("This lab was closed; create a new Lab()")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("Blocking lab calls cannot run on the lab's own thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _do(self, func: Callable[[], T]) -> T:
        """Run a plain function on the server thread, the only thread that touches the control
        plane, and wait for its result."""
        async def run() -> T:
            return func()

        return self._call(run())

    def _submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run ``coro`` on the server thread; an awaitable for the caller's own event loop."""
        if self._closed:
            coro.close()
            raise LabClosedError("This lab was closed; create a new Lab()")
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # -- public API -----------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        """Base URL of the Invoke API, for ``boto3.client("lambda", endpoint_url=...)``."""
        return f"http://{self._host}:{self.port}"

    def deploy(self, name: str, **keys: Any) -> Function:
        """Create (or replace) a function; keys as in AWS (``handler``, ``timeout``, ...)."""
        config = FunctionConfig(name=name, **keys)

        async def deploy() -> None:
            # Counting first: a refused reservation leaves everything as it was.
            self.counting.register(name, reserved=config.reserved_concurrency,
                                   provisioned=config.provisioned_concurrency)
            old = self.assignment.pools.pop(name, None)
            self.frontend.functions[name] = config
            self.assignment.add_function(config)
            if old is not None:  # a redeploy: the old code's environments go away
                await asyncio.gather(*(e.shutdown("close") for e in list(old.all.values())))
            await self.assignment.set_provisioned(name)

        try:
            self._call(deploy())
        finally:
            if name in self.frontend.functions:  # deployed, even if provisioning failed
                self.functions[name] = Function(self, name)
        return self.functions[name]

    def _update(self, name: str, **changes: Any) -> FunctionConfig:
        unknown = set(changes) - set(LIVE_KEYS)
        if unknown:
            raise ConfigError(f"Cannot change {sorted(unknown)} on a live function; "
                              f"changeable: {list(LIVE_KEYS)}")

        async def update() -> FunctionConfig:
            config = self.frontend.function(name).with_changes(**changes)
            if "reserved_concurrency" in changes:
                self.counting.set_reserved(name, config.reserved_concurrency)
            if "provisioned_concurrency" in changes:
                self.counting.set_provisioned(name, config.provisioned_concurrency)
            self.frontend.functions[name] = config
            self.assignment.update_function(config)
            if "provisioned_concurrency" in changes:
                await self.assignment.set_provisioned(name)
            return config

        return self._call(update())

    @property
    def account_concurrency(self) -> int:
        return self.counting.account_concurrency

    @account_concurrency.setter
    def account_concurrency(self, value: int) -> None:
        self._do(lambda: setattr(self.counting, "account_concurrency", value))

    @property
    def scale_rate(self) -> int:
        """New environments each function may add per 10 s; settable on a live lab."""
        return self.counting.scale_rate

    @scale_rate.setter
    def scale_rate(self, value: int) -> None:
        self._do(lambda: setattr(self.counting, "scale_rate", value))

    def environments(self) -> list[EnvironmentInfo]:
        """A snapshot of every live execution environment."""
        return self._do(self.assignment.environments)

    def kill(self, env_id: str) -> None:
        """SIGKILL one environment's process, as a host failure would (for the lesson)."""
        def kill() -> None:
            env = self.assignment.find(env_id)
            if env is None or env.process is None:
                raise ConfigError(f"No running environment {env_id!r}")
            env.process.signal(signal.SIGKILL)

        self._do(kill)

    def dashboard(self) -> Any:
        """The live dashboard widget: timeline, console, metrics, controls, environments."""
        from .widgets import dashboard

        return dashboard(self)

    def timeline_figure(self) -> Any:
        """A static Plotly figure of the timeline so far (``.write_html(path)`` to export)."""
        from .widgets.timeline import timeline_figure

        return timeline_figure(self.events)

    def close(self) -> None:
        """Shut down every environment (reason ``close``) and stop the server thread."""
        if self._closed:
            return

        async def shutdown() -> None:
            await self.frontend.close()
            await self.assignment.close()
            self._server.stop()
            await self._server.close_all_connections()

        try:
            self._call(shutdown(), timeout=30)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            _open_labs.discard(self)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return "<Lab closed>"
        return (f"<Lab {self.endpoint_url} functions={list(self.functions)} "
                f"account_concurrency={self.counting.account_concurrency}>")


class LiveSetting(Generic[T]):
    """A function setting: read from its current config, written through ``Function.update``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, function: Function, owner: type | None = None) -> T:
        return cast(T, getattr(function.config, self.name))

    def __set__(self, function: Function, value: T) -> None:
        function.update(**{self.name: value})


class Function:
    """A deployed function: invoke it, burst it, change its settings live."""

    reserved_concurrency = LiveSetting[int | None]()
    provisioned_concurrency = LiveSetting[int]()
    idle_timeout = LiveSetting[float]()
    timeout = LiveSetting[float]()
    memory_size = LiveSetting[int]()
    environment = LiveSetting[Mapping[str, str]]()
    init_delay = LiveSetting[float]()
    handler = LiveSetting[str]()

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name

    @property
    def config(self) -> FunctionConfig:
        return self.lab.frontend.functions[self.name]

    def invoke(self, payload: Any = None, *, client_context: str | None = None) -> InvokeResult:
        """Invoke synchronously and wait for the answer (safe from any thread).

        Function errors and throttles come back as results (``outcome``); other service
        errors (an oversized payload, a deleted function) are raised.
        """
        return self.lab._call(self._invoke(payload, client_context))

    def ainvoke(self, payload: Any = None) -> asyncio.Future[InvokeResult]:
        """``await fn.ainvoke(payload)`` from your own event loop (e.g. a notebook cell)."""
        return self.lab._submit(self._invoke(payload, None))

    async def _invoke(self, payload: Any, client_context: str | None) -> InvokeResult:
        try:
            return await self.lab.frontend.invoke(self.name, _payload_bytes(payload),
                                                  client_context=client_context)
        except TooManyRequestsError as exc:
            return InvokeResult(request_id=exc.request_id or "", function=self.name,
                                outcome="throttled", error_type=exc.error_type,
                                error_message=exc.message, reason=exc.reason)

    def burst(self, n: int, payload: Any = None) -> list[InvokeResult]:
        """``n`` concurrent synchronous invocations; their results in order."""
        async def burst() -> list[InvokeResult]:
            return list(await asyncio.gather(*(self._invoke(payload, None) for _ in range(n))))

        return self.lab._call(burst())

    def invoke_async(self, payload: Any = None) -> str:
        """An asynchronous (``Event``) invoke: queued, retried on error; returns the request id."""
        return self.lab._do(
            lambda: self.lab.frontend.invoke_async(self.name, _payload_bytes(payload)))

    def update(self, **changes: Any) -> FunctionConfig:
        """Change live settings, e.g. ``fn.update(timeout=5, idle_timeout=10)``."""
        return self.lab._update(self.name, **changes)

    def environments(self) -> list[EnvironmentInfo]:
        return [e for e in self.lab.environments() if e.function == self.name]

    def __repr__(self) -> str:
        cfg = self.config
        return f"<Function {self.name} {cfg.runtime} {cfg.handler} timeout={cfg.timeout:g}s>"


@atexit.register
def _close_open_labs() -> None:
    for lab in list(_open_labs):
        try:
            lab.close()
        except Exception:
            pass
