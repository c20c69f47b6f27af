"""The Runtime API, specified by speaking raw HTTP to one environment's endpoint (design.md §5).

The function under test runs ``handlers/puppet_bootstrap``, a custom runtime that never calls
the API itself: the test plays the runtime, with ``http.client`` or a raw socket, against the
port in ``lab.environments()``. Each protocol mistake is followed by proof that the endpoint,
the other environments and the lab still work.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message

import pytest

API = "/2018-06-01/runtime"
LIMIT = 6 * 1024 * 1024  # "Lambda quotas": 6 MB synchronous response
TIMEOUT_S = 20  # the puppet's function timeout: far longer than any test takes
ARN = "arn:aws:lambda:us-east-1:123456789012:function:puppet"
COLD = ["invoke.received", "env.init.start", "env.init.end", "invoke.start", "invoke.end"]
WARM = ["invoke.received", "invoke.start", "invoke.end"]


# -- the test's side of the Runtime API -----------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self):
        return json.loads(self.body)


def _read(response: http.client.HTTPResponse) -> Reply:
    return Reply(response.status, response.headers, response.read())


class RawRuntime:
    """One environment's Runtime API, one plain HTTP request per call."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, API + path, body=body, headers=headers or {})
            return _read(conn.getresponse())
        finally:
            conn.close()

    def next(self) -> Reply:
        return self.call("GET", "/invocation/next")

    def respond(self, request_id: str, body: bytes = b'{"ok": true}', **kw) -> Reply:
        return self.call("POST", f"/invocation/{request_id}/response", body, **kw)

    def error(self, request_id: str, body: bytes, **kw) -> Reply:
        return self.call("POST", f"/invocation/{request_id}/error", body, **kw)

    def init_error(self, body: bytes, **kw) -> Reply:
        return self.call("POST", "/init/error", body, **kw)

    def open_poll(self) -> socket.socket:
        """Send ``GET next`` on a raw socket and return without reading the answer."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(f"GET {API}/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return sock


def answered_within(sock: socket.socket, seconds: float) -> Reply | None:
    """The reply on ``sock`` if the server sent one within ``seconds``, else None."""
    readable, _, _ = select.select([sock], [], [], seconds)
    if not readable:
        return None
    response = http.client.HTTPResponse(sock)
    response.begin()
    return _read(response)


def assert_protocol_error(reply: Reply, status: int, error_type: str) -> None:
    assert reply.status == status
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert set(body) == {"errorType", "errorMessage"}
    assert body["errorType"] == error_type
    assert body["errorMessage"]


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def background(lab):
    """Threads for invocations that wait on the test's runtime; the lab closes before they
    are joined, so an invocation nobody answered ends (as a crash) instead of hanging."""
    executor = ThreadPoolExecutor(max_workers=4)
    yield executor
    lab.close()
    executor.shutdown(wait=True)


@pytest.fixture
def puppet(lab, handlers):
    return lab.deploy(
        "puppet",
        runtime="provided",
        bootstrap=str(handlers / "puppet_bootstrap"),
        code_dir=str(handlers),
        timeout=TIMEOUT_S,
    )


def endpoint(fn, exclude: tuple[str, ...] = ()) -> tuple[str, RawRuntime]:
    """The Runtime API of ``fn``'s live environment (not in ``exclude``), once it exists."""
    for _ in range(250):
        for info in fn.environments():
            if info.env not in exclude and info.state in ("initializing", "idle", "busy"):
                return info.env, RawRuntime(info.port)
        time.sleep(0.02)
    pytest.fail(f"no environment of {fn.name} appeared")


def cold_start(background, fn, payload=b'{"n": 1}', **kw) -> tuple[Future, RawRuntime, Reply]:
    """Invoke ``fn`` (cold) and take the event as its runtime: (call, runtime, next reply)."""
    call = background.submit(fn.invoke, payload, **kw)
    _, runtime = endpoint(fn)
    delivered = runtime.next()
    assert delivered.status == 200, delivered.body
    return call, runtime, delivered


