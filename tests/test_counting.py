"""The Counting Service, specified: who gets throttled, with which Reason, and when.

Pure logic, no processes. Time is a fake clock so the scaling-rate bucket is deterministic.
"""

from __future__ import annotations

import pytest

from lambda_lab.counting import CountingService
from lambda_lab.errors import ConfigError, ResourceNotFoundError, TooManyRequestsError

ACCOUNT = "ConcurrentInvocationLimitExceeded"
RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
RATE = "FunctionInvocationRateLimitExceeded"
RESERVED_RATE = "ReservedFunctionInvocationRateLimitExceeded"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def service(clock: FakeClock | None = None, **settings) -> CountingService:
    return CountingService(clock=clock or FakeClock(), **settings)


def admit_n(counting: CountingService, function: str, n: int) -> None:
    for _ in range(n):
        counting.admit(function)


def throttle_reason(call, *args) -> str:
    with pytest.raises(TooManyRequestsError) as info:
        call(*args)
    assert info.value.status == 429
    return info.value.reason


# -- defaults -------------------------------------------------------------------------------


def test_defaults_are_aws_sized():
    counting = service()
    assert counting.account_concurrency == 1000
    assert counting.unreserved_minimum == 100
    assert counting.scale_rate == 1000


def test_unreserved_minimum_scales_down_for_small_teaching_accounts():
    assert service(account_concurrency=10).unreserved_minimum == 1
    assert service(account_concurrency=5).unreserved_minimum == 0
    assert service(account_concurrency=10, unreserved_minimum=3).unreserved_minimum == 3


@pytest.mark.parametrize(
    "settings",
    [
        {"account_concurrency": 0},
        {"scale_rate": 0},
        {"unreserved_minimum": -1},
        {"account_concurrency": 10, "unreserved_minimum": 11},
    ],
)
def test_impossible_settings_are_refused(settings):
    with pytest.raises(ConfigError):
        service(**settings)


# -- the account limit ----------------------------------------------------------------------


def test_account_limit_throttles_with_concurrent_invocation_limit_exceeded():
    counting = service(account_concurrency=3)
    counting.register("a")
    counting.register("b")
    admit_n(counting, "a", 2)
    counting.admit("b")
    assert throttle_reason(counting.admit, "b") == ACCOUNT
    assert throttle_reason(counting.admit, "a") == ACCOUNT
    assert counting.concurrency() == 3


def test_throttled_invocations_are_not_counted():
    counting = service(account_concurrency=1)
    counting.register("a")
    counting.admit("a")
    throttle_reason(counting.admit, "a")
    assert counting.in_flight("a") == 1


def test_release_frees_a_unit_for_the_next_invocation():
    counting = service(account_concurrency=1)
    counting.register("a")
    counting.admit("a")
    counting.release("a")
    counting.admit("a")
    assert counting.in_flight("a") == 1


def test_release_never_goes_below_zero():
    counting = service(account_concurrency=1)
    counting.register("a")
    counting.release("a")
    counting.release("a")
    assert counting.in_flight("a") == 0
    counting.admit("a")
    assert throttle_reason(counting.admit, "a") == ACCOUNT


# -- reserved concurrency -------------------------------------------------------------------


def test_reserved_function_is_capped_at_its_reservation():
    counting = service(account_concurrency=100)
    counting.register("capped", reserved=2)
    admit_n(counting, "capped", 2)
    assert throttle_reason(counting.admit, "capped") == RESERVED
    counting.release("capped")
    counting.admit("capped")


def test_reservation_is_guaranteed_other_functions_cannot_eat_it():
    counting = service(account_concurrency=10)
    counting.register("critical", reserved=4)
    counting.register("noisy")
    admit_n(counting, "noisy", 6)
    assert throttle_reason(counting.admit, "noisy") == ACCOUNT
    admit_n(counting, "critical", 4)
    assert counting.concurrency() == 10


def test_unreserved_pool_is_account_minus_reservations():
    counting = service(account_concurrency=1000)
    counting.register("a", reserved=200)
    counting.register("b", reserved=100)
    counting.register("c")
    assert counting.unreserved_pool() == 700
    assert counting.claimed() == 300
    assert repr(counting) == "<CountingService 0/1000 in flight, 300 reserved>"


