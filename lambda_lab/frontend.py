"""The Frontend Invoke Service: where every invocation enters.

Lambda's frontend authenticates and validates the request, gives it a request id, and then
walks it through the other services: Counting (may it run now? else 429), Assignment (a warm
environment, or a cold start) and finally the environment itself. Synchronous invokes
(``RequestResponse``) hold the caller until the function answers; asynchronous ones (``Event``)
are accepted at once (202), queued, and retried on function errors ("Asynchronous invocation":
two retries, about 1 and 2 minutes apart; throttled events go back to the queue with a backoff
from 1 s up to 5 min). Models the API Reference "Invoke" and "Invoking Lambda functions".

Simplified: the async queue is one asyncio task per event (no separate poller fleet), and
events are kept for the lab's lifetime instead of AWS's 6 hours.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

from .assignment import AssignmentService
from .config import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT, FunctionConfig, LabConfig
from .counting import CountingService
from .environment import Answer, InitFailed, Invocation, new_trace_id
from .errors import (
    FunctionError,
    RequestTooLargeError,
    ResourceNotFoundError,
    TooManyRequestsError,
)
from .events import EventLog

__all__ = ["Frontend", "InvokeResult"]

THROTTLE_BACKOFF_S = (1.0, 300.0)  # async events: first retry after 1 s, at most 5 min apart


@dataclass(frozen=True, kw_only=True)
class InvokeResult:
    """What one invocation returned. ``outcome`` is success, error, timeout, crash or throttled."""

    request_id: str
    function: str
    outcome: str
    payload: Any = None
    body: bytes = b""
    error_type: str | None = None
    error_message: str | None = None
    reason: str | None = None
    env: str | None = None
    pid: int | None = None
    cold: bool = False
    init_ms: float | None = None
    duration_ms: float | None = None
    billed_ms: int | None = None
    max_memory_mb: int | None = None
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def raise_for_error(self) -> InvokeResult:
        """Return self on success; raise FunctionError or TooManyRequestsError otherwise."""
        if self.outcome == "throttled":
            raise TooManyRequestsError(self.error_message or "Rate Exceeded.", self.reason or "")
        if not self.ok:
            raise FunctionError(self.error_type or "Unknown", self.error_message or "",
                                self.request_id)
        return self

    def __repr__(self) -> str:
        if self.outcome == "throttled":
            return f"<InvokeResult {self.request_id[:8]} throttled ({self.reason})>"
        start = "cold" if self.cold else "warm"
        init = f" init {self.init_ms:.0f} ms" if self.init_ms is not None else ""
        error = f" {self.error_type}" if self.error_type else ""
        duration = f"{self.duration_ms:.1f} ms" if self.duration_ms is not None else "-"
        return (f"<InvokeResult {self.request_id[:8]} {self.outcome}{error} env={self.env} "
                f"{start}{init} {duration}>")


def _report_failure(task: asyncio.Task[None]) -> None:
    """An async event's task must not fail silently: show the traceback on stderr."""
    if not task.cancelled() and task.exception() is not None:
        import traceback

        traceback.print_exception(task.exception())


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode("utf-8", "replace")