def request_id(reply: Reply) -> str:
    return reply.headers["Lambda-Runtime-Aws-Request-Id"]


def serve_one(background, fn, runtime: RawRuntime, payload: dict) -> None:
    """A full warm round trip through ``runtime``: the endpoint still works."""
    call = background.submit(fn.invoke, payload)
    delivered = runtime.next()
    assert delivered.status == 200 and json.loads(delivered.body) == payload
    assert runtime.respond(request_id(delivered), b'"fine"').status == 202
    result = call.result(timeout=5)
    assert result.ok and result.payload == "fine" and not result.cold


def assert_lab_still_serves(lab, hello) -> None:
    """Another function, in its own environment, is unaffected."""
    result = hello.invoke({"name": "Ada"})
    assert result.ok and result.payload["message"] == "Hello, Ada!"
    assert lab.events.kinds(result.request_id)[-1] == "invoke.end"


# -- GET next -------------------------------------------------------------------------------


def test_next_returns_the_event_with_exactly_the_documented_headers(lab, background, puppet):
    event = b'{"name":  "Ada", "list": [1, 2, 3]}'  # odd spacing: handed over byte for byte
    call = background.submit(puppet.invoke, event)
    _, runtime = endpoint(puppet)
    before_ms = time.time() * 1000
    delivered = runtime.next()
    after_ms = time.time() * 1000

    assert delivered.status == 200
    assert delivered.body == event
    assert delivered.headers.get_all("Content-Type") == ["application/json"]
    assert delivered.headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN
    assert delivered.headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    deadline_ms = int(delivered.headers["Lambda-Runtime-Deadline-Ms"])  # epoch ms
    assert before_ms + TIMEOUT_S * 1000 - 50 <= deadline_ms <= after_ms + TIMEOUT_S * 1000 + 50
    assert "Lambda-Runtime-Client-Context" not in delivered.headers
    assert "Lambda-Runtime-Cognito-Identity" not in delivered.headers

    rid = request_id(delivered)
    accepted = runtime.respond(rid, b'{"answer": 42}')
    assert accepted.status == 202 and accepted.json() == {"status": "OK"}
    result = call.result(timeout=5)
    assert result.request_id == rid and result.payload == {"answer": 42}
    assert lab.events.kinds(rid) == COLD


def test_client_context_header_is_sent_only_when_the_invoke_set_one(background, puppet):
    context = '{"custom": {"lesson": "runtime-api"}}'
    call, runtime, delivered = cold_start(background, puppet, b"{}", client_context=context)
    assert delivered.headers["Lambda-Runtime-Client-Context"] == context
    runtime.respond(request_id(delivered))
    assert call.result(timeout=5).ok

    call = background.submit(puppet.invoke, b"{}")
    delivered = runtime.next()
    assert "Lambda-Runtime-Client-Context" not in delivered.headers
    runtime.respond(request_id(delivered))
    assert call.result(timeout=5).ok


def test_invoke_api_client_context_reaches_the_runtime_as_decoded_json(lab, background, puppet):
    context = {"custom": {"lesson": "runtime-api"}}
    encoded = base64.b64encode(json.dumps(context).encode()).decode()

    def invoke_over_http() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", lab.port, timeout=10)
        try:
            conn.request(
                "POST",
                "/2015-03-31/functions/puppet/invocations",
                b"{}",
                {"X-Amz-Client-Context": encoded},
            )
            return conn.getresponse().status
        finally:
            conn.close()

    call = background.submit(invoke_over_http)
    _, runtime = endpoint(puppet)
    delivered = runtime.next()
    runtime.respond(request_id(delivered))
    assert call.result(timeout=5) == 200
    assert json.loads(delivered.headers["Lambda-Runtime-Client-Context"]) == context


