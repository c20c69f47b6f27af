"""The Lambda Runtime API, served to one execution environment.

A runtime talks to Lambda through four HTTP calls under ``/2018-06-01/runtime`` (AWS docs:
"Using the Lambda runtime API for custom runtimes", and the runtime API OpenAPI spec):

=====================================  ======================================================
``GET  /invocation/next``              long-poll: blocks until the next event is assigned
``POST /invocation/{id}/response``     the handler's result → 202 ``{"status":"OK"}``
``POST /invocation/{id}/error``        the handler failed → 202
``POST /init/error``                   the runtime could not initialise → 202
=====================================  ======================================================

Protocol mistakes get the status codes and JSON bodies (``errorType``, ``errorMessage``) of
AWS's Runtime Interface Emulator: 400 ``InvalidRequestID`` for an id this runtime was never
sent, 403 ``InvalidStateTransition`` for a call out of order (a second answer, ``init/error``
after ``next``), 413 ``RequestEntityTooLarge`` for a response over 6 MB. Every environment has
its own listening socket, so the endpoint knows which environment is calling without asking.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from tornado import web

from .config import SYNC_PAYLOAD_LIMIT

if TYPE_CHECKING:
    from .environment import ExecutionEnvironment

__all__ = ["make_app", "no_access_log", "StateError"]


class StateError(Exception):
    """A Runtime API call that breaks the protocol; ``status``/``error_type`` as AWS answers."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def no_access_log(handler: web.RequestHandler) -> None:
    """No access log: every call is already in the event log (a 429 is a lesson, not a fault)."""


PREFIX = "/2018-06-01/runtime"


class RuntimeHandler(web.RequestHandler):
    """Shared plumbing: JSON errors in one place, every call recorded as ``runtime.call``."""

    request_id: str | None = None

    def initialize(self, env: ExecutionEnvironment) -> None:
        self.env = env

    abandoned = False  # a `next` that ended without an event (see NextHandler)

    def compute_etag(self) -> None:
        # Tornado would hash every GET body (up to 6 MB of event) for an ETag nobody uses.
        return None

    def on_finish(self) -> None:
        if self.abandoned:
            return
        self.env.runtime_called(self.request.method or "", self.request.path,
                                self.get_status(), self.request_id)

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def send_error_json(self, status: int, error_type: str, message: str) -> None:
        self.send_json(status, {"errorType": error_type, "errorMessage": message})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason or "Error"
        self.send_error_json(status_code, reason.replace(" ", ""), reason)


class NextHandler(RuntimeHandler):
    """``GET next``: held open until an event is assigned to this environment (a long poll)."""

    async def get(self) -> None:
        try:
            self.poll = self.env.poll()
        except StateError as exc:
            return self.send_error_json(exc.status, exc.error_type, exc.message)
        try:
            invocation = await self.poll
        except asyncio.CancelledError:
            # The runtime hung up, or its environment is gone: nobody is there to answer.
            self.abandoned = True
            self.request.connection.close()  # type: ignore[union-attr]
            return
        self.request_id = invocation.request_id
        # Content-Type exactly "application/json": some clients compare it literally.
        self.set_header("Content-Type", "application/json")
        self.set_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.set_header("Lambda-Runtime-Deadline-Ms", str(self.env.deadline_ms()))
        self.set_header("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn)
        self.set_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
        if invocation.client_context:
            self.set_header("Lambda-Runtime-Client-Context", invocation.client_context)
        if invocation.cognito_identity:
            self.set_header("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity)
        self.finish(invocation.payload)

    def on_connection_close(self) -> None:
        # A runtime that disconnects mid-poll is never handed an event.
        poll = getattr(self, "poll", None)
        if poll is not None:
            self.env.cancel_poll(poll)


@web.stream_request_body
class AnswerHandler(RuntimeHandler):
    """``response``, ``error`` and ``init/error``: bodies streamed so an oversized one is
    measured and refused (413) without being held in memory; chunked bodies work too."""

    def initialize(self, env: ExecutionEnvironment, kind: str = "response") -> None:
        super().initialize(env)
        self.kind = kind

    def prepare(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= SYNC_PAYLOAD_LIMIT:
            self.chunks.append(chunk)

    def error_type(self, body: bytes) -> str | None:
        header = self.request.headers.get("Lambda-Runtime-Function-Error-Type")
        if header:
            return header
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        return parsed.get("errorType") if isinstance(parsed, dict) else None

    def post(self, request_id: str | None = None) -> None:
        self.request_id, kind = request_id, self.kind
        body = b"".join(self.chunks)
        try:
            if kind == "init":
                self.env.init_error(body, self.error_type(body))
            elif self.size > SYNC_PAYLOAD_LIMIT:
                # The invocation fails as in Lambda; the runtime is told why.
                assert request_id is not None
                message = (f"Response payload size ({self.size} bytes) exceeded maximum allowed "
                           f"payload size ({SYNC_PAYLOAD_LIMIT} bytes).")
                error = {"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message}
                self.env.answer(request_id, "error", json.dumps(error).encode(),
                                "Function.ResponseSizeTooLarge")
                return self.send_error_json(413, "RequestEntityTooLarge", message)
            elif kind == "error":
                assert request_id is not None
                self.env.answer(request_id, "error", body, self.error_type(body) or
                                "Runtime.Unknown")
            else:
                assert request_id is not None
                self.env.answer(request_id, "success", body, None)
        except StateError as exc:
            return self.send_error_json(exc.status, exc.error_type, exc.message)
        self.send_json(202, {"status": "OK"})


def make_app(env: ExecutionEnvironment) -> web.Application:
    """The Runtime API routes, bound to one environment."""
    args = {"env": env}
    return web.Application([
        (PREFIX + r"/invocation/next", NextHandler, args),
        (PREFIX + r"/invocation/([^/]+)/response", AnswerHandler, {**args, "kind": "response"}),
        (PREFIX + r"/invocation/([^/]+)/error", AnswerHandler, {**args, "kind": "error"}),
        (PREFIX + r"/init/error", AnswerHandler, {**args, "kind": "init"}),
    ], default_handler_class=NotFoundHandler, default_handler_args=args,
       log_function=no_access_log)


class NotFoundHandler(RuntimeHandler):
    def prepare(self) -> None:
        self.send_error_json(404, "NotFound", f"Unknown Runtime API path: {self.request.path}")
