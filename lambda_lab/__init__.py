"""lambda_lab: AWS Lambda's execution model, running on your laptop and drawn live in Jupyter.

::

    from lambda_lab import Lab
    lab = Lab()
    fn = lab.deploy("hello", handler="hello.handler", code_dir="handlers")
    fn.invoke({"name": "Ada"})

Names are imported on first use, so ``python -m lambda_lab.runtime`` (inside every
environment) starts without loading tornado, pandas or plotly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Lab",
    "Function",
    "InvokeResult",
    "FunctionConfig",
    "LabConfig",
    "Event",
    "EventLog",
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
__version__ = "0.1.0"

_WHERE = {
    "Lab": "lab",
    "Function": "lab",
    "InvokeResult": "frontend",
    "FunctionConfig": "config",
    "LabConfig": "config",
    "Event": "events",
    "EventLog": "events",
    **{name: "errors" for name in __all__ if name.endswith("Error")},
}

if TYPE_CHECKING:
    from .config import FunctionConfig, LabConfig
    from .errors import (
        ConfigError,
        FunctionError,
        InvalidRequestContentError,
        LabClosedError,
        LambdaLabError,
        RequestTooLargeError,
        ResourceNotFoundError,
        ServiceError,
        TooManyRequestsError,
    )
    from .events import Event, EventLog
    from .frontend import InvokeResult
    from .lab import Function, Lab


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'lambda_lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
