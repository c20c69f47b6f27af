"""Our own Lambda runtime client: the loop inside every ``runtime="python"`` environment.

A Lambda runtime *pulls* work. It imports your handler once (the init phase), then loops:
``GET /runtime/invocation/next`` blocks until there is an event, the handler runs, and the result
goes back with ``POST /runtime/invocation/{id}/response`` (or ``/error``). An exception during
import is reported once with ``POST /runtime/init/error`` and the process exits. This is the same
loop as the official clients (awslambdaric, aws-lambda-go's ``invoke_loop.go``), in plain
``http.client`` so you can read it in one sitting. AWS docs: "Using the Lambda runtime API for
custom runtimes" and "Lambda context object in Python".

Run it as ``python -m lambda_lab.runtime`` with ``AWS_LAMBDA_RUNTIME_API`` and ``_HANDLER`` set.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

API = "/2018-06-01/runtime"


class LambdaContext:
    """The ``context`` argument: the attributes AWS's Python runtime gives a handler."""

    def __init__(self, request_id: str, deadline_ms: int, function_arn: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = None
        self.identity = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"<LambdaContext request_id={self.aws_request_id}>"


class RuntimeClient:
    """The three calls a runtime makes, over one keep-alive HTTP connection."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        # No timeout: `next` long-polls for as long as the environment is idle.
        self.conn = http.client.HTTPConnection(host, int(port), timeout=None)

    def _call(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        self.conn.request(method, API + path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        return response, response.read()

    def next(self) -> tuple[str, dict[str, str], bytes]:
        response, body = self._call("GET", "/invocation/next")
        if response.status != 200:
            raise RuntimeError(f"next failed: {response.status} {body!r}")
        return response.headers["Lambda-Runtime-Aws-Request-Id"], dict(response.headers), body

    def respond(self, request_id: str, result: Any) -> None:
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:  # AWS's Python runtime calls this a MarshalError
            self.error(f"/invocation/{request_id}/error", exc, "Runtime.MarshalError")
            return
        self._call("POST", f"/invocation/{request_id}/response", body)

    def error(self, path: str, exc: BaseException, error_type: str | None = None) -> None:
        error_type = error_type or type(exc).__name__
        body = {
            "errorType": error_type,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
        headers = {"Lambda-Runtime-Function-Error-Type": error_type}
        self._call("POST", path, json.dumps(body).encode(), headers)


class InitError(Exception):
    """Init failed; ``error_type`` is the name AWS's Python runtime gives that failure."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def load_handler(spec: str) -> Any:
    """``"module.function"`` → the function, imported from LAMBDA_TASK_ROOT (the code dir)."""
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler '{spec}': not enough values")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InitError("Runtime.ImportModuleError",
                        f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': "
                        f"{exc}") from exc
    except Exception as exc:  # init code raised: its own type, as awslambdaric reports it
        raise InitError(type(exc).__name__, str(exc)) from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise InitError("Runtime.HandlerNotFound",
                        f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


def main() -> None:
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))

    # Init phase: runs once per execution environment, before the first event.
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except InitError as exc:
        traceback.print_exc()
        client.error("/init/error", exc, exc.error_type)
        sys.exit(1)

    # Invoke phase: one event at a time, for as long as the environment lives.
    while True:
        request_id, headers, body = client.next()
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("Lambda-Runtime-Trace-Id", "")
        context = LambdaContext(
            request_id,
            int(headers["Lambda-Runtime-Deadline-Ms"]),
            headers["Lambda-Runtime-Invoked-Function-Arn"],
        )
        try:
            result = handler(json.loads(body), context)
        except Exception as exc:
            client.error(f"/invocation/{request_id}/error", exc)
        else:
            client.respond(request_id, result)
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    main()
