"""How much kernel CPU one timeline frame costs at the scale the dashboard promises.

Builds a synthetic event log of 1,000 environments and 10,000 invocations (the shape a
1,000-environment burst leaves), then measures, per frame, the kernel CPU time
(``time.thread_time``) of:

* ``model``: ``TimelineModel.data(now)``: events already reduced, arrays built;
* ``frame``: what the live widget does every frame: ``data`` + one ``batch_update`` of a
  ``go.FigureWidget`` (validation and serialisation of the changed arrays, no browser);
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=1000)
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    log = synthetic_log(args.envs, args.invocations)
    end = log[len(log) - 1].time
    print(f"{len(log)} events, {args.envs} environments, {args.invocations} invocations")

    model = TimelineModel()
    first = cpu_ms(lambda: TimelineModel().feed(log), 3)
    model.feed(log)
    data = model.data(end)
    print(
        f"rows {len(data.labels)}, bars "
        + ", ".join(f"{k}={len(v.base)}" for k, v in data.traces.items() if len(v.base))
    )

    # every frame draws the open bars up to a later "now", so arrays really change
    clock = iter([end + 0.05 * k for k in range(10_000)])
    model_ms = cpu_ms(lambda: model.data(next(clock)), args.repeat)

    widget = TimelineWidget(log, start=False)
    renderer = Renderer(log, [widget], clock=lambda: next(clock))
    renderer.frame()  # the first frame feeds all events
    first_widget = renderer.last_cpu_ms
    frame_ms = []
    for _ in range(args.repeat):
        renderer.frame()
        frame_ms.append(renderer.last_cpu_ms)
    static = cpu_ms(lambda: timeline_figure(log), 3)
    assert isinstance(timeline_figure(log), go.Figure)

    def show(name: str, values: list[float]) -> None:
        print(f"{name:<34} median {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms")

    show("reduce all events (TimelineModel)", first)
    show("model: data(now) per frame", model_ms)
    show("frame: data + batch_update", frame_ms)
    print(f"{'first widget frame (feed + draw)':<34} {first_widget:13.1f} ms")
    show("static timeline_figure(log)", static)
    verdict = "OK" if statistics.median(frame_ms) <= 50 else "OVER the 50 ms target"
    print(f"live frame target <= 50 ms: {verdict}")
    widget.close()


if __name__ == "__main__":
    main()