def test_next_while_an_event_is_unanswered_is_403(lab, background, puppet, hello):
    call, runtime, delivered = cold_start(background, puppet)
    assert_protocol_error(runtime.next(), 403, "InvalidStateTransition")

    assert runtime.respond(request_id(delivered)).status == 202
    assert call.result(timeout=5).ok
    serve_one(background, puppet, runtime, {"after": "early next"})
    assert_lab_still_serves(lab, hello)


# -- POST response / error: state checks ----------------------------------------------------


def test_an_endpoint_serves_only_its_own_environments_invocations(lab, background, puppet):
    calls = [background.submit(puppet.invoke, {"n": n}) for n in (1, 2)]
    first, runtime_a = endpoint(puppet)
    _, runtime_b = endpoint(puppet, exclude=(first,))
    got_a, got_b = runtime_a.next(), runtime_b.next()
    assert got_a.status == got_b.status == 200
    rid_a, rid_b = request_id(got_a), request_id(got_b)

    # B's request id is unknown on A's endpoint, even while B's invocation is open.
    assert_protocol_error(runtime_a.respond(rid_b, b'"wrong door"'), 400, "InvalidRequestID")
    assert runtime_b.respond(rid_b, b'"from b"').status == 202
    assert runtime_a.respond(rid_a, b'"from a"').status == 202
    results = {r.request_id: r for r in (c.result(timeout=5) for c in calls)}
    assert results[rid_a].payload == "from a" and results[rid_b].payload == "from b"
    assert results[rid_a].env != results[rid_b].env


@pytest.mark.parametrize("kind", ["response", "error"])
def test_unknown_request_id_is_400_InvalidRequestID(lab, background, puppet, hello, kind):
    call, runtime, delivered = cold_start(background, puppet)
    bogus = runtime.call("POST", f"/invocation/not-a-request-id/{kind}", b'{"x": 1}')
    assert_protocol_error(bogus, 400, "InvalidRequestID")

    # The real invocation is untouched and can still be answered.
    assert runtime.respond(request_id(delivered), b'"real"').status == 202
    result = call.result(timeout=5)
    assert result.ok and result.payload == "real"
    serve_one(background, puppet, runtime, {"after": "bogus id"})
    assert_lab_still_serves(lab, hello)


@pytest.mark.parametrize("second", ["response", "error"])
def test_a_second_answer_is_403_InvalidStateTransition(lab, background, puppet, hello, second):
    call, runtime, delivered = cold_start(background, puppet)
    rid = request_id(delivered)
    assert runtime.respond(rid, b'"first"').status == 202
    again = runtime.call("POST", f"/invocation/{rid}/{second}", b'{"errorType": "Late"}')
    assert_protocol_error(again, 403, "InvalidStateTransition")

    result = call.result(timeout=5)
    assert result.ok and result.payload == "first"  # the first answer stands
    assert lab.events.kinds(rid) == COLD
    serve_one(background, puppet, runtime, {"after": "second answer"})
    assert_lab_still_serves(lab, hello)


def test_response_over_6_mb_is_413_and_the_caller_gets_ResponseSizeTooLarge(
    lab, background, puppet, hello
):
    call, runtime, delivered = cold_start(background, puppet)
    rid = request_id(delivered)
    too_big = b'"' + b"x" * (LIMIT - 1) + b'"'  # LIMIT + 1 bytes of valid JSON
    assert_protocol_error(runtime.respond(rid, too_big), 413, "RequestEntityTooLarge")

    result = call.result(timeout=5)
    assert result.outcome == "error"
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert result.payload["errorType"] == "Function.ResponseSizeTooLarge"
    assert lab.events.kinds(rid) == COLD
    assert lab.events.filter("invoke.end", request_id=rid)[0].get("outcome") == "error"
    serve_one(background, puppet, runtime, {"after": "413"})
    assert_lab_still_serves(lab, hello)


