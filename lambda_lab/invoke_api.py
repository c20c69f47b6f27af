"""The Lambda Invoke API over HTTP, so boto3 and the AWS CLI work against the lab unchanged.

``POST /2015-03-31/functions/{FunctionName}/invocations`` (API Reference, "Invoke"):

* ``X-Amz-Invocation-Type``: ``RequestResponse`` (default) → 200 with the function's answer;
  ``Event`` → 202 at once; ``DryRun`` → 204 after validation only.
* ``X-Amz-Log-Type: Tail`` → ``X-Amz-Log-Result``: base64 of the last 4 KB of the log.
* A function error still answers 200, with ``X-Amz-Function-Error: Unhandled``.
* Service errors answer their status with ``x-amzn-ErrorType`` and a JSON body
  (``Type``, ``message``, and ``Reason`` for 429), which is how boto3 recognises them.

Usage::

    boto3.client("lambda", endpoint_url=lab.endpoint_url, region_name="us-east-1",
                 aws_access_key_id="x", aws_secret_access_key="x").invoke(FunctionName="hello")
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tornado import web

from .config import SYNC_PAYLOAD_LIMIT
from .errors import InvalidRequestContentError, RequestTooLargeError, ServiceError
from .frontend import Frontend
from .runtime_api import no_access_log

__all__ = ["make_app"]


class InvokeServiceError(ServiceError):
    """400 ``InvalidParameterValueException``, e.g. an unknown ``X-Amz-Invocation-Type``."""

    status = 400
    error_type = "InvalidParameterValueException"


@web.stream_request_body
class InvokeHandler(web.RequestHandler):
    """``POST .../invocations``: the body streamed, so an oversized payload is refused, not held."""

    def initialize(self, frontend: Frontend) -> None:
        self.frontend = frontend

    def prepare(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= SYNC_PAYLOAD_LIMIT:  # beyond the limit, count but do not keep
            self.chunks.append(chunk)

    async def post(self, function: str) -> None:
        try:
            await self._invoke(_function_name(function))
        except ServiceError as exc:
            request_id = getattr(exc, "request_id", None)
            if request_id:
                self.set_header("x-amzn-RequestId", request_id)
            self.set_status(exc.status)
            self.set_header("x-amzn-ErrorType", exc.error_type)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.body()))

    async def _invoke(self, name: str) -> None:
        invocation_type = self.request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            raise InvokeServiceError(
                f"Invalid X-Amz-Invocation-Type {invocation_type!r}: use RequestResponse, "
                "Event or DryRun")
        self.frontend.function(name)  # 404 before anything else
        if self.size > SYNC_PAYLOAD_LIMIT:
            raise RequestTooLargeError(
                f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the "
                "InvokeFunction operation")
        payload = b"".join(self.chunks)
        if payload.strip():
            try:
                json.loads(payload)
            except ValueError as exc:
                raise InvalidRequestContentError(
                    f"Could not parse request body into json: {exc}") from None
        if invocation_type == "DryRun":
            self.set_status(204)
            self.finish()
            return
        if invocation_type == "Event":
            self.set_header("x-amzn-RequestId", self.frontend.invoke_async(name, payload))
            self.set_status(202)
            self.finish()
            return
        result = await self.frontend.invoke(name, payload, client_context=self.client_context())
        self.set_header("x-amzn-RequestId", result.request_id)
        self.set_header("X-Amz-Executed-Version", "$LATEST")
        if result.outcome != "success":
            self.set_header("X-Amz-Function-Error", "Unhandled")
        if self.request.headers.get("X-Amz-Log-Type") == "Tail":
            self.set_header("X-Amz-Log-Result",
                            base64.b64encode(result.log_tail.encode()).decode())
        self.set_header("Content-Type", "application/json")
        self.finish(result.body)

    def client_context(self) -> str | None:
        """``X-Amz-Client-Context`` is base64 JSON; the runtime receives the decoded JSON."""
        header = self.request.headers.get("X-Amz-Client-Context")
        if not header:
            return None
        try:
            decoded = base64.b64decode(header, validate=True).decode()
            json.loads(decoded)
        except ValueError:
            raise InvalidRequestContentError(
                "Client context must be a valid Base64-encoded JSON object.") from None
        return decoded

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"Type": "Service", "message": self._reason}))


class NotFound(web.RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("x-amzn-ErrorType", "UnknownOperationException")
        self.finish(json.dumps({"Type": "User",
                                "message": f"lambda_lab serves only Invoke: {self.request.path}"}))


def _function_name(value: str) -> str:
    """FunctionName may be a name, a partial ARN or a full ARN ("Invoke", Request Syntax)."""
    if ":" in value:
        parts = value.split(":")
        if "function" in parts:
            return parts[parts.index("function") + 1]
        return parts[-2] if len(parts) == 3 else parts[0]
    return value


def make_app(frontend: Frontend) -> web.Application:
    return web.Application(
        [(r"/2015-03-31/functions/([^/]+)/invocations", InvokeHandler, {"frontend": frontend})],
        default_handler_class=NotFound,
        log_function=no_access_log,
    )