def test_reservation_that_breaks_the_unreserved_minimum_is_refused():
    counting = service(account_concurrency=1000)
    counting.register("a", reserved=500)
    counting.register("b")
    with pytest.raises(ConfigError) as info:
        counting.set_reserved("b", 401)
    message = str(info.value)
    for number in ("401", "500", "1000", "unreserved_minimum=100", "at most 400"):
        assert number in message
    counting.set_reserved("b", 400)  # exactly the account limit minus 100
    assert counting.unreserved_pool() == 100


def test_refused_reservation_changes_nothing():
    counting = service(account_concurrency=1000)
    counting.register("a", reserved=10)
    with pytest.raises(ConfigError):
        counting.set_reserved("a", 901)
    with pytest.raises(ConfigError):
        counting.register("a", reserved=901)
    assert counting.snapshot()["functions"]["a"]["reserved"] == 10


def test_reserved_zero_throttles_every_invocation():
    counting = service(account_concurrency=10)
    counting.register("stopped", reserved=0)
    assert throttle_reason(counting.admit, "stopped") == RESERVED
    counting.set_reserved("stopped", None)
    counting.admit("stopped")


def test_negative_or_non_integer_reservations_are_refused():
    counting = service()
    counting.register("a")
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ConfigError):
            counting.set_reserved("a", bad)


# -- provisioned concurrency ----------------------------------------------------------------


def test_provisioned_concurrency_counts_while_idle():
    counting = service(account_concurrency=10, unreserved_minimum=0)
    counting.register("warm", provisioned=8)
    counting.register("other")
    assert counting.claimed() == 8
    admit_n(counting, "other", 2)
    assert throttle_reason(counting.admit, "other") == ACCOUNT
    # ... but the provisioned function itself can still use what it holds.
    admit_n(counting, "warm", 8)
    assert counting.concurrency() == 10


def test_spill_over_beyond_provisioned_is_admitted_when_there_is_room():
    counting = service(account_concurrency=10, unreserved_minimum=0)
    counting.register("warm", provisioned=2)
    admit_n(counting, "warm", 10)
    assert counting.claimed() == 10
    assert throttle_reason(counting.admit, "warm") == ACCOUNT


def test_provisioned_must_fit_inside_the_reservation():
    counting = service(account_concurrency=100)
    counting.register("a", reserved=5)
    with pytest.raises(ConfigError, match="provisioned=6 for 'a' exceeds reserved=5"):
        counting.set_provisioned("a", 6)
    counting.set_provisioned("a", 5)
    with pytest.raises(ConfigError, match="provisioned=5 for 'a' exceeds reserved=4"):
        counting.set_reserved("a", 4)
    with pytest.raises(ConfigError):
        counting.register("b", reserved=1, provisioned=2)


def test_provisioned_inside_a_reservation_is_not_counted_twice():
    counting = service(account_concurrency=100)
    counting.register("a", reserved=20, provisioned=20)
    assert counting.claimed() == 20
    assert counting.unreserved_pool() == 80


def test_unreserved_provisioned_must_leave_the_unreserved_minimum():
    counting = service(account_concurrency=1000)
    counting.register("a", reserved=300)
    counting.register("warm")
    with pytest.raises(ConfigError, match="at most 600"):
        counting.set_provisioned("warm", 601)
    counting.set_provisioned("warm", 600)
    # Provisioned units are allocated, so they also limit later reservations.
    counting.register("b")
    with pytest.raises(ConfigError, match="at most 0"):
        counting.set_reserved("b", 1)


# -- the scaling rate -----------------------------------------------------------------------


def test_scaling_bucket_allows_scale_rate_new_environments_at_once(clock):
    counting = service(clock, scale_rate=2)
    counting.register("a")
    counting.allow_new_environment("a")
    counting.allow_new_environment("a")
    assert throttle_reason(counting.allow_new_environment, "a") == RATE


def test_scaling_bucket_refills_continuously_over_ten_seconds(clock):
    counting = service(clock, scale_rate=2)
    counting.register("a")
    counting.allow_new_environment("a")
    counting.allow_new_environment("a")
    clock.advance(4.9)
    throttle_reason(counting.allow_new_environment, "a")
    clock.advance(0.1)  # 5 s: half the window, one of two tokens back
    counting.allow_new_environment("a")
    throttle_reason(counting.allow_new_environment, "a")


def test_unused_scaling_rate_does_not_accumulate(clock):
    counting = service(clock, scale_rate=2)
    counting.register("a")
    clock.advance(60)
    counting.allow_new_environment("a")
    counting.allow_new_environment("a")
    throttle_reason(counting.allow_new_environment, "a")


