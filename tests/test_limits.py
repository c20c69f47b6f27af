"""Throttling, reserved and provisioned concurrency, scaling rate and async invokes, end to end."""

from __future__ import annotations

import json
import time

import pytest
from helpers import lambda_client, wait_for

from lambda_lab import ConfigError, Lab


def client(lab: Lab):
    return lambda_client(lab.endpoint_url)


def reasons(results) -> list[str | None]:
    return sorted(r.reason for r in results if r.outcome == "throttled")


def test_account_limit_throttles_the_excess(handlers):
    with Lab(account_concurrency=3) as lab:
        fn = lab.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        results = fn.burst(5, {"sleep": 0.5})
        assert sum(r.ok for r in results) == 3
        assert reasons(results) == ["ConcurrentInvocationLimitExceeded"] * 2
        throttled = lab.events.filter("invoke.throttled")
        assert len(throttled) == 2
        assert lab.events.kinds(throttled[0].request_id) == ["invoke.received", "invoke.throttled"]
        assert len(lab.events.filter("env.init.start")) == 3  # nothing is queued


def test_reserved_concurrency_throttles_through_boto3(lab, handlers):
    fn = lab.deploy(
        "hello", handler="hello.handler", code_dir=str(handlers), reserved_concurrency=1
    )
    results = fn.burst(2, {"sleep": 0.5})
    assert reasons(results) == ["ReservedFunctionConcurrentInvocationLimitExceeded"]

    fn.reserved_concurrency = 0  # AWS's stop switch
    with pytest.raises(client(lab).exceptions.TooManyRequestsException) as info:
        client(lab).invoke(FunctionName="hello", Payload=b"{}")
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_reservation_is_guaranteed_and_shrinks_the_unreserved_pool(handlers):
    with Lab(account_concurrency=4, unreserved_minimum=1) as lab:
        reserved = lab.deploy(
            "reserved", handler="hello.handler", code_dir=str(handlers), reserved_concurrency=2
        )
        other = lab.deploy("other", handler="hello.handler", code_dir=str(handlers))
        results = other.burst(3, {"sleep": 0.5})
        # Only 4 - 2 = 2 units are unreserved: the third is throttled even though 2 are idle.
        assert reasons(results) == ["ConcurrentInvocationLimitExceeded"]
        assert all(r.ok for r in reserved.burst(2, {}))


def test_reservation_breaking_unreserved_minimum_is_refused(handlers):
    with Lab(account_concurrency=20) as lab:  # minimum unreserved: min(100, 20 // 10) = 2
        fn = lab.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        with pytest.raises(ConfigError, match="unreserved"):
            fn.reserved_concurrency = 19
        fn.reserved_concurrency = 18
        with pytest.raises(ConfigError):
            lab.deploy(
                "big", handler="hello.handler", code_dir=str(handlers), reserved_concurrency=1
            )


def test_scaling_rate_limits_new_environments(handlers):
    with Lab(scale_rate=2) as lab:
        fn = lab.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        results = fn.burst(4, {"sleep": 0.3})
        assert sum(r.ok for r in results) == 2
        assert reasons(results) == ["FunctionInvocationRateLimitExceeded"] * 2
        # Warm environments need no token: reuse is never rate limited.
        assert all(r.ok and not r.cold for r in fn.burst(2, {}))


def test_live_account_limit_change(lab, hello):
    lab.account_concurrency = 1
    results = hello.burst(2, {"sleep": 0.3})
    assert reasons(results) == ["ConcurrentInvocationLimitExceeded"]
    lab.account_concurrency = 10
    assert all(r.ok for r in hello.burst(2, {"sleep": 0.3}))


def test_provisioned_environments_exist_before_first_invoke_and_survive_idling(lab, handlers):
    fn = lab.deploy(
        "pc",
        handler="counter.handler",
        code_dir=str(handlers),
        provisioned_concurrency=2,
        idle_timeout=0.2,
    )
    envs = lab.environments()
    assert len(envs) == 2 and all(e.provisioned and e.state == "idle" for e in envs)
    assert not lab.events.filter("invoke.received")
    starts = lab.events.filter("env.init.start")
    assert [e.get("initialization_type") for e in starts] == ["provisioned-concurrency"] * 2
    result = fn.invoke({})
    assert not result.cold
    assert result.payload["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    time.sleep(0.6)  # three idle timeouts
    assert not lab.events.filter("env.shutdown.start")
    # Spill-over beyond the provisioned two: on-demand environments, cold, and reapable.
    results = fn.burst(3, {})
    assert sum(r.cold for r in results) >= 1
    wait_for(lambda: lab.events.filter("env.shutdown.start"))
    assert {e.get("reason") for e in lab.events.filter("env.shutdown.start")} == {"idle"}
    assert sum(e.provisioned for e in lab.environments()) == 2


def test_provisioned_concurrency_changes_live(lab, hello):
    hello.provisioned_concurrency = 3
    assert sum(e.provisioned for e in lab.environments()) == 3
    hello.provisioned_concurrency = 1
    assert sum(e.provisioned for e in lab.environments()) == 1


def test_async_invoke_is_accepted_then_retried_twice_on_error(handlers):
    with Lab(retry_delays=(0.1, 0.2)) as lab:
        fn = lab.deploy("errors", handler="errors.fail", code_dir=str(handlers))
        response = client(lab).invoke(
            FunctionName="errors", InvocationType="Event", Payload=json.dumps({"x": 1})
        )
        assert response["StatusCode"] == 202
        wait_for(lambda: len(lab.events.filter("invoke.end", function="errors")) == 3)
        received = lab.events.filter("invoke.received")
        assert len(received) == 1 and received[0].get("invocation_type") == "Event"
        request_id = received[0].request_id
        ends = lab.events.filter("invoke.end", request_id=request_id)
        assert [e.get("outcome") for e in ends] == ["error"] * 3
        assert [e.get("attempt") for e in ends] == [1, 2, 3]
        time.sleep(0.4)
        assert len(lab.events.filter("invoke.end")) == 3  # no fourth attempt
        assert fn.invoke_async({"x": 2})


def test_async_payload_limit_is_one_megabyte(lab, hello):
    with pytest.raises(client(lab).exceptions.RequestTooLargeException):
        client(lab).invoke(
            FunctionName="hello",
            InvocationType="Event",
            Payload=json.dumps({"pad": "x" * (1024 * 1024)}),
        )


def test_burst_of_fifty_loses_nothing(handlers):
    with Lab(account_concurrency=50) as lab:
        fn = lab.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        results = fn.burst(50, {"sleep": 0.5})
        assert [r.outcome for r in results] == ["success"] * 50
        assert len({r.env for r in results}) == 50
        assert len(lab.events.filter("invoke.end")) == 50


def test_provisioned_environment_that_crashes_is_replaced(lab, handlers):
    fn = lab.deploy("pc", handler="errors.crash", code_dir=str(handlers),
                    provisioned_concurrency=1)
    assert fn.invoke({}).outcome == "crash"
    wait_for(lambda: [e for e in lab.environments() if e.provisioned and e.state == "idle"])
    assert len(lab.events.filter("env.init.start", provisioned=True)) == 2


def test_provisioned_environments_that_cannot_initialise_are_reported_not_retried(lab, handlers):
    from lambda_lab import FunctionError

    with pytest.raises(FunctionError, match="failed to initialise"):
        lab.deploy("pc", handler="broken_init.handler", code_dir=str(handlers),
                   provisioned_concurrency=2)
    time.sleep(0.3)
    assert len(lab.events.filter("env.init.start")) == 2
