"""Unmodified Lambda runtime clients against the lab: proof that the Runtime API is the real one.

* ``awslambdaric``, AWS's official Python runtime interface client (``runtime="awslambdaric"``);
* the bash + curl ``bootstrap`` of AWS's "Building a custom runtime" tutorial (``"provided"``);
* a Go program built with ``aws-lambda-go``, when a Go toolchain is installed.

Each one starts cold, is then reused warm (same process), and reports errors in its own way.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import textwrap

import pytest
from helpers import lambda_client

COLD = ["invoke.received", "env.init.start", "env.init.end", "invoke.start", "invoke.end"]
WARM = ["invoke.received", "invoke.start", "invoke.end"]
INIT_FAILED = ["invoke.received", "env.init.start", "env.init.error", "invoke.end"]


def assert_cold_then_warm(lab, first, second) -> None:
    assert first.ok and second.ok, (first.payload, second.payload)
    assert (first.cold, second.cold) == (True, False)
    assert first.env == second.env and first.pid == second.pid
    assert lab.events.kinds(first.request_id) == COLD
    assert lab.events.kinds(second.request_id) == WARM


def log_lines(lab, request_id: str) -> list[str]:
    return [e.get("line") for e in lab.events.filter("log", request_id=request_id)]


# -- awslambdaric ---------------------------------------------------------------------------


@pytest.fixture
def ric(lab, handlers):
    """Deploy ``handler`` on the official Python runtime interface client."""
    pytest.importorskip("awslambdaric")

    def deploy(name: str, handler: str, **keys):
        return lab.deploy(
            name, runtime="awslambdaric", handler=handler, code_dir=str(handlers), **keys
        )

    return deploy


def test_awslambdaric_starts_cold_then_reuses_the_same_process(lab, ric):
    hello = ric("hello", "hello.handler")
    first, second = hello.invoke({"name": "Ada"}), hello.invoke({"name": "Bob"})
    assert_cold_then_warm(lab, first, second)
    assert first.payload["message"] == "Hello, Ada!"
    assert second.payload["message"] == "Hello, Bob!"
    assert first.payload["pid"] == second.payload["pid"] == first.pid
    assert (first.payload["count"], second.payload["count"]) == (1, 2)  # imported once
    assert "hello Ada" in log_lines(lab, first.request_id)


def test_awslambdaric_gets_the_invocation_facts_from_the_headers(lab, ric):
    whoami = ric("whoami", "whoami.handler", timeout=3)
    result = whoami.invoke({})
    assert result.ok
    assert result.payload["request_id"] == result.request_id
    assert result.payload["function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:whoami"
    )
    assert result.payload["function_name"] == "whoami"
    assert 0 < result.payload["remaining_ms"] <= 3000  # from Lambda-Runtime-Deadline-Ms


def test_awslambdaric_reports_a_handler_error_with_its_exception_type(lab, ric):
    fail = ric("fail", "errors.fail")
    result = fail.invoke({"x": 1})
    assert (result.outcome, result.error_type) == ("error", "ValueError")
    assert result.payload["errorMessage"] == "bad input: 1"
    assert result.payload["requestId"] == result.request_id
    assert any("errors.py" in frame for frame in result.payload["stackTrace"])
    assert lab.events.kinds(result.request_id) == COLD
    # The environment survives a handler error: the next call is warm.
    again = fail.invoke({"x": 2})
    assert again.env == result.env and not again.cold


def test_awslambdaric_reports_an_init_error_and_the_environment_is_discarded(lab, ric):
    broken = ric("broken", "broken_init.handler")
    result = broken.invoke({})
    assert (result.outcome, result.error_type) == ("error", "RuntimeError")
    assert result.payload["errorMessage"] == "cannot connect to the database"
    assert lab.events.kinds(result.request_id) == INIT_FAILED
    assert broken.environments() == []


def test_our_runtime_reports_an_init_error_as_awslambdaric_does(lab, ric, handlers):
    official = ric("official", "broken_init.handler").invoke({})
    ours = lab.deploy("ours", handler="broken_init.handler", code_dir=str(handlers)).invoke({})
    assert ours.error_type == official.error_type
    assert ours.payload["errorMessage"] == official.payload["errorMessage"]


def test_awslambdaric_sees_a_client_context_given_to_invoke(lab, ric):
    whoami = ric("whoami", "whoami.handler")
    result = whoami.invoke({}, client_context=json.dumps({"custom": {"lesson": "3"}}))
    assert result.ok, result.payload
    assert result.payload["custom"] == {"lesson": "3"}


def test_awslambdaric_sees_a_client_context_sent_by_boto3(lab, ric):
    ric("whoami", "whoami.handler")
    client = lambda_client(lab.endpoint_url)
    context = base64.b64encode(json.dumps({"custom": {"lesson": "3"}}).encode()).decode()
    response = client.invoke(FunctionName="whoami", Payload=b"{}", ClientContext=context)
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    assert body["custom"] == {"lesson": "3"}


# -- bash + curl ----------------------------------------------------------------------------


def test_the_bash_curl_bootstrap_echoes_cold_then_warm(lab, handlers):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    bash = lab.deploy("bash", runtime="provided", code_dir=str(handlers))
    first, second = bash.invoke({"n": 1}), bash.invoke({"n": [2, "two"]})
    assert_cold_then_warm(lab, first, second)
    assert first.payload == {"echo": {"n": 1}, "runtime": "bash"}
    assert second.payload == {"echo": {"n": [2, "two"]}, "runtime": "bash"}
    assert "bash runtime starting, handler lambda_function.handler" in log_lines(lab, None)
    assert any(line.startswith("got event") for line in log_lines(lab, second.request_id))


# -- Go (aws-lambda-go) ---------------------------------------------------------------------

GO_MAIN = textwrap.dedent("""\
    package main

    import (
    \t"context"
    \t"errors"
    \t"os"

    \t"github.com/aws/aws-lambda-go/lambda"
    \t"github.com/aws/aws-lambda-go/lambdacontext"
    )

    func handle(ctx context.Context, event map[string]any) (map[string]any, error) {
    \tif event["fail"] == true {
    \t\treturn nil, errors.New("go says no")
    \t}
    \tlc, _ := lambdacontext.FromContext(ctx)
    \treturn map[string]any{"echo": event, "runtime": "go", "pid": os.Getpid(),
    \t\t"request_id": lc.AwsRequestID}, nil
    }

    func main() { lambda.Start(handle) }