def test_each_function_scales_independently(clock):
    counting = service(clock, scale_rate=1)
    counting.register("a")
    counting.register("b")
    counting.allow_new_environment("a")
    counting.allow_new_environment("b")


def test_reserved_function_scaling_throttle_has_the_reserved_reason(clock):
    counting = service(clock, scale_rate=1)
    counting.register("r", reserved=10)
    counting.allow_new_environment("r")
    assert throttle_reason(counting.allow_new_environment, "r") == RESERVED_RATE


def test_lowering_scale_rate_caps_the_bucket(clock):
    counting = service(clock, scale_rate=10)
    counting.register("a")
    counting.scale_rate = 1
    counting.allow_new_environment("a")
    throttle_reason(counting.allow_new_environment, "a")


# -- live changes ---------------------------------------------------------------------------


def test_shrinking_account_below_reservations_is_refused():
    counting = service(account_concurrency=1000, unreserved_minimum=100)
    counting.register("a", reserved=800)
    with pytest.raises(ConfigError, match="at least 900"):
        counting.account_concurrency = 850
    assert counting.account_concurrency == 1000
    counting.account_concurrency = 900


def test_lowering_the_limit_applies_to_the_next_admit_without_evicting():
    counting = service(account_concurrency=10)
    counting.register("a")
    admit_n(counting, "a", 5)
    counting.account_concurrency = 3
    assert counting.in_flight("a") == 5
    assert throttle_reason(counting.admit, "a") == ACCOUNT
    counting.release("a")
    counting.release("a")
    assert throttle_reason(counting.admit, "a") == ACCOUNT  # 3 in flight, still at the limit
    counting.release("a")
    counting.admit("a")
    assert counting.in_flight("a") == 3


def test_lowering_a_reservation_applies_to_the_next_admit_without_evicting():
    counting = service(account_concurrency=100)
    counting.register("a", reserved=5)
    admit_n(counting, "a", 5)
    counting.set_reserved("a", 2)
    assert counting.in_flight("a") == 5
    assert throttle_reason(counting.admit, "a") == RESERVED


def test_automatic_minimum_follows_the_account_limit():
    counting = service(account_concurrency=10)
    counting.account_concurrency = 2000
    assert counting.unreserved_minimum == 100
    counting.register("a", reserved=800)
    # At 888 the automatic minimum is 88 and exactly 88 stay unreserved.
    with pytest.raises(ConfigError, match="at least 888"):
        counting.account_concurrency = 887
    counting.account_concurrency = 888
    assert counting.unreserved_minimum == 88


def test_re_register_replaces_settings_and_keeps_in_flight():
    counting = service(account_concurrency=100)
    counting.register("a")
    admit_n(counting, "a", 3)
    counting.register("a", reserved=3)
    assert counting.in_flight("a") == 3
    assert throttle_reason(counting.admit, "a") == RESERVED


# -- unknown functions and the snapshot -----------------------------------------------------


def test_unknown_function_is_resource_not_found():
    counting = service()
    for call in (
        counting.admit,
        counting.allow_new_environment,
        counting.in_flight,
        counting.unregister,
    ):
        with pytest.raises(ResourceNotFoundError, match="Function not found: ghost"):
            call("ghost")
    with pytest.raises(ResourceNotFoundError):
        counting.set_reserved("ghost", 1)


def test_unregistered_function_frees_its_reservation_and_ignores_late_releases():
    counting = service(account_concurrency=100)
    counting.register("a", reserved=50)
    counting.admit("a")
    counting.unregister("a")
    counting.release("a")
    assert counting.unreserved_pool() == 100
    assert counting.concurrency() == 0


def test_snapshot_is_plain_data(clock):
    counting = service(clock, account_concurrency=100, scale_rate=10)
    counting.register("a", reserved=20, provisioned=5)
    counting.register("b", provisioned=3)
    counting.admit("a")
    counting.allow_new_environment("b")
    clock.advance(0.5)
    assert counting.snapshot() == {
        "account_concurrency": 100,
        "unreserved_minimum": 10,
        "unreserved_pool": 80,
        "scale_rate": 10,
        "reserved": 20,
        "concurrency": 1,
        "claimed": 23,
        "functions": {
            "a": {"in_flight": 1, "reserved": 20, "provisioned": 5, "tokens": 10.0},
            "b": {"in_flight": 0, "reserved": None, "provisioned": 3, "tokens": 9.5},
        },
    }
