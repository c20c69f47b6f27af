"""The execution environment lifecycle, asserted as sequences of events (design.md §6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import wait_for

from lambda_lab import FunctionError, Lab

COLD = ["invoke.received", "env.init.start", "env.init.end", "invoke.start", "invoke.end"]
WARM = ["invoke.received", "invoke.start", "invoke.end"]


def test_cold_then_warm_reuses_the_same_process(lab, hello):
    first = hello.invoke({"name": "Ada"})
    second = hello.invoke({"name": "Bob"})

    assert first.ok and first.payload["message"] == "Hello, Ada!"
    assert first.cold and not second.cold
    assert first.env == second.env and first.pid == second.pid
    assert second.payload["count"] == 2  # global state survived between invocations
    assert lab.events.kinds(first.request_id) == COLD
    assert lab.events.kinds(second.request_id) == WARM


def test_platform_log_lines_follow_aws_format(lab, hello):
    result = hello.invoke({})
    lines = [e.get("line") for e in lab.events.filter("log", request_id=result.request_id)]
    assert lines[0] == f"START RequestId: {result.request_id} Version: $LATEST"
    assert "hello world" in lines
    assert lines[-2] == f"END RequestId: {result.request_id}"
    report = lines[-1]
    assert report.startswith(f"REPORT RequestId: {result.request_id}\tDuration: ")
    for field in (
        "Billed Duration: ",
        "Memory Size: 128 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ):
        assert field in report
    assert result.max_memory_mb and result.max_memory_mb > 1
    assert "Init Duration" not in hello.invoke({}).log_tail


def test_burst_of_four_scales_out_to_four_environments(lab, hello):
    results = hello.burst(4, {"sleep": 0.5})

    assert [r.outcome for r in results] == ["success"] * 4
    assert len({r.env for r in results}) == 4
    assert len({r.pid for r in results}) == 4
    assert all(r.cold for r in results)
    assert len(lab.events.filter("env.init.start")) == 4


def test_init_code_runs_once_per_environment(lab, handlers, tmp_path):
    imports = tmp_path / "imports.txt"
    fn = lab.deploy(
        "counter",
        handler="counter.handler",
        code_dir=str(handlers),
        environment={"IMPORTS_FILE": str(imports)},
    )
    fn.burst(3, {})
    for _ in range(5):
        fn.invoke({})
    pids = imports.read_text().split()
    environments = len(lab.events.filter("env.init.start", function="counter"))
    assert len(pids) == environments == len(set(pids))


def test_environment_variables_are_lambdas(lab, handlers):
    fn = lab.deploy(
        "counter",
        handler="counter.handler",
        code_dir=str(handlers),
        memory_size=256,
        environment={"AWS_CUSTOM": "yes"},
    )
    env = fn.invoke({}).payload["env"]
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["_HANDLER"] == "counter.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "counter"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/counter"
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3")
    assert env["LAMBDA_TASK_ROOT"] == str(handlers.resolve())
    assert Path(env["LAMBDA_RUNTIME_DIR"]).is_dir()
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["TZ"] == ":UTC"
    assert env["AWS_CUSTOM"] == "yes"


def test_handler_error_keeps_the_environment(lab, handlers):
    fn = lab.deploy("errors", handler="errors.fail", code_dir=str(handlers))
    first = fn.invoke({"x": 42})
    assert first.outcome == "error"
    assert first.error_type == "ValueError"
    assert first.payload["errorMessage"] == "bad input: 42"
    assert first.payload["stackTrace"]
    with pytest.raises(FunctionError, match="ValueError: bad input: 42"):
        first.raise_for_error()
    second = fn.invoke({})
    assert second.pid == first.pid and not second.cold
    assert lab.events.filter("invoke.end", request_id=first.request_id)[0].get("outcome") == "error"


def test_unserializable_result_is_a_marshal_error(lab, handlers):
    fn = lab.deploy("errors", handler="errors.unserializable", code_dir=str(handlers))
    assert fn.invoke({}).error_type == "Runtime.MarshalError"


def test_init_error_is_returned_and_environment_discarded(lab, handlers):
    fn = lab.deploy("broken", handler="broken_init.handler", code_dir=str(handlers))
    result = fn.invoke({})
    assert result.outcome == "error"
    assert result.error_type == "RuntimeError"  # init code raised: its own type, as in AWS
    assert result.error_message == "cannot connect to the database"
    assert lab.events.kinds(result.request_id) == [
        "invoke.received",
        "env.init.start",
        "env.init.error",
        "invoke.end",
    ]
    shutdown = lab.events.filter("env.shutdown.start", function="broken")
    assert [e.get("reason") for e in shutdown] == ["init_error"]
    assert wait_for(lambda: lab.events.filter("env.shutdown.end", function="broken"))
    assert "importing broken_init" in [e.get("line") for e in lab.events.filter("log")]
    # The next invocation tries a fresh environment.
    assert fn.invoke({}).outcome == "error"
    assert len(lab.events.filter("env.init.start", function="broken")) == 2


def test_missing_handler_function(lab, handlers):
    fn = lab.deploy("nohandler", handler="hello.nope", code_dir=str(handlers))
    assert fn.invoke({}).error_type == "Runtime.HandlerNotFound"


def test_timeout_kills_the_environment_and_next_invoke_is_cold(lab, handlers):
    fn = lab.deploy("slow", handler="errors.slow", code_dir=str(handlers), timeout=0.5)
    result = fn.invoke({"sleep": 30})
    assert result.outcome == "timeout"
    assert result.error_type == "Sandbox.Timedout"
    assert result.payload["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Task timed out after 0.50 seconds"
    )
    reasons = [e.get("reason") for e in lab.events.filter("env.shutdown.start")]
    assert reasons == ["timeout"]
    again = fn.invoke({"sleep": 0})
    assert again.ok and again.cold and again.env != result.env


def test_crash_mid_invoke_is_runtime_exit_error(lab, handlers):
    fn = lab.deploy("crash", handler="errors.crash", code_dir=str(handlers))
    result = fn.invoke({})
    assert result.outcome == "crash"
    assert result.error_type == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in result.error_message
    assert "about to crash" in result.log_tail
    kinds = lab.events.kinds()
    assert kinds[kinds.index("invoke.end") :][:2] == ["invoke.end", "env.shutdown.start"]
    assert lab.events.filter("env.shutdown.start")[0].get("reason") == "crash"


def test_killing_an_environment_mid_invoke_then_next_is_cold(lab, hello):
    from concurrent.futures import ThreadPoolExecutor

    hello.invoke({})
    env = lab.environments()[0]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(hello.invoke, {"sleep": 5})
        wait_for(lambda: lab.environments()[0].state == "busy")
        lab.kill(env.env)
        result = future.result(timeout=10)
    assert result.outcome == "crash" and "signal: killed" in result.error_message
    assert hello.invoke({}).cold


def test_idle_environment_is_reaped_with_sigterm_cleanup(lab, handlers):
    fn = lab.deploy("cleanup", handler="cleanup.handler", code_dir=str(handlers), idle_timeout=0.3)
    first = fn.invoke({})
    wait_for(lambda: lab.events.filter("env.shutdown.end", env=first.env))
    assert [e.get("reason") for e in lab.events.filter("env.shutdown.start")] == ["idle"]
    lines = [e.get("line") for e in lab.events.filter("log", env=first.env)]
    assert "cleanup: closing connections" in lines
    end = lab.events.filter("env.shutdown.end", env=first.env)[0]
    assert end.get("exit_code") == 0  # the runtime exited by itself within the grace period
    assert fn.invoke({}).cold


def test_most_recently_used_environment_is_preferred(lab, hello):
    results = hello.burst(3, {"sleep": 0.3})
    last = max(
        results, key=lambda r: lab.events.filter("invoke.end", request_id=r.request_id)[0].time
    )
    assert hello.invoke({}).env == last.env


def test_close_stops_every_environment(handlers):
    with Lab() as lab:
        fn = lab.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        pids = {r.pid for r in fn.burst(3, {"sleep": 0.2})}
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    reasons = {e.get("reason") for e in lab.events.filter("env.shutdown.start")}
    assert reasons == {"close"}


def test_two_labs_are_independent(handlers):
    with Lab() as a, Lab() as b:
        fa = a.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        fb = b.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        assert fa.invoke({}).pid != fb.invoke({}).pid
        a.close()
        assert fb.invoke({}).ok
        assert a.endpoint_url != b.endpoint_url


def test_owner_killed_with_sigkill_leaves_no_orphans(handlers, tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        from lambda_lab import Lab
        lab = Lab()
        py = lab.deploy("py", handler="hello.handler", code_dir={str(handlers)!r})
        sh = lab.deploy("sh", handler="x", runtime="provided", code_dir={str(handlers)!r})
        pids = [r.pid for r in py.burst(2, {{"sleep": 0.2}})] + [sh.invoke({{}}).pid]
        print(" ".join(map(str, pids)), flush=True)
        time.sleep(60)
    """)
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 3
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)

        def all_gone() -> bool:
            alive = []
            for pid in pids:
                try:
                    os.kill(pid, 0)
                    alive.append(pid)
                except ProcessLookupError:
                    pass
            return not alive

        wait_for(all_gone, timeout=10)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        owner.stdout.close()


def test_runtime_ignoring_sigterm_is_killed_after_the_grace_period(lab, handlers):
    fn = lab.deploy("stubborn", handler="stubborn.handler", code_dir=str(handlers),
                    idle_timeout=0.2)
    env = fn.invoke({}).env
    end = wait_for(lambda: lab.events.filter("env.shutdown.end", env=env))[0]
    start = lab.events.filter("env.shutdown.start", env=env)[0]
    assert start.get("reason") == "idle"
    assert end.get("signal") == "SIGKILL"
    assert not [e for e in lab.events.filter("log", env=env) if "Traceback" in e.get("line")]


def test_relative_code_dir_is_taken_from_the_current_directory(lab, handlers, monkeypatch):
    monkeypatch.chdir(handlers.parent)
    fn = lab.deploy("relative", handler="hello.handler", code_dir="handlers")
    assert fn.invoke({}).ok
    assert fn.config.code_dir == str(handlers.resolve())
