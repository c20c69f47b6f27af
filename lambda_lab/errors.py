"""Every exception lambda_lab raises, in one tree.

Lambda has two kinds of failure, and so do we. A *service error* is the Lambda service saying
no before or instead of running your code (the Invoke API answers with an HTTP status and an
``x-amzn-ErrorType``, AWS API Reference, "Invoke", Errors). A *function error* is your code (or
its runtime) failing while it ran: the Invoke API still answers 200 and sets
``X-Amz-Function-Error``. ``Function.invoke`` returns function errors and throttles as
results; ``InvokeResult.raise_for_error()`` turns them into exceptions::

    LambdaLabError
     ├── ConfigError                  a setting is out of range or unknown (also a ValueError)
     ├── LabClosedError               the lab was closed; make a new Lab
     ├── FunctionError                the function failed: .error_type, .error_message
     └── ServiceError                 .status, .error_type (the x-amzn-ErrorType), .message
          ├── InvalidRequestContentError   400 InvalidRequestContentException
          ├── ResourceNotFoundError        404 ResourceNotFoundException
          ├── RequestTooLargeError         413 RequestTooLargeException
          └── TooManyRequestsError         429 TooManyRequestsException, .reason
"""

from __future__ import annotations

__all__ = [
    "LambdaLabError",
    "ConfigError",
    "LabClosedError",
    "FunctionError",
    "ServiceError",
    "InvalidRequestContentError",
    "ResourceNotFoundError",
    "RequestTooLargeError",
    "TooManyRequestsError",
]


class LambdaLabError(Exception):
    """Base of every lambda_lab exception."""


class ConfigError(LambdaLabError, ValueError):
    """A setting is unknown or out of range; the message names it and the allowed values."""


class LabClosedError(LambdaLabError, RuntimeError):
    """The lab was closed; its environments are gone. Create a new ``Lab()``."""


class FunctionError(LambdaLabError):
    """The function (or its runtime) failed, e.g. ``Runtime.ExitError``, ``Sandbox.Timedout``."""

    def __init__(self, error_type: str, error_message: str, request_id: str | None = None):
        super().__init__(f"{error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message
        self.request_id = request_id


class ServiceError(LambdaLabError):
    """The Lambda service refused the request; ``status`` is the Invoke API's HTTP status."""

    status = 500
    error_type = "ServiceException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        """The JSON body the Invoke API sends, as AWS's REST-JSON protocol shapes it."""
        return {"Type": "User", "message": self.message}


class InvalidRequestContentError(ServiceError):
    status = 400
    error_type = "InvalidRequestContentException"


class ResourceNotFoundError(ServiceError):
    status = 404
    error_type = "ResourceNotFoundException"


class RequestTooLargeError(ServiceError):
    status = 413
    error_type = "RequestTooLargeException"


class TooManyRequestsError(ServiceError):
    """A throttle; ``reason`` is AWS's, e.g. ``ConcurrentInvocationLimitExceeded``."""

    status = 429
    error_type = "TooManyRequestsException"

    def __init__(self, message: str, reason: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.request_id = request_id

    def body(self) -> dict[str, str]:
        return {"Reason": self.reason, "Type": "User", "message": self.message}
