"""The Assignment Service: a warm environment if there is one, else a cold start.

For every admitted invocation Lambda's Assignment Service looks for an idle ("warm") execution
environment of that function. If there is one, the event goes there and no Init happens. If
every environment is busy, it asks Placement for a new one and the invocation waits for its
Init: a *cold start*. It prefers the most recently used idle environment, so the others stay
idle and age out, and it shuts down environments that stayed idle for ``idle_timeout`` seconds
(AWS does this after some minutes; it does not document how many). Provisioned environments
are initialised ahead of time, preferred for invokes, and never reaped for idleness.

Models "Lambda execution environment lifecycle", "Understanding Lambda function scaling" and
"Configuring provisioned concurrency". All methods run on the lab's IOLoop thread.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import process as proc
from . import zygote
from .config import FunctionConfig
from .counting import CountingService
from .environment import ExecutionEnvironment, InitFailed, State
from .errors import FunctionError
from .events import EventLog
from .placement import PlacementService

__all__ = ["AssignmentService", "EnvironmentInfo"]

SWEEP_INTERVAL_S = 0.1  # how often idle environments are checked against idle_timeout
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True, kw_only=True)
class EnvironmentInfo:
    """A snapshot of one environment, for the environments panel and ``lab.environments()``."""

    function: str
    env: str
    pid: int | None
    state: str
    invocations: int
    max_memory_mb: int | None
    provisioned: bool
    host: str
    port: int


class FunctionPool:
    """One function's environments: all of them, and the idle ones in order of last use."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.all: dict[str, ExecutionEnvironment] = {}
        self.idle: list[ExecutionEnvironment] = []  # most recently used last


