"""Settings, in AWS's own vocabulary: one set of keys for Python, ``lab.toml`` and the docs.

A function is configured like ``aws lambda create-function``: ``handler``, ``runtime``,
``timeout``, ``memory_size``, ``environment``, ``reserved_concurrency``,
``provisioned_concurrency``. Two keys are ours, because AWS does not let you set them:
``idle_timeout`` (how long an idle execution environment lives before it is reaped; AWS does
not document it, observed to be minutes) and ``init_delay`` (simulated platform work before
the process starts: microVM boot and code download, ~125 ms for Firecracker).

Limits come from the AWS Lambda Developer Guide, "Lambda quotas".
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["FunctionConfig", "LabConfig", "load_toml", "RUNTIMES"]

# "Lambda quotas": timeout 1-900 s, memory 128-10,240 MB, init phase 10 s.
MAX_TIMEOUT_S = 900.0
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10_240
INIT_TIMEOUT_S = 10.0
# "Lambda quotas": invocation payload 6 MB synchronous (request and response), 1 MB async.
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024

RUNTIMES = ("python", "awslambdaric", "provided")


@dataclass(frozen=True, kw_only=True)
class FunctionConfig:
    """One function's configuration, as ``Lab.deploy(name, **keys)`` takes it."""

    name: str
    handler: str = "lambda_function.handler"
    runtime: str = "python"
    bootstrap: str | None = None
    code_dir: str = "."
    timeout: float = 3.0
    memory_size: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0
    idle_timeout: float = 600.0
    init_delay: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ConfigError(
                f"Function name {self.name!r} is invalid: use letters, digits, '-' and '_'"
            )
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime={self.runtime!r} is not one of {RUNTIMES}")
        if self.runtime == "provided" and not self.bootstrap:
            bootstrap = Path(self.code_dir) / "bootstrap"
            object.__setattr__(self, "bootstrap", str(bootstrap))
        if not 0 < self.timeout <= MAX_TIMEOUT_S:
            raise ConfigError(f"timeout={self.timeout} must be in (0, {MAX_TIMEOUT_S:g}] seconds")
        if not MIN_MEMORY_MB <= self.memory_size <= MAX_MEMORY_MB:
            raise ConfigError(
                f"memory_size={self.memory_size} must be {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB"
            )
        if self.reserved_concurrency is not None and self.reserved_concurrency < 0:
            raise ConfigError(f"reserved_concurrency={self.reserved_concurrency} must be >= 0")
        if self.provisioned_concurrency < 0:
            raise ConfigError(
                f"provisioned_concurrency={self.provisioned_concurrency} must be >= 0"
            )
        if self.idle_timeout <= 0 or self.init_delay < 0:
            raise ConfigError("idle_timeout must be > 0 and init_delay >= 0 seconds")
        if not Path(self.code_dir).is_dir():
            raise ConfigError(f"code_dir does not exist: {self.code_dir}")
        # Resolved now: the runtime's working directory must not depend on who starts it.
        object.__setattr__(self, "code_dir", str(Path(self.code_dir).resolve()))
        if self.bootstrap:
            object.__setattr__(self, "bootstrap", str(Path(self.bootstrap).resolve()))
        env = {str(k): str(v) for k, v in self.environment.items()}
        object.__setattr__(self, "environment", env)

    def with_changes(self, **changes: Any) -> FunctionConfig:
        return replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class LabConfig:
    """Lab-wide settings. AWS-sized defaults; lessons set small values explicitly."""

    account_concurrency: int = 1000
    unreserved_minimum: int | None = None  # None: min(100, account_concurrency // 10)
    scale_rate: int = 1000  # new environments per function per 10 s ("Lambda scaling behavior")
    retry_delays: tuple[float, ...] = (60.0, 120.0)  # async retries, "Asynchronous invocation"
    region: str = "us-east-1"
    account_id: str = "123456789012"

    def __post_init__(self) -> None:
        if self.account_concurrency < 1:
            raise ConfigError(f"account_concurrency={self.account_concurrency} must be >= 1")
        if self.unreserved_minimum is None:
            object.__setattr__(
                self, "unreserved_minimum", min(100, self.account_concurrency // 10)
            )
        if self.scale_rate < 1:
            raise ConfigError(f"scale_rate={self.scale_rate} must be >= 1")
        object.__setattr__(self, "retry_delays", tuple(float(d) for d in self.retry_delays))


def _known(cls: type, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} in {where}; expected some of {sorted(names)}")
    return dict(table)


def load_toml(path: str | Path) -> tuple[LabConfig, list[FunctionConfig]]:
    """Read ``lab.toml``: a ``[lab]`` table and one ``[functions.NAME]`` table per function.

    A relative ``code_dir`` is taken relative to the file's folder.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Config file does not exist: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    lab = LabConfig(**_known(LabConfig, data.get("lab", {}), f"{path} [lab]"))
    functions = []
    for name, table in data.get("functions", {}).items():
        keys = _known(FunctionConfig, table, f"{path} [functions.{name}]")
        keys.pop("name", None)
        code_dir = Path(keys.get("code_dir", "."))
        keys["code_dir"] = str(code_dir if code_dir.is_absolute() else path.parent / code_dir)
        functions.append(FunctionConfig(name=name, **keys))
    if not functions:
        raise ConfigError(f"{path} defines no [functions.NAME] table")
    return lab, functions