""")


@pytest.fixture(scope="module")
def go_bootstrap(tmp_path_factory):
    """A ``bootstrap`` built with aws-lambda-go; skipped without Go or without the module."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain")
    src = tmp_path_factory.mktemp("go-runtime")
    (src / "main.go").write_text(GO_MAIN)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    for argv in (
        [go, "mod", "init", "lablambda"],
        [go, "mod", "tidy"],
        [go, "build", "-o", "bootstrap", "."],
    ):
        done = subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"could not build the Go runtime: {done.stderr[-500:]}")
    return src


def test_a_go_runtime_built_with_aws_lambda_go_round_trips(lab, go_bootstrap):
    fn = lab.deploy("gofn", runtime="provided", code_dir=str(go_bootstrap))
    first, second = fn.invoke({"n": 1}), fn.invoke({"n": 2})
    assert_cold_then_warm(lab, first, second)
    assert first.payload["echo"] == {"n": 1} and first.payload["runtime"] == "go"
    assert second.payload["request_id"] == second.request_id
    assert first.payload["pid"] == second.payload["pid"] == first.pid

    failed = fn.invoke({"fail": True})
    assert failed.outcome == "error" and failed.payload["errorMessage"] == "go says no"
    assert failed.error_type == failed.payload["errorType"]
    assert failed.env == first.env  # a handler error does not end the environment