class AssignmentService:
    """Every function's environments: hands out warm ones, creates cold ones, reaps idle ones."""

    def __init__(self, *, events: EventLog, counting: CountingService,
                 placement: PlacementService, region: str) -> None:
        self.events = events
        self.counting = counting
        self.placement = placement
        self.region = region
        self.pools: dict[str, FunctionPool] = {}
        # Environment numbers per function name, kept across redeploys: an id is never reused.
        self._numbers: dict[str, itertools.count[int]] = {}
        # Started now, in the background, so the first cold start does not wait for it.
        self._fork_server = zygote.ForkServer() if zygote.available() else None
        self._closing = False
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    # -- functions ------------------------------------------------------------------------
    def add_function(self, config: FunctionConfig) -> None:
        self.pools[config.name] = FunctionPool(config)

    def update_function(self, config: FunctionConfig) -> None:
        """New settings apply to environments created from now on; idle_timeout to all."""
        self.pools[config.name].config = config

    # -- the invoke path ------------------------------------------------------------------
    async def acquire(self, function: str, request_id: str) -> ExecutionEnvironment:
        """An idle environment (warm), or a new one after its Init (cold).

        Raises ``TooManyRequestsError`` when the scaling rate allows no new environment, and
        ``InitFailed`` when the new environment's Init fails.
        """
        pool = self.pools[function]
        warm = self._take_idle(pool)
        if warm is not None:
            return warm
        self.counting.allow_new_environment(function)
        env = self._new_environment(pool, provisioned=False)
        await env.start(request_id)
        return env

    def _take_idle(self, pool: FunctionPool) -> ExecutionEnvironment | None:
        # Provisioned first (they are paid for), then the most recently used.
        candidates = [e for e in pool.idle if e.state is State.IDLE]
        if not candidates:
            return None
        provisioned = [e for e in candidates if e.provisioned]
        env = (provisioned or candidates)[-1]
        pool.idle.remove(env)
        return env

    def release(self, env: ExecutionEnvironment) -> None:
        """The invocation is over; an environment still idle becomes warm capacity."""
        pool = self.pools.get(env.function)
        if pool is not None and env.state is State.IDLE and env not in pool.idle:
            pool.idle.append(env)

    # -- creating and removing environments -----------------------------------------------
    def _new_environment(self, pool: FunctionPool, *, provisioned: bool) -> ExecutionEnvironment:
        placement = self.placement.place()
        name = pool.config.name
        env = ExecutionEnvironment(
            env_id=f"{name}-{next(self._numbers.setdefault(name, itertools.count(1)))}",
            config=pool.config,
            events=self.events, listener=placement.listener, host=placement.host,
            region=self.region, launch=self._launch, provisioned=provisioned,
            on_gone=self._forget,
        )
        pool.all[env.env_id] = env
        return env

    def _forget(self, env: ExecutionEnvironment) -> None:
        self.placement.release(env.host)
        pool = self.pools.get(env.function)
        if pool is None:
            return
        pool.all.pop(env.env_id, None)
        if env in pool.idle:
            pool.idle.remove(env)
        if env.provisioned and env.initialized and not self._closing:
            # Lambda replaces a provisioned environment that crashed or timed out. One that
            # never finished its Init is not retried in a loop: set_provisioned reported it.
            task = asyncio.ensure_future(self.set_provisioned(env.function))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def set_provisioned(self, function: str) -> None:
        """Start or stop provisioned environments until there are exactly as many as configured."""
        pool = self.pools[function]
        wanted = pool.config.provisioned_concurrency
        current = [e for e in pool.all.values() if e.provisioned
                   and e.state not in (State.SHUTTING_DOWN, State.GONE)]
        starting = []
        for _ in range(wanted - len(current)):
            env = self._new_environment(pool, provisioned=True)
            starting.append(env.start(None))
        for env in current[wanted:] if wanted < len(current) else []:
            env.provisioned = False  # spilled back to on-demand: it can now be reaped
        results = await asyncio.gather(*starting, return_exceptions=True)
        for env in list(pool.all.values()):
            if env.provisioned and env.state is State.IDLE:
                self.release(env)
        failures = [r for r in results if isinstance(r, InitFailed)]
        if failures:
            raise FunctionError(failures[0].error_type,
                                f"{len(failures)} provisioned environment(s) of {function!r} "
                                f"failed to initialise: {failures[0].body.get('errorMessage')}")

    async def _launch(self, env: ExecutionEnvironment,
                      variables: dict[str, str]) -> proc.RuntimeProcess:
        """Start the runtime process: fork our pre-warmed runtime, or spawn a command."""
        config = env.config
        if config.runtime == "python" and self._fork_server is not None:
            return await self._fork_server.fork(env=variables, cwd=config.code_dir)
        pythonpath = os.pathsep.join(filter(None, [PACKAGE_ROOT, variables.get("PYTHONPATH")]))
        if config.runtime == "python":
            argv = [sys.executable, "-m", "lambda_lab.runtime"]
            variables = {**variables, "PYTHONPATH": pythonpath}
        elif config.runtime == "awslambdaric":
            argv = [sys.executable, "-m", "awslambdaric", config.handler]
        else:
            assert config.bootstrap is not None
            argv = [str(Path(config.bootstrap).resolve())]
        return proc.spawn(argv, env=variables, cwd=config.code_dir)

    async def _sweep(self) -> None:
        """Reap environments idle longer than their function's idle_timeout."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = time.monotonic()
            for pool in self.pools.values():
                for env in list(pool.idle):
                    if (not env.provisioned and env.state is State.IDLE
                            and now - env.last_used >= pool.config.idle_timeout):
                        pool.idle.remove(env)
                        asyncio.ensure_future(env.shutdown("idle"))

    # -- inspection and control -----------------------------------------------------------
    def environments(self) -> list[EnvironmentInfo]:
        return [
            EnvironmentInfo(function=e.function, env=e.env_id, pid=e.pid, state=e.state.value,
                            invocations=e.invocations, max_memory_mb=e.max_memory_mb,
                            provisioned=e.provisioned, host=e.host, port=e.port)
            for pool in self.pools.values() for e in pool.all.values()
        ]

    def find(self, env_id: str) -> ExecutionEnvironment | None:
        for pool in self.pools.values():
            if env_id in pool.all:
                return pool.all[env_id]
        return None

    async def close(self) -> None:
        """Shut every environment down (reason ``close``) and stop the fork server."""
        self._closing = True
        self._sweeper.cancel()
        envs = [e for pool in self.pools.values() for e in pool.all.values()]
        await asyncio.gather(*(e.shutdown("close") for e in envs), return_exceptions=True)
        if self._fork_server is not None:
            self._fork_server.close()
