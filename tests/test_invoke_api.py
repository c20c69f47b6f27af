"""The Invoke API, specified through the clients students use: boto3, the AWS CLI and curl.

``POST /2015-03-31/functions/{name}/invocations`` as in design.md §5 and AWS's API Reference
("Invoke"): function errors answer 200 with ``X-Amz-Function-Error``; service errors answer
their status with ``x-amzn-ErrorType`` and a JSON body that boto3 turns into its exceptions.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from helpers import lambda_client

LIMIT = 6 * 1024 * 1024
ARN = "arn:aws:lambda:us-east-1:123456789012:function:hello"
COLD = ["invoke.received", "env.init.start", "env.init.end", "invoke.start", "invoke.end"]


@pytest.fixture
def client(lab):
    return lambda_client(lab.endpoint_url)


@pytest.fixture
def errors(lab, handlers):
    """Deploy ``errors.<handler>`` under the name ``handler``."""

    def deploy(handler: str, **keys):
        return lab.deploy(handler, handler=f"errors.{handler}", code_dir=str(handlers), **keys)

    return deploy


def invoke(client, name: str = "hello", payload: bytes = b'{"name": "Ada"}', **kw):
    """boto3's invoke, with the payload read and parsed."""
    response = client.invoke(FunctionName=name, Payload=payload, **kw)
    raw = response["Payload"].read()
    response["Body"] = json.loads(raw) if raw else None
    return response