class Frontend:
    """Validates each invocation, names it, and walks it through counting and assignment."""

    def __init__(self, *, config: LabConfig, events: EventLog, counting: CountingService,
                 assignment: AssignmentService) -> None:
        self.config = config
        self.events = events
        self.counting = counting
        self.assignment = assignment
        self.functions: dict[str, FunctionConfig] = {}
        self._async_tasks: set[asyncio.Task[None]] = set()

    def function(self, name: str) -> FunctionConfig:
        """The function's configuration, or ResourceNotFoundException (404) as AWS words it."""
        try:
            return self.functions[name]
        except KeyError:
            raise ResourceNotFoundError(f"Function not found: {self.arn(name)}") from None

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:{name}"

    # -- synchronous ----------------------------------------------------------------------
    async def invoke(self, name: str, payload: bytes, *, client_context: str | None = None,
                     attempt: int = 1, request_id: str | None = None) -> InvokeResult:
        """A ``RequestResponse`` invoke. Raises ServiceError subclasses (404, 413, 429)."""
        self.function(name)
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            raise RequestTooLargeError(
                f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the "
                "InvokeFunction operation")
        request_id = request_id or str(uuid.uuid4())
        if attempt == 1:
            self.events.append("invoke.received", function=name, request_id=request_id,
                               invocation_type="RequestResponse", payload_bytes=len(payload))
        return await self._run(name, request_id, payload, client_context, attempt)

    async def _run(self, name: str, request_id: str, payload: bytes,
                   client_context: str | None, attempt: int) -> InvokeResult:
        try:
            self.counting.admit(name)
        except TooManyRequestsError as exc:
            self._throttled(name, request_id, exc)
            raise
        env = None
        try:
            try:
                env = await self.assignment.acquire(name, request_id)
            except TooManyRequestsError as exc:  # scaling rate: no new environment allowed
                self._throttled(name, request_id, exc)
                raise
            except InitFailed as exc:
                return self._init_failed(name, request_id, exc, attempt)
            invocation = Invocation(request_id=request_id, payload=payload or b"{}",
                                    function_arn=self.arn(name), trace_id=new_trace_id(),
                                    client_context=client_context, attempt=attempt)
            answer = await env.invoke(invocation)
        finally:
            self.counting.release(name)
            if env is not None:
                self.assignment.release(env)
        return self._result(name, request_id, env, answer)

    def _throttled(self, name: str, request_id: str, exc: TooManyRequestsError) -> None:
        exc.request_id = request_id
        self.events.append("invoke.throttled", function=name, request_id=request_id,
                           reason=exc.reason, message=exc.message)

    def _init_failed(self, name: str, request_id: str, exc: InitFailed,
                     attempt: int) -> InvokeResult:
        body = json.dumps(exc.body).encode()
        self.events.append("invoke.end", function=name, env=exc.env_id, request_id=request_id,
                           outcome="error", duration_ms=0.0, billed_ms=0, cold=True,
                           init_ms=None, error_type=exc.error_type, attempt=attempt,
                           init_error=True)
        return InvokeResult(request_id=request_id, function=name, outcome="error",
                            payload=exc.body, body=body, error_type=exc.error_type,
                            error_message=str(exc.body.get("errorMessage", "")), cold=True,
                            env=exc.env_id)

    def _result(self, name: str, request_id: str, env: Any, answer: Answer) -> InvokeResult:
        payload = _decode(answer.body)
        message = payload.get("errorMessage") if isinstance(payload, dict) else None
        return InvokeResult(
            request_id=request_id, function=name, outcome=answer.outcome, payload=payload,
            body=answer.body, error_type=answer.error_type,
            error_message=None if answer.outcome == "success" else str(message or ""),
            env=env.env_id, pid=env.pid, cold=answer.cold, init_ms=answer.init_ms,
            duration_ms=answer.duration_ms, billed_ms=answer.billed_ms,
            max_memory_mb=answer.max_memory_mb, log_tail=answer.log_tail,
        )

    # -- asynchronous ---------------------------------------------------------------------
    def invoke_async(self, name: str, payload: bytes) -> str:
        """An ``Event`` invoke: validated, queued, and its request id returned at once."""
        self.function(name)
        if len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise RequestTooLargeError(
                f"Request must be smaller than {ASYNC_PAYLOAD_LIMIT} bytes for the "
                "InvokeAsync operation")
        request_id = str(uuid.uuid4())
        self.events.append("invoke.received", function=name, request_id=request_id,
                           invocation_type="Event", payload_bytes=len(payload))
        task = asyncio.ensure_future(self._deliver_async(name, request_id, payload))
        self._async_tasks.add(task)
        task.add_done_callback(self._async_tasks.discard)
        task.add_done_callback(_report_failure)
        return request_id

    async def _deliver_async(self, name: str, request_id: str, payload: bytes) -> None:
        attempts = 1 + len(self.config.retry_delays)
        attempt, backoff = 1, THROTTLE_BACKOFF_S[0]
        while attempt <= attempts:
            if name not in self.functions:
                return
            try:
                result = await self._run(name, request_id, payload, None, attempt)
            except TooManyRequestsError:
                # Throttles go back to the queue without using up a retry.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, THROTTLE_BACKOFF_S[1])
                continue
            if result.ok:
                return
            if attempt < attempts:
                await asyncio.sleep(self.config.retry_delays[attempt - 1])
            attempt += 1

    async def close(self) -> None:
        for task in list(self._async_tasks):
            task.cancel()
        await asyncio.gather(*self._async_tasks, return_exceptions=True)
