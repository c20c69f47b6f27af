"""The dashboard widgets, driven by a real Lab: assertions on figure and widget state.

No browser here (see test_browser.py): like ipywidgets' own tests, these read the traits the
browser would receive (trace arrays, tick labels, HTML values).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import lambda_lab.widgets as widgets
from lambda_lab import EventLog, Lab
from lambda_lab.widgets import (
    ConsoleWidget,
    ControlsWidget,
    EnvironmentsWidget,
    MetricsWidget,
    TimelineWidget,
    console_lines,
    metrics_summary,
    timeline_data,
    timeline_figure,
)
from lambda_lab.widgets.lifecycle import BAR_STYLES
from lambda_lab.widgets.metrics import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST

HANDLERS = str(Path(__file__).parent / "handlers")
COLOURS = {name: colour for _, name, colour, _ in BAR_STYLES}


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.02)


@pytest.fixture
def small_lab() -> Iterator[Lab]:
    """Three environments at most, so a burst of five throttles twice."""
    with Lab(account_concurrency=3) as lab:
        yield lab


def request_ids(trace: object) -> list[str]:
    hover = trace.hovertext  # type: ignore[attr-defined]
    return [] if hover is None else [str(h) for h in hover]


def test_timeline_rows_bars_colours_and_throttles(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    errors = small_lab.deploy("errors", handler="errors.fail", code_dir=HANDLERS)
    slow = small_lab.deploy("slow", handler="errors.slow", code_dir=HANDLERS, timeout=1)
    crash = small_lab.deploy("crash", handler="errors.crash", code_dir=HANDLERS)
    timeline = TimelineWidget(small_lab)
    try:
        burst = hello.burst(5, {"sleep": 0.3})
        failed = errors.invoke({"x": 1})
        timed_out = slow.invoke({"sleep": 5})
        crashed = crash.invoke({})
        outcomes = sorted(r.outcome for r in burst)
        assert outcomes == ["success"] * 3 + ["throttled"] * 2
        assert (failed.outcome, timed_out.outcome, crashed.outcome) == ("error", "timeout", "crash")
        timeline.refresh()

        # one row per environment, grouped by function, labelled "env (pid)"; then throttles
        envs = {r.env: r.pid for r in [*burst, failed, timed_out, crashed] if r.env}
        hello_rows = sorted(f"{e} ({p})" for e, p in envs.items() if e.startswith("hello-"))
        assert timeline.rows()[:4] == [*hello_rows, "hello: throttled"]
        assert timeline.rows()[4:] == [
            f"{failed.env} ({failed.pid})",
            f"{timed_out.env} ({timed_out.pid})",
            f"{crashed.env} ({crashed.pid})",
        ]

        # bars per kind: one per invocation, one init per environment, coloured by outcome
        assert len(timeline.trace("success").y) == 3
        assert len(timeline.trace("init: runtime").y) == 6
        for outcome, result in [("error", failed), ("timeout", timed_out), ("crash", crashed)]:
            trace = timeline.trace(outcome)
            assert trace.marker.color == COLOURS[outcome]
            assert len(trace.y) == 1
            assert result.request_id in request_ids(trace)[0]
            assert timeline.rows()[trace.y[0]].startswith(result.env)
        assert timeline.trace("success").marker.color != timeline.trace("error").marker.color
        # a timeout and a crash end the environment: a shutdown bar each
        assert len(timeline.trace("shutdown").y) >= 2

        # throttles: markers on the function's own row, not on an environment's
        marks = timeline.trace("throttled (429)")
        throttled = {r.request_id for r in burst if r.outcome == "throttled"}
        assert len(marks.x) == 2
        assert {timeline.rows()[y] for y in marks.y} == {"hello: throttled"}
        assert all(any(rid in h for h in request_ids(marks)) for rid in throttled)

        # hover tells cold/warm and durations
        hover = " ".join(request_ids(timeline.trace("success")))
        assert "cold start" in hover and "duration" in hover and "billed" in hover
        # the x axis follows the newest events, unless the reader unticks "follow"
        assert timeline.figure.layout.xaxis.range[1] >= small_lab.events[-1].time
        timeline.follow.value = False
        timeline.figure.layout.xaxis.range = [0, 0.5]  # the reader zooms in
        hello.invoke({})
        timeline.refresh()
        assert tuple(timeline.figure.layout.xaxis.range) == (0, 0.5)
    finally:
        timeline.close()


def test_timeline_moves_while_an_invocation_is_still_running(small_lab: Lab) -> None:
    """The main thread blocks in invoke(), as a notebook cell does; the chart keeps moving."""
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    hello.invoke({})  # warm, so the next bar is the invocation itself
    timeline = TimelineWidget(small_lab)
    seen: list[tuple[float, int]] = []  # (length of the running bar, successes drawn)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            running = timeline.trace("running")
            if len(running.x):
                seen.append((float(running.x[0]), len(timeline.trace("success").x)))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = hello.invoke({"sleep": 1.2})  # blocks this thread for 1.2 s
    finally:
        done.set()
        watcher.join()
        timeline.close()
    assert result.outcome == "success"
    lengths = [length for length, successes in seen if successes == 1]
    assert len(set(lengths)) >= 3, f"the running bar did not grow while blocked: {seen}"
    assert lengths == sorted(lengths)
    assert timeline.renderer is not None and timeline.renderer.frames >= 3


def test_timeline_windows_rows_and_merges_old_bars(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    hello.burst(3, {"sleep": 0.2})
    for _ in range(6):
        hello.invoke({})
    frame = timeline_data(small_lab.events)
    assert len(frame.traces["success"].x) == 9 and frame.aggregated == 0

    timeline = TimelineWidget(small_lab, max_rows=2, max_bars=4)
    try:
        timeline.refresh()
        assert len(timeline.rows()) == 2
        assert len(timeline.trace("success").x) == 4
        merged = timeline.trace("earlier invocations")
        assert 1 <= len(merged.x) <= 2  # one merged bar per drawn environment with old bars
        assert "earlier invocations" in request_ids(merged)[0]
        title = timeline.figure.layout.title.text
        assert "1 older environments not drawn" in title and "merged" in title
    finally:
        timeline.close()


def test_replay_and_static_figure_draw_the_same_timeline(small_lab: Lab, tmp_path: Path) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    hello.burst(4, {"sleep": 0.2})
    live = timeline_data(small_lab.events)
    small_lab.events.write_jsonl(tmp_path / "log.jsonl")
    recorded = EventLog.from_jsonl(tmp_path / "log.jsonl")
    replay = timeline_data(recorded)
    assert replay.labels == live.labels
    for name, trace in live.traces.items():
        assert np.allclose(replay.traces[name].base, trace.base, atol=1e-5), name

    fig = small_lab.timeline_figure()
    assert [t.name for t in fig.data] == list(widgets.timeline.TRACE_NAMES)
    assert list(fig.layout.yaxis.ticktext) == live.labels
    fig.write_html(tmp_path / "timeline.html")
    assert (tmp_path / "timeline.html").stat().st_size > 10_000

    widget = TimelineWidget(recorded)  # a recording: drawn up to its last event
    board = widgets.dashboard(recorded)
    try:
        wait_for(lambda: widget.rows() == live.labels)
        assert timeline_figure(recorded).layout.yaxis.ticktext == fig.layout.yaxis.ticktext
        wait_for(lambda: board.timeline.rows() == live.labels)
        assert board.controls is None  # nothing to invoke in a recording ...
        wait_for(lambda: len(board.environments.rows.children) == 3)  # 4th throttled
        kill = board.environments.rows.children[0].children[0]
        assert kill.disabled  # ... and nothing to kill
    finally:
        widget.close()
        board.close()


def test_console_tells_the_lifecycle_in_order(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    other = small_lab.deploy("other", handler="errors.fail", code_dir=HANDLERS)
    console = ConsoleWidget(small_lab)
    try:
        r = hello.invoke({"name": "Ada"})
        other.invoke({})
        steps = [
            f"invoke received {r.request_id}",
            "environment created",
            f"runtime ready, pid {r.pid}",
            f"event {r.request_id} sent to the runtime (cold)",
            f"START RequestId: {r.request_id}",
            "runtime received the event (GET next",
            "| hello Ada",
            f"runtime reported success for {r.request_id}",
            f"END RequestId: {r.request_id}",
            f"REPORT RequestId: {r.request_id}",
            f"success for {r.request_id} in ",
        ]
        lines = console_lines(small_lab.events, function="hello")
        positions = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
        assert positions == sorted(positions)
        assert not any("other" in line for line in lines)

        wait_for(lambda: any("ERROR ValueError" in line for line in console.lines()))
        console.filter.value = "hello"
        wait_for(lambda: console.lines() and all("other" not in x for x in console.lines()))
        assert any("| hello Ada" in line for line in console.lines())
    finally:
        console.close()


def test_metrics_count_percentiles_and_cost(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    errors = small_lab.deploy("errors", handler="errors.fail", code_dir=HANDLERS)
    metrics = MetricsWidget(small_lab)
    try:
        results = [*hello.burst(5, {"sleep": 0.3}), hello.invoke({}), errors.invoke({})]
        ran = [r for r in results if r.outcome != "throttled"]
        s = metrics_summary(small_lab.events)
        assert s.throttles == 2
        assert s.cold_starts == sum(1 for r in ran if r.cold) == 4
        assert s.warm_starts == 1
        assert s.errors["error"] == 1 and s.error_count == 1
        assert s.latency_ms["cold"].n == 4 and s.latency_ms["warm"].n == 1
        cold = s.latency_ms["cold"]
        assert cold.p50 <= cold.p95 <= cold.p99
        assert s.peak_concurrency == 3
        ends = small_lab.events.filter("invoke.end")
        gb_s = sum(e.get("billed_ms") / 1000 * e.get("memory_size") / 1024 for e in ends)
        assert s.billed_gb_seconds == pytest.approx(gb_s)
        assert s.cost_usd == pytest.approx(gb_s * PRICE_PER_GB_SECOND + 5 * PRICE_PER_REQUEST)

        wait_for(lambda: "2</td>" in metrics.table.value)
        metrics.refresh()
        stacked = {t.name: t for t in metrics.figure.data}
        assert set(stacked) == {"hello", "errors"}
        assert max(np.asarray(stacked["hello"].y)) == 3
        limit = [sh for sh in metrics.figure.layout.shapes if sh.y0 == 3]
        assert limit and limit[0].label.text == "account limit"
    finally:
        metrics.close()


def test_kill_button_crashes_the_invocation_and_the_next_is_cold(small_lab: Lab) -> None:
    slow = small_lab.deploy("slow", handler="errors.slow", code_dir=HANDLERS, timeout=10)
    panel = EnvironmentsWidget(small_lab)
    results = []
    worker = threading.Thread(target=lambda: results.append(slow.invoke({"sleep": 5})))
    worker.start()
    try:
        wait_for(lambda: [s.state for s in panel.states()] == ["busy"])
        wait_for(lambda: len(panel.rows.children) == 1)
        button = panel.rows.children[0].children[0]
        assert button.description == "Kill" and not button.disabled
        button.click()  # what a click in the browser does
        worker.join(timeout=10)
        (crashed,) = results
        assert crashed.outcome == "crash" and crashed.error_type == "Runtime.ExitError"
        wait_for(lambda: panel.states() == [])
        assert slow.invoke({"sleep": 0}).cold
    finally:
        worker.join(timeout=10)
        panel.close()


def test_controls_invoke_off_the_main_thread_and_show_errors(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    controls = ControlsWidget(small_lab)
    try:
        controls.sleep.value = 1.0
        started = time.monotonic()
        controls.invoke_button.click()
        assert time.monotonic() - started < 0.5  # the callback returned; the invoke runs on
        wait_for(lambda: "success" in str(controls.output.outputs))
        assert len(small_lab.events.filter("invoke.end")) == 1

        controls.payload.value = "{not json"
        controls.invoke_button.click()
        wait_for(lambda: "Payload is not valid JSON" in str(controls.output.outputs))

        controls.payload.value = "{}"
        controls.sleep.value = 0
        controls.burst_size.value = 4
        controls.burst_button.click()
        wait_for(lambda: "burst of 4" in str(controls.output.outputs))
        assert "1 throttled" in str(controls.output.outputs)

        controls.account.value = 5
        wait_for(lambda: small_lab.account_concurrency == 5)
        controls.reserved_on.value = True
        controls.reserved.value = 2
        wait_for(lambda: hello.reserved_concurrency == 2)
        controls.idle_timeout.value = 7
        wait_for(lambda: hello.idle_timeout == 7)
        controls.reset_button.click()
        wait_for(lambda: small_lab.account_concurrency == 3 and hello.reserved_concurrency is None)
        wait_for(lambda: hello.idle_timeout == 600 and controls.reserved_on.value is False)
    finally:
        controls.close()


def test_dashboard_composes_every_panel(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    board = small_lab.dashboard()
    try:
        assert isinstance(board, widgets.Dashboard)
        assert board.renderer.running and len(board.panels) == 5
        r = hello.invoke({})
        wait_for(lambda: board.timeline.rows() == [f"{r.env} ({r.pid})"])
        wait_for(lambda: "1 (cold 1, warm 0)" in board.metrics.table.value)
        wait_for(lambda: len(board.environments.rows.children) == 1)
        assert board.controls is not None and board.controls.function.options == ("hello",)
    finally:
        board.close()
    assert not board.renderer.running


def test_widgets_all_is_honest() -> None:
    for name in widgets.__all__:
        assert hasattr(widgets, name), name
    public = {
        n
        for n, v in vars(widgets).items()
        if not n.startswith("_") and not inspect.ismodule(v) and n != "annotations"
    }
    assert public == set(widgets.__all__)


def test_frames_are_coalesced_to_at_most_ten_a_second(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)
    timeline = TimelineWidget(small_lab)
    assert timeline.renderer is not None
    try:
        wait_for(lambda: timeline.renderer.frames >= 1)  # type: ignore[union-attr]
        before, events_before = timeline.renderer.frames, len(small_lab.events)
        started = time.monotonic()
        for _ in range(4):
            hello.burst(3, {"sleep": 0.2})
        elapsed = time.monotonic() - started
        frames = timeline.renderer.frames - before
        assert len(small_lab.events) - events_before > 100  # many events ...
        assert 2 <= frames <= 10 * elapsed + 2  # ... few frames
    finally:
        timeline.close()
    assert not timeline.renderer.running


def test_a_failing_panel_shows_its_traceback_and_the_others_keep_drawing(small_lab: Lab) -> None:
    hello = small_lab.deploy("hello", handler="hello.handler", code_dir=HANDLERS)

    class Broken(ConsoleWidget):
        def draw(self, now: float | None) -> None:
            raise RuntimeError("this panel is broken")

    broken = Broken(small_lab, start=False)
    timeline = TimelineWidget(small_lab, start=False)
    renderer = widgets.Renderer(small_lab.events, [broken, timeline]).start()
    try:
        r = hello.invoke({})
        wait_for(lambda: timeline.rows() == [f"{r.env} ({r.pid})"])
        wait_for(lambda: "this panel is broken" in str(broken.errors.outputs))
        assert "Traceback" in str(broken.errors.outputs)
    finally:
        renderer.stop()
        broken.close()
        timeline.close()


def test_an_init_failure_is_one_red_init_bar_and_leaves_no_environment(small_lab: Lab) -> None:
    broken = small_lab.deploy("broken", handler="broken_init.handler", code_dir=HANDLERS)
    board = small_lab.dashboard()
    try:
        r = broken.invoke({})
        assert r.outcome == "error"
        wait_for(lambda: small_lab.events.filter("env.shutdown.end"))
        board.refresh()
        failed = board.timeline.trace("init failed")
        assert len(failed.y) == 1 and "cannot connect to the database" in request_ids(failed)[0]
        assert board.timeline.rows()[failed.y[0]].startswith(f"{r.env} ")
        assert len(board.timeline.trace("error").y) == 0  # the handler never ran
        assert len(board.timeline.trace("idle").y) == 0
        assert board.environments.states() == []
        summary = board.metrics.summary()
        assert (summary.error_count, summary.invocations, summary.init_errors) == (1, 0, 1)
        assert any("failed to initialise" in line for line in board.console.lines())
    finally:
        board.close()