def service_error(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def last_request_id(lab) -> str:
    return lab.events.filter("invoke.received")[-1].request_id


# -- boto3: success and function errors -----------------------------------------------------


def test_invoke_answers_200_with_the_payload_and_executed_version(lab, client, hello):
    response = invoke(client)
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert response["Body"]["message"] == "Hello, Ada!"
    assert lab.events.kinds(last_request_id(lab)) == COLD


def test_a_function_error_is_200_with_FunctionError_Unhandled(lab, client, errors):
    errors("fail")
    response = invoke(client, "fail", b'{"x": 7}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert response["Body"]["errorType"] == "ValueError"
    assert response["Body"]["errorMessage"] == "bad input: 7"
    rid = last_request_id(lab)
    assert lab.events.kinds(rid) == COLD
    assert lab.events.filter("invoke.end", request_id=rid)[0].get("outcome") == "error"


def test_log_type_tail_returns_the_invocations_log(lab, client, hello):
    response = invoke(client, LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    rid = last_request_id(lab)
    assert f"START RequestId: {rid}" in log
    assert "hello Ada" in log  # the handler's own print
    assert f"END RequestId: {rid}" in log
    assert f"REPORT RequestId: {rid}" in log
    lines = log.splitlines()
    assert lines[0].startswith("START") and lines[-1].startswith("REPORT")
    assert len(log.encode()) <= 4096

    quiet = client.invoke(FunctionName="hello", Payload=b"{}")
    assert "LogResult" not in quiet


def test_the_log_tail_is_at_most_4_kb_even_for_non_ascii_output(client, hello):
    response = invoke(client, payload=json.dumps({"name": "é" * 3000}).encode(), LogType="Tail")
    log = base64.b64decode(response["LogResult"])
    assert len(log) <= 4096
    assert log.decode("utf-8", "ignore").rstrip().splitlines()[-1].startswith("REPORT")


def test_the_response_carries_the_invocations_request_id(lab, client, hello):
    response = client.invoke(FunctionName="hello", Payload=b"{}")
    assert response["ResponseMetadata"].get("RequestId") == last_request_id(lab)


def test_the_function_name_may_be_a_full_or_partial_arn(lab, client, hello):
    for name in (ARN, "123456789012:function:hello"):
        response = invoke(client, name)
        assert response["StatusCode"] == 200 and response["Body"]["message"] == "Hello, Ada!"
    assert [e.function for e in lab.events.filter("invoke.received")] == ["hello", "hello"]


def test_a_timeout_answers_Sandbox_Timedout(lab, client, errors):
    errors("slow", timeout=1)
    response = invoke(client, "slow", b'{"sleep": 10}')
    assert response["FunctionError"] == "Unhandled"
    assert response["Body"]["errorType"] == "Sandbox.Timedout"
    assert response["Body"]["errorMessage"].endswith("Task timed out after 1.00 seconds")
    rid = last_request_id(lab)
    assert lab.events.kinds(rid) == COLD
    assert lab.events.filter("invoke.end", request_id=rid)[0].get("outcome") == "timeout"


def test_a_process_that_exits_mid_invoke_answers_Runtime_ExitError(lab, client, errors):
    errors("crash")
    response = invoke(client, "crash", b"{}", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert response["Body"]["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in response["Body"]["errorMessage"]
    assert "about to crash" in base64.b64decode(response["LogResult"]).decode()
    rid = last_request_id(lab)
    assert lab.events.kinds(rid) == COLD
    assert lab.events.filter("invoke.end", request_id=rid)[0].get("outcome") == "crash"


def test_a_response_over_6_mb_answers_Function_ResponseSizeTooLarge(client, errors):
    errors("big")
    response = invoke(client, "big", b"{}")
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert response["Body"]["errorType"] == "Function.ResponseSizeTooLarge"


# -- boto3: invocation types ----------------------------------------------------------------


def test_an_event_invocation_is_accepted_with_202_and_runs_afterwards(lab, client, hello):
    response = invoke(client, InvocationType="Event")
    assert response["StatusCode"] == 202 and response["Body"] is None
    received = lab.events.filter("invoke.received")
    assert [e.get("invocation_type") for e in received] == ["Event"]
    rid = received[0].request_id
    for _ in range(250):
        if lab.events.filter("invoke.end", request_id=rid):
            break
        time.sleep(0.02)
    assert lab.events.kinds(rid) == COLD
    assert lab.events.filter("invoke.end", request_id=rid)[0].get("outcome") == "success"


def test_an_event_invocation_over_1_mb_is_413_RequestTooLargeException(lab, client, hello):
    payload = b'"' + b"x" * (1024 * 1024 - 1) + b'"'
    error = service_error(
        lambda: client.invoke(FunctionName="hello", Payload=payload, InvocationType="Event")
    )
    assert_service_error(error, 413, "RequestTooLargeException")
    assert lab.events.kinds() == []


def test_a_dry_run_answers_204_and_runs_nothing(lab, client, hello):
    response = invoke(client, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    assert lab.events.kinds() == []
    assert lab.environments() == []


# -- boto3: service errors ------------------------------------------------------------------


def assert_service_error(error: ClientError, status: int, code: str) -> None:
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.response["Error"]["Code"] == code
    assert error.response["Error"]["Message"]


def test_an_unknown_function_is_404_ResourceNotFoundException(lab, client):
    error = service_error(lambda: client.invoke(FunctionName="nope", Payload=b"{}"))
    assert isinstance(error, client.exceptions.ResourceNotFoundException)
    assert_service_error(error, 404, "ResourceNotFoundException")
    assert "nope" in error.response["Error"]["Message"]
    assert lab.events.kinds() == []


def test_a_request_over_6_mb_is_413_RequestTooLargeException(lab, client, hello):
    payload = b'"' + b"x" * (LIMIT - 1) + b'"'
    error = service_error(lambda: client.invoke(FunctionName="hello", Payload=payload))
    assert isinstance(error, client.exceptions.RequestTooLargeException)
    assert_service_error(error, 413, "RequestTooLargeException")
    assert lab.events.kinds() == []
    assert invoke(client)["StatusCode"] == 200  # the API keeps working


def test_a_body_that_is_not_json_is_400_InvalidRequestContentException(lab, client, hello):
    error = service_error(lambda: client.invoke(FunctionName="hello", Payload=b"{not json"))
    assert isinstance(error, client.exceptions.InvalidRequestContentException)
    assert_service_error(error, 400, "InvalidRequestContentException")
    assert lab.events.kinds() == []
    assert invoke(client)["StatusCode"] == 200


def test_reserved_concurrency_zero_throttles_with_429_and_a_reason(lab, client, hello):
    hello.reserved_concurrency = 0
    error = service_error(lambda: client.invoke(FunctionName="hello", Payload=b"{}"))
    assert isinstance(error, client.exceptions.TooManyRequestsException)
    assert_service_error(error, 429, "TooManyRequestsException")
    assert error.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    rid = last_request_id(lab)
    assert lab.events.kinds(rid) == ["invoke.received", "invoke.throttled"]
    assert lab.events.filter("invoke.throttled")[0].get("reason") == error.response["Reason"]

    hello.reserved_concurrency = 1
    assert invoke(client)["StatusCode"] == 200


def test_the_account_limit_throttles_with_ConcurrentInvocationLimitExceeded(lab, client, hello):
    lab.account_concurrency = 1
    with ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(hello.invoke, {"sleep": 1.0})
        for _ in range(250):
            if lab.events.filter("invoke.start"):
                break
            time.sleep(0.02)
        error = service_error(lambda: client.invoke(FunctionName="hello", Payload=b"{}"))
        assert busy.result(timeout=5).ok
    assert_service_error(error, 429, "TooManyRequestsException")
    assert error.response["Reason"] == "ConcurrentInvocationLimitExceeded"


# -- the AWS CLI ----------------------------------------------------------------------------


@pytest.fixture
def aws(lab, tmp_path):
    """Run ``aws lambda invoke`` against the lab: (exit code, printed JSON or stderr, output)."""
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_PAGER": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_PROFILE", None)
    version = subprocess.run(["aws", "--version"], capture_output=True, text=True, env=env)
    # CLI v2 reads blobs as base64 unless told otherwise; v1 has no such option.
    binary = (
        []
        if "aws-cli/1." in version.stdout + version.stderr
        else ["--cli-binary-format", "raw-in-base64-out"]
    )
    outfile = tmp_path / "response.json"

    def run(name: str, payload: str = '{"name": "Ada"}', *extra: str):
        done = subprocess.run(
            [
                "aws",
                "lambda",
                "invoke",
                "--endpoint-url",
                lab.endpoint_url,
                "--function-name",
                name,
                *binary,
                "--payload",
                payload,
                *extra,
                str(outfile),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        if done.returncode != 0:
            return done.returncode, done.stderr, None
        return 0, json.loads(done.stdout), json.loads(outfile.read_text())

    return run


def test_aws_cli_invoke_prints_the_status_and_writes_the_payload(lab, aws, hello):
    code, printed, payload = aws("hello", '{"name": "Ada"}', "--log-type", "Tail")
    assert code == 0
    assert printed["StatusCode"] == 200 and printed["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in printed
    assert "hello Ada" in base64.b64decode(printed["LogResult"]).decode()
    assert payload["message"] == "Hello, Ada!"
    assert lab.events.kinds(last_request_id(lab)) == COLD


def test_aws_cli_reports_a_function_error(aws, errors):
    errors("fail")
    code, printed, payload = aws("fail", '{"x": 1}')
    assert code == 0  # the call succeeded; the function failed
    assert printed["StatusCode"] == 200 and printed["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"


def test_aws_cli_fails_on_an_unknown_function(lab, aws):
    code, stderr, _ = aws("nope")
    assert code != 0
    assert "ResourceNotFoundException" in stderr
    assert lab.events.kinds() == []


# -- curl: the raw HTTP contract ------------------------------------------------------------


@pytest.fixture
def curl(lab, tmp_path):
    """POST to the Invoke API with curl: (status, lower-cased headers, body bytes)."""

    def post(name: str, data: bytes = b"{}", headers: dict[str, str] | None = None):
        body_in, head_out, body_out = (tmp_path / n for n in ("in", "headers", "out"))
        body_in.write_bytes(data)
        args = [
            "curl",
            "-sS",
            "--max-time",
            "30",
            "-X",
            "POST",
            "--data-binary",
            f"@{body_in}",
            "-D",
            str(head_out),
            "-o",
            str(body_out),
            "-w",
            "%{http_code}",
        ]
        for key, value in (headers or {}).items():
            args += ["-H", f"{key}: {value}"]
        url = f"{lab.endpoint_url}/2015-03-31/functions/{name}/invocations"
        done = subprocess.run([*args, url], capture_output=True, text=True, timeout=40)
        assert done.returncode == 0, done.stderr
        head = {}
        for line in head_out.read_text().splitlines()[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                head[key.strip().lower()] = value.strip()
        return int(done.stdout), head, body_out.read_bytes()

    return post


def test_curl_sees_the_aws_response_headers(curl, hello):
    status, head, body = curl("hello", b'{"name": "Ada"}', {"X-Amz-Log-Type": "Tail"})
    assert status == 200
    assert head["content-type"] == "application/json"
    assert head["x-amz-executed-version"] == "$LATEST"
    assert "x-amz-function-error" not in head
    assert "REPORT RequestId" in base64.b64decode(head["x-amz-log-result"]).decode()
    assert json.loads(body)["message"] == "Hello, Ada!"


def test_curl_sees_function_error_unhandled(curl, errors):
    errors("fail")
    status, head, body = curl("fail", b'{"x": 2}')
    assert status == 200 and head["x-amz-function-error"] == "Unhandled"
    assert json.loads(body)["errorType"] == "ValueError"


@pytest.mark.parametrize("invocation_type, status", [("Event", 202), ("DryRun", 204)])
def test_curl_invocation_types(lab, curl, hello, invocation_type, status):
    got, _, body = curl("hello", b"{}", {"X-Amz-Invocation-Type": invocation_type})
    assert got == status and body == b""


@pytest.mark.parametrize(
    ("name", "data", "status", "error_type"),
    [
        ("nope", b"{}", 404, "ResourceNotFoundException"),
        ("hello", b"not json", 400, "InvalidRequestContentException"),
        ("hello", b"x" * (LIMIT + 1), 413, "RequestTooLargeException"),
    ],
    ids=["unknown-function", "not-json", "too-large"],
)
def test_curl_sees_service_errors_with_their_type_header_and_body(
    curl, hello, name, data, status, error_type
):
    got, head, body = curl(name, data)
    assert got == status
    assert head["x-amzn-errortype"] == error_type
    assert head["content-type"] == "application/json"
    parsed = json.loads(body)
    assert parsed["Type"] == "User" and parsed["message"]
    assert curl("hello")[0] == 200  # the API keeps working


def test_curl_sees_a_throttle_with_its_reason(curl, hello):
    hello.reserved_concurrency = 0
    status, head, body = curl("hello")
    assert status == 429 and head["x-amzn-errortype"] == "TooManyRequestsException"
    assert json.loads(body)["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
