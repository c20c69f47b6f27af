"""The public surface: __all__, the event log's exports, lab.toml and the lambda-lab command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers import wait_for

import lambda_lab
from lambda_lab import ConfigError, EventLog, Lab
from lambda_lab.config import load_toml


def test_all_is_honest():
    for name in lambda_lab.__all__:
        assert getattr(lambda_lab, name) is not None, name
    public = {n for n in dir(lambda_lab) if not n.startswith("_")}
    assert public == set(lambda_lab.__all__)


def test_reprs_are_short(lab, hello):
    result = hello.invoke({})
    short = result.request_id[:8]
    assert repr(result).startswith(f"<InvokeResult {short} success env=hello-1 cold")
    assert repr(hello).startswith("<Function hello python hello.handler")
    assert "functions=['hello']" in repr(lab)
    assert repr(lab.events).startswith("<EventLog ")


def test_event_log_exports_and_replays(lab, hello, tmp_path):
    hello.invoke({"name": "Ada"})
    path = tmp_path / "events.jsonl"
    lab.events.write_jsonl(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["kind"] == "invoke.received"
    assert set(rows[0]) >= {"time", "kind", "function", "env", "request_id"}
    replay = EventLog.from_jsonl(path)
    assert replay.kinds() == lab.events.kinds()
    frame = lab.events.to_dataframe()
    assert list(frame.columns[:5]) == ["time", "kind", "function", "env", "request_id"]
    assert len(frame) == len(lab.events)
    assert frame[frame.kind == "invoke.end"]["outcome"].tolist() == ["success"]


def test_subscribers_see_every_event(lab, hello):
    seen = []
    unsubscribe = lab.events.subscribe(seen.append)
    hello.invoke({})
    unsubscribe()
    assert [e.kind for e in seen if e.kind in ("invoke.received", "invoke.end")] == [
        "invoke.received",
        "invoke.end",
    ]


def test_bad_configuration_names_the_value(handlers):
    with Lab() as lab:
        with pytest.raises(ConfigError, match="timeout=901"):
            lab.deploy("x", handler="hello.handler", code_dir=str(handlers), timeout=901)
        with pytest.raises(ConfigError, match="code_dir does not exist"):
            lab.deploy("x", handler="hello.handler", code_dir="/nope")
        with pytest.raises(TypeError):
            lab.deploy("x", handler="hello.handler", colour="red")


def test_load_toml(tmp_path, handlers):
    (tmp_path / "lab.toml").write_text(
        "[lab]\naccount_concurrency = 20\n\n"
        f"[functions.hello]\nhandler = 'hello.handler'\ncode_dir = '{handlers}'\n"
        "timeout = 5\nreserved_concurrency = 3\n"
    )
    lab_config, functions = load_toml(tmp_path / "lab.toml")
    assert lab_config.account_concurrency == 20
    assert functions[0].name == "hello" and functions[0].timeout == 5
    (tmp_path / "bad.toml").write_text("[functions.x]\nhandlr = 'a.b'\n")
    with pytest.raises(ConfigError, match="handlr"):
        load_toml(tmp_path / "bad.toml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_invokes_and_stops_cleanly_on_sigterm(handlers, tmp_path):
    port = free_port()
    events = tmp_path / "events.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lambda_lab.cli",
            "serve",
            "hello.handler",
            "--code-dir",
            str(handlers),
            "--port",
            str(port),
            "--events",
            str(events),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = server.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/2015-03-31/functions/hello/invocations",
            data=b'{"name": "CLI"}',
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["message"] == "Hello, CLI!"
        pid = json.loads(events.read_text().splitlines()[-1]).get("pid") or None
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
        kinds = [json.loads(line)["kind"] for line in events.read_text().splitlines()]
        assert kinds[0] == "invoke.received" and kinds[-1] == "env.shutdown.end"
        env_pids = [
            json.loads(line)["pid"]
            for line in events.read_text().splitlines()
            if json.loads(line)["kind"] == "env.init.end"
        ]
        for env_pid in env_pids + ([pid] if pid else []):
            wait_for(lambda p=env_pid: not os.path.exists(f"/proc/{p}"), timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()


def test_demo_prints_lifecycle_and_writes_timeline(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lambda_lab.cli", "demo", "--output", str(tmp_path / "t.html")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "cold start" in out.stdout and "throttled" in out.stdout
    assert "REPORT RequestId:" in out.stdout
    assert (tmp_path / "t.html").stat().st_size > 10_000


def test_lab_command_serves_the_first_lesson(tmp_path):
    port = free_port()
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    server = subprocess.Popen(
        [sys.executable, "-m", "lambda_lab.cli", "lab", "--notebooks", str(notebooks),
         "--no-browser", f"--port={port}", "--ServerApp.token=t", "--ServerApp.password="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        def lesson_served():
            url = f"http://127.0.0.1:{port}/api/contents/00-tour.ipynb?token=t&content=0"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return json.loads(response.read())["name"] == "00-tour.ipynb"
            except OSError:
                return False

        assert wait_for(lesson_served, timeout=120, interval=0.5)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_ainvoke_is_awaitable_from_another_event_loop(lab, hello):
    import asyncio

    async def main():
        return await asyncio.gather(hello.ainvoke({"name": "A"}), hello.ainvoke({"name": "B"}))

    first, second = asyncio.run(main())
    assert {first.payload["message"], second.payload["message"]} == {"Hello, A!", "Hello, B!"}


def test_concurrency_the_host_cannot_hold_is_refused_clearly():
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    with pytest.raises(ConfigError, match="open files"):
        Lab(account_concurrency=hard)


def test_serve_with_a_config_file(handlers, tmp_path):
    port = free_port()
    (tmp_path / "lab.toml").write_text(
        "[lab]\naccount_concurrency = 1\n\n"
        f"[functions.greeter]\nhandler = 'hello.handler'\ncode_dir = '{handlers}'\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "lambda_lab.cli", "serve", "--config", str(tmp_path / "lab.toml"),
         "--port", str(port), "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        assert "greeter" in server.stdout.readline()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/2015-03-31/functions/greeter/invocations",
            data=b'{"name": "TOML"}', method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["message"] == "Hello, TOML!"
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()


def test_redeploy_replaces_code_and_environments(lab, hello, handlers):
    first = hello.invoke({})
    again = lab.deploy("hello", handler="noop.handler", code_dir=str(handlers))
    result = again.invoke({})
    assert result.ok and result.payload is None and result.cold
    assert result.env != first.env
    assert [e.get("reason") for e in lab.events.filter("env.shutdown.start")] == ["close"]


def test_refused_redeploy_changes_nothing(handlers):
    with Lab(account_concurrency=10, unreserved_minimum=5) as lab:
        fn = lab.deploy("hello", handler="hello.handler", code_dir=str(handlers))
        warm = fn.invoke({})
        with pytest.raises(ConfigError):
            lab.deploy("hello", handler="hello.handler", code_dir=str(handlers),
                       reserved_concurrency=6)
        assert fn.invoke({}).env == warm.env


def test_serve_on_a_taken_port_says_so(handlers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "lambda_lab.cli", "serve", "hello.handler", "--code-dir",
             str(handlers), "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"cannot start on 127.0.0.1:{port}" in out.stderr and "--port" in out.stderr
