"""The Counting Service: how many invocations may run at once, and how fast a function may grow.

Lambda counts concurrency as invocations in flight: each execution environment runs one
invocation at a time, so ten busy environments are a concurrency of ten. Every invocation passes
this gate first: a function with *reserved concurrency* owns that many units of the account's
limit (nobody else may use them, and it may not use more), every other function shares what is
left, the *unreserved pool*, and *provisioned concurrency* keeps its units claimed even while its
environments sit idle. A cold start passes a second gate, the per-function *scaling rate*: a
token bucket of 1,000 new environments per 10 seconds, refilled continuously. Past either gate
the caller gets a 429 ``TooManyRequestsException`` with AWS's ``Reason``.

Models the AWS Lambda Developer Guide pages "Lambda function scaling" (now "Lambda scaling
behavior"), "Configuring reserved concurrency", "Configuring provisioned concurrency", "Monitoring
concurrency" (``ClaimedAccountConcurrency``) and "Lambda quotas" (1,000 concurrent executions per
Region by default), and the Reason values of ``TooManyRequestsException`` in the API Reference,
"Invoke"::

    >>> counting = CountingService(account_concurrency=10)
    >>> counting.register("hello", reserved=2)
    >>> counting.admit("hello"); counting.admit("hello")
    >>> counting.admit("hello")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lambda_lab.errors.TooManyRequestsError: Rate Exceeded: function 'hello' already has 2 ...

Pure bookkeeping: no I/O, no threads. It is not thread-safe; the lab calls it only from its
server thread. The requests-per-second quotas (10 x concurrency) are not modelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, ResourceNotFoundError, TooManyRequestsError

__all__ = [
    "CountingService",
    "ACCOUNT_LIMIT",
    "RESERVED_LIMIT",
    "FUNCTION_RATE",
    "RESERVED_FUNCTION_RATE",
]

# TooManyRequestsException Reason values (API Reference, "Invoke"; the ThrottleReason enum).
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
# AWS documents the names, not which limit raises which. We read "InvocationRate" as the scaling
# rate, with the "Reserved" variant for functions that have reserved concurrency, mirroring the
# two concurrency reasons above.
FUNCTION_RATE = "FunctionInvocationRateLimitExceeded"
RESERVED_FUNCTION_RATE = "ReservedFunctionInvocationRateLimitExceeded"

# "Lambda scaling behavior": the scaling rate is counted per 10 seconds.
SCALE_WINDOW_S = 10.0
# Refills are float arithmetic; don't let 0.9999999 tokens refuse a cold start that is due.
_EPSILON = 1e-9


@dataclass(slots=True)
class _Function:
    """One function's settings and live counters (mutable, private to the service)."""

    reserved: int | None
    provisioned: int
    tokens: float
    refilled_at: float
    in_flight: int = 0

    @property
    def allocated(self) -> int:
        # Concurrency taken out of the account before any invocation runs: the whole reservation,
        # or, for an unreserved function, its provisioned environments (which live inside the
        # reservation when there is one, so they are never counted twice).
        return self.reserved if self.reserved is not None else self.provisioned


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name}={value!r} must be a whole number >= 0")
    return value