# -- POST error: where the error type comes from --------------------------------------------


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("Custom.FromHeader", {"errorMessage": "no type in body"}, "Custom.FromHeader"),
        (None, {"errorType": "Custom.FromBody", "errorMessage": "m"}, "Custom.FromBody"),
        (
            "Custom.FromHeader",
            {"errorType": "Custom.FromBody", "errorMessage": "m"},
            "Custom.FromHeader",
        ),
    ],
    ids=["header", "body", "header-wins"],
)
def test_error_type_comes_from_the_header_or_else_the_body(
    lab, background, puppet, header, body, expected
):
    call, runtime, delivered = cold_start(background, puppet)
    rid = request_id(delivered)
    headers = {"Lambda-Runtime-Function-Error-Type": header} if header else {}
    accepted = runtime.error(rid, json.dumps(body).encode(), headers=headers)
    assert accepted.status == 202 and accepted.json() == {"status": "OK"}

    result = call.result(timeout=5)
    assert result.outcome == "error" and result.error_type == expected
    assert result.payload == body  # the caller gets the body the runtime posted
    assert lab.events.kinds(rid) == COLD
    end = lab.events.filter("invoke.end", request_id=rid)[0]
    assert (end.get("outcome"), end.get("error_type")) == ("error", expected)


def test_a_one_mebibyte_xray_error_cause_header_is_accepted(lab, background, puppet, hello):
    call, runtime, delivered = cold_start(background, puppet)
    rid = request_id(delivered)
    cause = json.dumps(
        {
            "working_directory": "/var/task",
            "paths": [],
            "exceptions": [{"message": "x" * (1024 * 1024)}],
        }
    )
    accepted = runtime.error(
        rid,
        b'{"errorType": "Big.Cause", "errorMessage": "see X-Ray"}',
        headers={
            "Lambda-Runtime-Function-Xray-Error-Cause": cause,
            "Lambda-Runtime-Function-Error-Type": "Big.Cause",
        },
    )
    assert accepted.status == 202

    result = call.result(timeout=5)
    assert result.outcome == "error" and result.error_type == "Big.Cause"
    serve_one(background, puppet, runtime, {"after": "big header"})
    assert_lab_still_serves(lab, hello)


@pytest.mark.parametrize("kind", ["response", "error"])
def test_a_chunked_body_with_a_trailer_header_is_accepted_like_gos_client(
    lab, background, puppet, kind
):
    call, runtime, delivered = cold_start(background, puppet)
    rid = request_id(delivered)
    body = [b'{"errorType": "Go.Chunked", ', b'"errorMessage": "in ', b'three chunks"}']
    # What aws-lambda-go's net/http client sends: chunked, a declared Trailer, no Content-Length.
    head = (
        f"POST {API}/invocation/{rid}/{kind} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nUser-Agent: aws-lambda-go/go1.22\r\n"
        "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Body, Lambda-Runtime-Function-Error-Type\r\n"
        "Accept-Encoding: gzip\r\n\r\n"
    ).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in body) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=5) as sock:
        sock.sendall(head + chunks)
        reply = answered_within(sock, 5)
    assert reply is not None and reply.status == 202

    result = call.result(timeout=5)
    assert result.body == b"".join(body)
    if kind == "response":
        assert result.ok
    else:
        assert (result.outcome, result.error_type) == ("error", "Go.Chunked")
    serve_one(background, puppet, runtime, {"after": "chunked"})


# -- POST init/error ------------------------------------------------------------------------


