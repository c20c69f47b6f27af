"""How much kernel CPU one timeline frame costs at the scale the dashboard promises.

Builds a synthetic event log of 1,000 environments and 10,000 invocations (the shape a
1,000-environment burst leaves), then measures, per frame, the kernel CPU time
(``time.thread_time``) of:

* ``model``: ``TimelineModel.data(now)``: events already reduced, arrays built;
* ``frame``: what the live widget does every frame: ``data`` + one ``batch_update`` of a
  ``go.FigureWidget`` (validation and serialisation of the changed arrays, no browser), both
  with only time passing (bars growing) and with 100 new events per frame;
* ``dashboard``: one frame of every panel (timeline, console, environments, metrics);
* ``first``: a cold start from the raw events, as ``lab.timeline_figure()`` or a replay does.

Target (issue 4): <= 50 ms per live frame. Run: ``python bench/bench_frames.py``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import plotly.graph_objects as go

from lambda_lab.events import Event, EventLog
from lambda_lab.widgets.dashboard import Dashboard
from lambda_lab.widgets.live import Renderer
from lambda_lab.widgets.timeline import TimelineModel, TimelineWidget, timeline_figure


def synthetic_log(envs: int = 1000, invocations: int = 10_000, seed: int = 1) -> EventLog:
    """A plausible log: ``envs`` cold starts, ``invocations`` spread over them, throttles."""
    rng = random.Random(seed)
    events: list[Event] = []

    def add(t: float, kind: str, **kw: object) -> None:
        common = {k: kw.pop(k) for k in ("function", "env", "request_id") if k in kw}
        events.append(Event(time=t, kind=kind, fields=kw, **common))  # type: ignore[arg-type]

    per_env = invocations // envs
    n = 0
    for i in range(envs):
        function = f"fn{i % 4}"
        env = f"{function}-{i}"
        t = i * 0.01
        add(
            t,
            "env.init.start",
            function=function,
            env=env,
            init_delay=0.1,
            provisioned=False,
            initialization_type="on-demand",
            host=f"worker-{i % 8}",
        )
        t += 0.1 + rng.uniform(0.05, 0.2)
        add(
            t,
            "env.init.end",
            function=function,
            env=env,
            pid=10_000 + i,
            init_ms=250.0,
            platform_ms=100.0,
            runtime_ms=150.0,
        )
        for j in range(per_env):
            n += 1
            rid = f"r{n:06d}"
            t += rng.uniform(0.0, 0.5)
            add(
                t,
                "invoke.start",
                function=function,
                env=env,
                request_id=rid,
                cold=j == 0,
                pid=10_000 + i,
            )
            d = rng.uniform(0.01, 1.0)
            t += d
            outcome = rng.choices(["success", "error", "timeout", "crash"], [90, 6, 3, 1])[0]
            add(
                t,
                "invoke.end",
                function=function,
                env=env,
                request_id=rid,
                outcome=outcome,
                duration_ms=d * 1000,
                billed_ms=int(d * 1000) + 1,
                max_memory_mb=30,
                memory_size=128,
                cold=j == 0,
                init_ms=250.0 if j == 0 else None,
                error_type=None if outcome == "success" else "Handled",
            )
        if i % 2:
            add(t + 5, "env.shutdown.start", function=function, env=env, reason="idle")
            add(t + 5.3, "env.shutdown.end", function=function, env=env, exit_code=0, signal=None)
        if i % 10 == 0:
            add(
                t,
                "invoke.throttled",
                function=function,
                request_id=f"t{i}",
                reason="ConcurrentInvocationLimitExceeded",
                message="Rate Exceeded.",
            )
    events.sort(key=lambda e: e.time)
    return EventLog(events)


def cpu_ms(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.thread_time()
        fn()  # type: ignore[operator]
        out.append((time.thread_time() - t) * 1000)
    return out


def show(name: str, values: list[float]) -> None:
    print(f"  {name:<36} median {statistics.median(values):6.1f} ms   max {max(values):6.1f} ms")


def scenario(envs: int, invocations: int, repeat: int) -> float:
    """Prints the costs for one log size; returns the median live frame, in ms."""
    log = synthetic_log(envs, invocations)
    end = log[len(log) - 1].time
    print(f"{envs} environments, {invocations} invocations ({len(log)} events)")

    first = cpu_ms(lambda: TimelineModel().feed(log), 3)
    model = TimelineModel()
    model.feed(log)
    data = model.data(end)
    bars = sum(len(t.base) for t in data.traces.values())
    print(f"  rows {len(data.labels)}, bars drawn {bars}, merged invocations {data.aggregated}")

    # every frame draws the open bars up to a later "now", so arrays really change
    clock = iter([end + 0.05 * k for k in range(100_000)])
    model_ms = cpu_ms(lambda: model.data(next(clock)), repeat)

    widget = TimelineWidget(log, start=False)
    renderer = Renderer(log, [widget], clock=lambda: next(clock))
    renderer.frame()  # the first frame reduces every event
    first_frame = renderer.last_cpu_ms
    frame_ms = []
    for _ in range(repeat):
        renderer.frame()
        frame_ms.append(renderer.last_cpu_ms)
    widget.close()

    # frames while the log still grows: each frame feeds 100 new events, then draws
    events = list(log)
    split = len(events) - 100 * repeat
    growing = TimelineWidget(EventLog(events[:split]), start=False)
    growing.feed(events[:split])
    growing_ms = []
    for k in range(repeat):
        chunk = events[split + 100 * k : split + 100 * (k + 1)]
        cpu = time.thread_time()
        growing.feed(chunk)
        growing.draw(chunk[-1].time)
        growing_ms.append((time.thread_time() - cpu) * 1000)
    growing.close()
    static = cpu_ms(lambda: timeline_figure(log), 3)
    assert isinstance(timeline_figure(log), go.Figure)

    board = Dashboard(log, live=False, start=False)  # a recording: all panels but controls
    board.renderer.clock = lambda: next(clock)
    board.refresh()
    board_first = board.renderer.last_cpu_ms
    board_ms = []
    for _ in range(repeat):
        board.refresh()
        board_ms.append(board.renderer.last_cpu_ms)
    board.close()

    show("reduce all events (TimelineModel)", first)
    show("timeline data(now), per frame", model_ms)
    show("timeline frame: data + batch_update", frame_ms)
    show("same, with 100 new events a frame", growing_ms)
    show("dashboard frame: all panels", board_ms)
    print(
        f"  {'first frame: timeline / dashboard':<36} {first_frame:6.1f} ms / {board_first:.1f} ms"
    )
    show("static timeline_figure(log)", static)
    return max(statistics.median(frame_ms), statistics.median(growing_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--envs", type=int, default=1000)
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    frame = scenario(args.envs, args.invocations, args.repeat)
    print()
    scenario(args.envs, args.invocations * 3, args.repeat // 2)  # beyond max_bars: merged
    verdict = "OK" if frame <= 50 else "OVER the 50 ms target"
    print(
        f"\nlive timeline frame at {args.envs} rows / {args.invocations} bars: "
        f"{frame:.1f} ms (target <= 50 ms): {verdict}"
    )


if __name__ == "__main__":
    main()