class CountingService:
    """Admits or throttles invocations against account, reserved and scaling-rate limits.

    ``admit`` / ``release`` bracket every invocation; ``allow_new_environment`` is asked
    before each on-demand cold start. Provisioned environments are created by the Assignment
    Service outside the scaling bucket (AWS allocates provisioned concurrency at its own rate).
    """

    def __init__(
        self,
        *,
        account_concurrency: int = 1000,
        unreserved_minimum: int | None = None,
        scale_rate: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if _count("account_concurrency", account_concurrency) < 1:
            raise ConfigError(f"account_concurrency={account_concurrency} must be >= 1")
        # None means "AWS's 100, scaled down for small teaching accounts"; remembered so that the
        # minimum follows account_concurrency when a lesson changes it later.
        self._auto_minimum = unreserved_minimum is None
        if unreserved_minimum is not None:
            _count("unreserved_minimum", unreserved_minimum)
            if unreserved_minimum > account_concurrency:
                raise ConfigError(
                    f"unreserved_minimum={unreserved_minimum} exceeds "
                    f"account_concurrency={account_concurrency}; use a value up to it"
                )
        self._account = account_concurrency
        self._minimum = self._default_minimum(account_concurrency, unreserved_minimum)
        self._scale_rate = self._check_scale_rate(scale_rate)
        self._clock = clock
        self._functions: dict[str, _Function] = {}

    # -- settings -------------------------------------------------------------------------

    @staticmethod
    def _default_minimum(account: int, given: int | None) -> int:
        return min(100, account // 10) if given is None else given

    @staticmethod
    def _check_scale_rate(value: int) -> int:
        if _count("scale_rate", value) < 1:
            raise ConfigError(f"scale_rate={value} must be >= 1 new environments per 10 s")
        return value

    @property
    def account_concurrency(self) -> int:
        """The Region's concurrency limit ("Lambda quotas": 1,000 by default)."""
        return self._account

    @account_concurrency.setter
    def account_concurrency(self, value: int) -> None:
        if _count("account_concurrency", value) < 1:
            raise ConfigError(f"account_concurrency={value} must be >= 1")
        minimum = self._minimum
        if self._auto_minimum:
            minimum = self._default_minimum(value, None)
        allocated = self._allocated()
        if value - allocated < minimum:
            least = allocated
            while least - allocated < (
                self._default_minimum(least, None) if self._auto_minimum else self._minimum
            ):
                least += 1  # at most 100 steps: the minimum never exceeds 100 when automatic
            raise ConfigError(
                f"account_concurrency={value} is too small: {allocated} is already reserved or "
                f"provisioned, which would leave {value - allocated} unreserved, below "
                f"unreserved_minimum={minimum}. Use at least {least}, or lower "
                f"reserved/provisioned concurrency first"
            )
        # Invocations already in flight keep running; the new limit applies from the next admit.
        self._account, self._minimum = value, minimum

    @property
    def unreserved_minimum(self) -> int:
        """Concurrency that reservations must leave to unreserved functions (AWS: 100)."""
        return self._minimum

    @property
    def scale_rate(self) -> int:
        """New execution environments per function per 10 s ("Lambda scaling behavior")."""
        return self._scale_rate

    @scale_rate.setter
    def scale_rate(self, value: int) -> None:
        value = self._check_scale_rate(value)
        now = self._clock()
        for fn in self._functions.values():
            # Settle the time already passed at the old rate, then cap at the new bucket size.
            fn.tokens = min(self._tokens(fn, now), float(value))
            fn.refilled_at = now
        self._scale_rate = value

    # -- functions ------------------------------------------------------------------------

    def register(self, function: str, *, reserved: int | None = None, provisioned: int = 0) -> None:
        """Add ``function``, or replace its settings (its in-flight count and bucket are kept)."""
        if reserved is not None:
            _count("reserved", reserved)
        _count("provisioned", provisioned)
        self._check_provisioned_fits(function, reserved, provisioned)
        self._check_allocation(function, reserved if reserved is not None else provisioned)
        fn = self._functions.get(function)
        if fn is None:
            # A new function's bucket starts full: its first burst may add scale_rate environments.
            now = self._clock()
            self._functions[function] = _Function(reserved, provisioned, self._scale_rate, now)
        else:
            fn.reserved, fn.provisioned = reserved, provisioned

    def unregister(self, function: str) -> None:
        """Forget ``function``; a later ``release`` for its last invocations is ignored."""
        self._get(function)
        del self._functions[function]

    def set_reserved(self, function: str, reserved: int | None) -> None:
        """Reserve concurrency for ``function`` (``None`` removes it, ``0`` throttles everything).

        Takes effect for the next ``admit``; invocations already in flight are not evicted.
        """
        fn = self._get(function)
        if reserved is not None:
            _count("reserved", reserved)
        self._check_provisioned_fits(function, reserved, fn.provisioned)
        self._check_allocation(function, reserved if reserved is not None else fn.provisioned)
        fn.reserved = reserved

    def set_provisioned(self, function: str, provisioned: int) -> None:
        """Keep ``provisioned`` environments allocated for ``function``, busy or idle.

        With a reservation, provisioned concurrency must fit inside it ("Configuring provisioned
        concurrency": you can't allocate more provisioned than reserved concurrency). Without
        one, it is carved out of the unreserved pool and, like a reservation, must leave
        ``unreserved_minimum`` for the other functions ("... up to the unreserved account
        concurrency minus 100").
        """
        fn = self._get(function)
        _count("provisioned", provisioned)
        self._check_provisioned_fits(function, fn.reserved, provisioned)
        self._check_allocation(function, fn.reserved if fn.reserved is not None else provisioned)
        fn.provisioned = provisioned

    @staticmethod
    def _check_provisioned_fits(function: str, reserved: int | None, provisioned: int) -> None:
        if reserved is not None and provisioned > reserved:
            raise ConfigError(
                f"provisioned={provisioned} for {function!r} exceeds reserved={reserved}: "
                f"provisioned environments run inside the reservation. Lower provisioned to "
                f"{reserved} or less, or raise reserved to {provisioned} or more"
            )

    def _check_allocation(self, function: str, allocated: int) -> None:
        # The one invariant behind both settings: reservations plus provisioned concurrency of
        # unreserved functions must leave unreserved_minimum for everybody else.
        others = self._allocated(excluding=function)
        room = self._account - self._minimum - others
        if allocated > room:
            raise ConfigError(
                f"Cannot allocate {allocated} to {function!r}: with {others} already reserved or "
                f"provisioned elsewhere, account_concurrency={self._account} would keep "
                f"{self._account - others - allocated} unreserved, below "
                f"unreserved_minimum={self._minimum}. Use at most {max(room, 0)}, lower other "
                f"functions' reserved/provisioned concurrency, or raise account_concurrency"
            )

    # -- the invocation path --------------------------------------------------------------

    def admit(self, function: str) -> None:
        """Count one more invocation in flight, or raise ``TooManyRequestsError``."""
        fn = self._get(function)
        if fn.reserved is not None:
            # A reservation is both floor and ceiling: its units are always there for this
            # function, so nothing else needs checking, and it can never use more.
            if fn.in_flight >= fn.reserved:
                raise TooManyRequestsError(
                    f"Rate Exceeded: function {function!r} already has {fn.in_flight} "
                    f"invocation(s) in flight, its reserved concurrency is {fn.reserved}. "
                    f"Retry later, or raise its reserved concurrency",
                    RESERVED_LIMIT,
                )
        elif fn.in_flight >= fn.provisioned:
            # Beyond its provisioned units the function spills over into the shared pool, whose
            # every unit may already be claimed by in-flight or provisioned (even idle) work.
            pool = self.unreserved_pool()
            claimed = self._unreserved_claims()
            if claimed >= pool:
                raise TooManyRequestsError(
                    f"Rate Exceeded: the unreserved pool is full ({claimed} of {pool} claimed: "
                    f"account_concurrency={self._account} minus {self._reserved_total()} "
                    f"reserved; idle provisioned environments count too). Retry later, lower "
                    f"reservations, or raise account_concurrency",
                    ACCOUNT_LIMIT,
                )
        fn.in_flight += 1

    def release(self, function: str) -> None:
        """One invocation of ``function`` finished, whatever its outcome."""
        fn = self._functions.get(function)
        # A function may be deleted while its last invocations run, and a stray second release
        # must not make room that does not exist: both are harmless no-ops.
        if fn is not None and fn.in_flight > 0:
            fn.in_flight -= 1

    def allow_new_environment(self, function: str) -> None:
        """Take a token from ``function``'s scaling bucket for one cold start, or throttle."""
        fn = self._get(function)
        now = self._clock()
        fn.tokens, fn.refilled_at = self._tokens(fn, now), now
        if fn.tokens + _EPSILON < 1.0:
            wait = (1.0 - fn.tokens) * SCALE_WINDOW_S / self._scale_rate
            raise TooManyRequestsError(
                f"Rate Exceeded: function {function!r} may add {self._scale_rate} execution "
                f"environments per {SCALE_WINDOW_S:g} s and is scaling faster. Retry in "
                f"{wait:.2f} s, or raise scale_rate",
                RESERVED_FUNCTION_RATE if fn.reserved is not None else FUNCTION_RATE,
            )
        fn.tokens = max(fn.tokens - 1.0, 0.0)

    def _tokens(self, fn: _Function, now: float) -> float:
        # Continuous refill ("Lambda scaling behavior": refilled over time, not once every 10 s,
        # and unused rate does not accumulate beyond one bucket).
        elapsed = max(now - fn.refilled_at, 0.0)
        refill = elapsed * self._scale_rate / SCALE_WINDOW_S
        return min(fn.tokens + refill, float(self._scale_rate))

    # -- what the metrics and widgets read ------------------------------------------------

    def in_flight(self, function: str) -> int:
        """Invocations of ``function`` in flight (its ``ConcurrentExecutions``)."""
        return self._get(function).in_flight

    def concurrency(self) -> int:
        """Invocations in flight across all functions (account ``ConcurrentExecutions``)."""
        return sum(fn.in_flight for fn in self._functions.values())

    def claimed(self) -> int:
        """Concurrency unavailable to on-demand invocations, like ``ClaimedAccountConcurrency``."""
        return self._reserved_total() + self._unreserved_claims()

    def unreserved_pool(self) -> int:
        """The account limit minus every reservation: what unreserved functions share."""
        return self._account - self._reserved_total()

    def snapshot(self) -> dict[str, Any]:
        """Plain data for metrics and widgets; reading it changes nothing."""
        now = self._clock()
        return {
            "account_concurrency": self._account,
            "unreserved_minimum": self._minimum,
            "unreserved_pool": self.unreserved_pool(),
            "scale_rate": self._scale_rate,
            "reserved": self._reserved_total(),
            "concurrency": self.concurrency(),
            "claimed": self.claimed(),
            "functions": {
                name: {
                    "in_flight": fn.in_flight,
                    "reserved": fn.reserved,
                    "provisioned": fn.provisioned,
                    "tokens": self._tokens(fn, now),
                }
                for name, fn in self._functions.items()
            },
        }

    def __repr__(self) -> str:
        return (
            f"<CountingService {self.concurrency()}/{self._account} in flight, "
            f"{self._reserved_total()} reserved>"
        )

    # -- helpers --------------------------------------------------------------------------

    def _get(self, function: str) -> _Function:
        try:
            return self._functions[function]
        except KeyError:
            raise ResourceNotFoundError(f"Function not found: {function}") from None

    def _reserved_total(self) -> int:
        return sum(fn.reserved for fn in self._functions.values() if fn.reserved is not None)

    def _unreserved_claims(self) -> int:
        # An unreserved function claims its provisioned units even when idle, and every
        # invocation it runs beyond them.
        return sum(
            max(fn.in_flight, fn.provisioned)
            for fn in self._functions.values()
            if fn.reserved is None
        )

    def _allocated(self, excluding: str | None = None) -> int:
        return sum(fn.allocated for name, fn in self._functions.items() if name != excluding)