def test_init_error_before_the_first_next_fails_the_waiting_invocation(
    lab, background, puppet, hello
):
    call = background.submit(puppet.invoke, b"{}")
    env, runtime = endpoint(puppet)
    failed = runtime.init_error(
        b'{"errorType": "Runtime.NoDatabase", "errorMessage": "cannot connect"}',
        headers={"Lambda-Runtime-Function-Error-Type": "Runtime.NoDatabase"},
    )
    assert failed.status == 202

    result = call.result(timeout=5)
    assert result.outcome == "error" and result.error_type == "Runtime.NoDatabase"
    assert result.payload["errorMessage"] == "cannot connect"
    assert lab.events.kinds(result.request_id) == [
        "invoke.received",
        "env.init.start",
        "env.init.error",
        "invoke.end",
    ]
    assert [e.kind for e in lab.events if e.env == env and e.kind.startswith("env.")] == [
        "env.init.start",
        "env.init.error",
        "env.shutdown.start",
        "env.shutdown.end",
    ]

    # The failed environment is discarded: the next invocation is a cold start elsewhere.
    call = background.submit(puppet.invoke, b'{"retry": true}')
    _, fresh = endpoint(puppet, exclude=(env,))
    delivered = fresh.next()
    assert fresh.respond(request_id(delivered)).status == 202
    retry = call.result(timeout=5)
    assert retry.ok and retry.cold and retry.env != env
    assert_lab_still_serves(lab, hello)


def test_init_error_after_the_first_next_is_403(lab, background, puppet, hello):
    call, runtime, delivered = cold_start(background, puppet)
    late = runtime.init_error(b'{"errorType": "Too.Late", "errorMessage": "init is over"}')
    assert_protocol_error(late, 403, "InvalidStateTransition")

    assert runtime.respond(request_id(delivered)).status == 202
    assert call.result(timeout=5).ok
    serve_one(background, puppet, runtime, {"after": "late init error"})
    assert_lab_still_serves(lab, hello)


# -- a runtime that hangs up mid-poll -------------------------------------------------------


def test_a_runtime_that_hangs_up_mid_poll_is_never_handed_an_event(lab, background, puppet, hello):
    call, runtime, delivered = cold_start(background, puppet)
    runtime.respond(request_id(delivered))
    assert call.result(timeout=5).ok  # the environment is now idle

    hung_up = runtime.open_poll()
    # While that poll waits, a second one is refused: proof the server registered it.
    with runtime.open_poll() as probe:
        refused = answered_within(probe, 2)
    assert refused is not None, "the second poll should be refused at once"
    assert_protocol_error(refused, 403, "InvalidStateTransition")
    hung_up.close()

    # Once the server notices the hang-up it accepts a new poll, which then waits.
    for _ in range(50):
        poll = runtime.open_poll()
        early = answered_within(poll, 0.1)
        if early is None:
            break
        assert_protocol_error(early, 403, "InvalidStateTransition")
        poll.close()
    else:
        pytest.fail("the server never noticed that the first poll hung up")

    with poll:
        call = background.submit(puppet.invoke, b'{"after": "hang-up"}')
        got = answered_within(poll, 5)
    assert got is not None and got.status == 200 and got.body == b'{"after": "hang-up"}'
    rid = request_id(got)
    assert runtime.respond(rid, b'"not lost"').status == 202
    result = call.result(timeout=5)
    assert result.ok and result.payload == "not lost"
    assert lab.events.kinds(rid) == WARM
    nexts = [
        e for e in lab.events.filter("runtime.call", request_id=rid) if e.get("method") == "GET"
    ]
    assert [e.get("status") for e in nexts] == [200]  # handed over exactly once
    assert_lab_still_serves(lab, hello)


def test_an_event_nobody_polls_for_still_times_out(lab, background, handlers):
    fn = lab.deploy(
        "stuck",
        runtime="provided",
        bootstrap=str(handlers / "puppet_bootstrap"),
        code_dir=str(handlers),
        timeout=1,
    )
    call, runtime, delivered = cold_start(background, fn)
    runtime.respond(request_id(delivered))
    assert call.result(timeout=5).ok  # idle now, and the "runtime" never asks again

    call = background.submit(fn.invoke, b'{"waits": "forever?"}')
    result = call.result(timeout=3)
    assert (result.outcome, result.error_type) == ("timeout", "Sandbox.Timedout")
    end = lab.events.filter("invoke.end", request_id=result.request_id)
    assert [e.get("outcome") for e in end] == ["timeout"]
