"""Metrics: the numbers CloudWatch would show for the lab, and what they would cost.

Lambda publishes per-function metrics ("Types of metrics for Lambda functions", Lambda Developer
Guide): ``ConcurrentExecutions``, ``Invocations``, ``Errors``, ``Throttles``, ``Duration``.
This module computes the same from the event log, plus what AWS does not chart for you: cold
versus warm starts and their latency percentiles::

    >>> s = metrics_summary(lab.events)
    >>> s.cold_starts, s.throttles, s.latency_ms["warm"].p99, s.cost_usd

* **concurrency** is the number of environments busy at once (invoke.start .. invoke.end),
  stacked by function, with the account limit drawn; the quantity that throttling limits;
* **latency** is what the caller waits: from ``invoke.received`` to ``invoke.end``, so a cold
  start's latency includes its init, while ``duration_ms`` (the ``REPORT`` line) does not;
* **cost** is billed GB-seconds (``billed_ms`` x ``memory_size``) at the x86 on-demand price
  plus the request price (below), before the free tier; provisioned concurrency's own
  per-hour price and data transfer are not counted.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets
import numpy as np
import plotly.graph_objects as go

from ..events import Event, EventLog
from .live import Panel, Source, error_output

__all__ = [
    "PRICE_PER_GB_SECOND",
    "PRICE_PER_REQUEST",
    "MetricsModel",
    "MetricsSummary",
    "MetricsWidget",
    "Percentiles",
    "metrics_summary",
]

# AWS Lambda pricing, https://aws.amazon.com/lambda/pricing/ (US East (N. Virginia), x86,
# first pricing tier: up to 6 billion GB-seconds a month); also "How AWS Pricing Works",
# Lambda section. Duration: $0.0000166667 per GB-second. Requests: $0.20 per 1 million.
PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_REQUEST = 0.20 / 1_000_000

_PALETTE = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


@dataclass(frozen=True, kw_only=True)
class Percentiles:
    """Latency percentiles in ms over ``n`` invocations (``nan`` when ``n == 0``)."""

    n: int
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        if not values:
            return cls(n=0, p50=float("nan"), p95=float("nan"), p99=float("nan"))
        p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
        return cls(n=len(values), p50=float(p50), p95=float(p95), p99=float(p99))


@dataclass(frozen=True, kw_only=True)
class MetricsSummary:
    invocations: int  # invocations that ran (billed requests); not those whose init failed
    cold_starts: int
    warm_starts: int
    throttles: int
    errors: Mapping[str, int]  # outcome -> count, for error | timeout | crash
    init_errors: int
    latency_ms: Mapping[str, Percentiles]  # "cold" | "warm"
    peak_concurrency: int
    billed_gb_seconds: float
    cost_usd: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class MetricsModel:
    """The metrics, reduced from events one at a time. Pure: no widgets, no clock."""

    def __init__(self) -> None:
        self.functions: list[str] = []
        self.concurrency: dict[str, int] = {}
        self.times: list[float] = []  # when concurrency changed
        self.levels: list[list[int]] = []  # concurrency per function (in self.functions order)
        self.received: dict[str, float] = {}
        self.running: dict[str, tuple[str, str]] = {}  # env -> (function, request id)
        self.latency: dict[str, list[float]] = {"cold": [], "warm": []}
        self.cold = self.warm = self.throttles = self.init_errors = self.invocations = 0
        self.errors: dict[str, int] = {"error": 0, "timeout": 0, "crash": 0}
        self.peak = 0
        self.gb_seconds = 0.0
        self.last_time = 0.0
        self.version = 0
        self._series: tuple[int, np.ndarray, np.ndarray] | None = None

    def feed(self, events: Iterable[Event]) -> None:
        for e in events:
            self.apply(e)

    def _change(self, t: float, function: str, delta: int) -> None:
        if function not in self.concurrency:
            self.functions.append(function)
            self.concurrency[function] = 0
        self.concurrency[function] = max(0, self.concurrency[function] + delta)
        self.times.append(t)
        self.levels.append([self.concurrency[f] for f in self.functions])
        self.peak = max(self.peak, sum(self.concurrency.values()))

    def apply(self, e: Event) -> None:
        self.last_time = max(self.last_time, e.time)
        k = e.kind
        if k == "invoke.received" and e.request_id is not None:
            self.received[e.request_id] = e.time
        elif k == "invoke.throttled":
            self.throttles += 1
            if e.request_id is not None:
                self.received.pop(e.request_id, None)
        elif k == "env.init.error":
            self.init_errors += 1
        elif k == "invoke.start" and e.env is not None:
            self.running[e.env] = (e.function or "?", e.request_id or "")
            self._change(e.time, e.function or "?", +1)
            if e.get("cold"):
                self.cold += 1
            else:
                self.warm += 1
        elif k == "invoke.end":
            if e.env is not None and self.running.pop(e.env, None) is not None:
                self._change(e.time, e.function or "?", -1)
            outcome = e.get("outcome")
            if outcome in self.errors:
                self.errors[outcome] += 1
            elif outcome != "success":
                self.errors["error"] += 1
            if e.get("init_error"):  # the handler never ran: no latency, nothing billed
                self.received.pop(e.request_id or "", None)
                self.version += 1
                return
            self.invocations += 1
            start = self.received.pop(e.request_id or "", None)
            if start is not None:
                latency = (e.time - start) * 1000
            else:
                latency = float(e.get("duration_ms") or 0) + float(e.get("init_ms") or 0)
            self.latency["cold" if e.get("cold") else "warm"].append(latency)
            billed_ms = float(e.get("billed_ms") or 0)
            self.gb_seconds += billed_ms / 1000 * float(e.get("memory_size") or 128) / 1024
        elif k == "env.shutdown.end" and e.env in self.running:
            function, _ = self.running.pop(e.env)  # died mid-invocation with no invoke.end
            self._change(e.time, function, -1)
        else:
            return
        self.version += 1

    def summary(self) -> MetricsSummary:
        return MetricsSummary(
            invocations=self.invocations,
            cold_starts=self.cold,
            warm_starts=self.warm,
            throttles=self.throttles,
            errors=dict(self.errors),
            init_errors=self.init_errors,
            latency_ms={k: Percentiles.of(v) for k, v in self.latency.items()},
            peak_concurrency=self.peak,
            billed_gb_seconds=self.gb_seconds,
            cost_usd=self.gb_seconds * PRICE_PER_GB_SECOND + self.invocations * PRICE_PER_REQUEST,
        )

    def series(self, now: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Concurrency over time: change times (plus ``now``) and each function's level."""
        now = self.last_time if now is None else max(now, self.last_time)
        if self._series is None or self._series[0] != len(self.times):
            n = len(self.functions)
            levels = np.zeros((len(self.times) + 2, n), dtype=np.int32)
            for i, row in enumerate(self.levels, start=1):
                levels[i, : len(row)] = row
            levels[-1] = levels[-2]
            self._series = (len(self.times), np.asarray([0.0, *self.times, 0.0]), levels)
        _, times, levels = self._series
        times = times.copy()
        times[-1] = now  # only the last point moves between events
        return times, {f: levels[:, j] for j, f in enumerate(self.functions)}


def metrics_summary(events: Iterable[Event]) -> MetricsSummary:
    """The pure function: events in, :class:`MetricsSummary` out."""
    model = MetricsModel()
    model.feed(events)
    return model.summary()


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.0f}"  # nan != nan


def summary_html(s: MetricsSummary) -> str:
    """The summary as a small HTML table (what the widget shows)."""
    errors = ", ".join(f"{k} {v}" for k, v in s.errors.items() if v) or "0"
    rows = [
        ("invocations", f"{s.invocations} (cold {s.cold_starts}, warm {s.warm_starts})"),
        ("throttles (429)", str(s.throttles)),
        ("errors", f"{errors}; init errors {s.init_errors}"),
        ("peak concurrency", str(s.peak_concurrency)),
        (
            "billed",
            f"{s.billed_gb_seconds:.4f} GB-s → ${s.cost_usd:.8f}"
            f" (at ${PRICE_PER_GB_SECOND}/GB-s + $0.20/1M requests)",
        ),
    ]
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    latency = "".join(
        f"<tr><td>{kind}</td><td>{p.n}</td><td>{_fmt(p.p50)}</td><td>{_fmt(p.p95)}</td>"
        f"<td>{_fmt(p.p99)}</td></tr>"
        for kind, p in s.latency_ms.items()
    )
    return (
        f"<div style='display:flex;gap:2em;font-size:12px'><table>{cells}</table>"
        "<table><tr><th>latency ms</th><th>n</th><th>p50</th><th>p95</th><th>p99</th></tr>"
        f"{latency}</table></div>"
    )


def _limit_shapes(limits: Mapping[str, int | None], colours: Mapping[str, str]) -> list[Any]:
    shapes = []
    for name, value in limits.items():
        if value is None:
            continue
        colour = "#d62728" if name == "account" else colours.get(name, "#555")
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": value,
                "y1": value,
                "line": {"color": colour, "dash": "dash" if name == "account" else "dot"},
                "label": {
                    "text": "account limit" if name == "account" else f"{name} reserved",
                    "textposition": "end",
                    "font": {"size": 10, "color": colour},
                },
            }
        )
    return shapes


def _lab_limits(lab: Any, functions: Sequence[str]) -> dict[str, int | None]:
    """The concurrency limits to draw: the account's, and each function's reserved one."""
    if lab is None:
        return {}
    limits: dict[str, int | None] = {"account": getattr(lab, "account_concurrency", None)}
    for name, fn in dict(getattr(lab, "functions", {}) or {}).items():
        if name in functions:
            limits[name] = getattr(fn, "reserved_concurrency", None)
    return limits


class MetricsWidget(Panel, ipywidgets.VBox):
    """Live metrics: a summary table and concurrency over time, stacked by function."""

    def __init__(self, source: Source, *, live: bool | None = None, start: bool = True) -> None:
        super().__init__()
        self.lab = None if isinstance(source, EventLog) else source  # limits come from a lab
        self.model = MetricsModel()
        self.table = ipywidgets.HTML()
        self.figure = go.FigureWidget(
            layout={
                "template": "plotly_white",
                "height": 260,
                "margin": {"l": 40, "r": 10, "t": 30, "b": 40},
                "title": {"text": "Concurrent executions", "font": {"size": 13}},
                "xaxis": {"title": {"text": "seconds since the lab started"}},
                "yaxis": {"title": {"text": "busy environments"}, "rangemode": "tozero"},
                "legend": {"orientation": "h", "y": -0.3},
                "uirevision": "metrics",
            }
        )
        self.errors = error_output()
        self.children = [self.table, self.figure, self.errors]
        self._drawn_version = -1
        self._start(source, live, start)

    def feed(self, events: Sequence[Event]) -> None:
        self.model.feed(events)

    @property
    def tick(self) -> float | None:
        return 0.0 if self.model.running else None  # the running areas extend to now

    def summary(self) -> MetricsSummary:
        return self.model.summary()

    def draw(self, now: float | None) -> None:
        model = self.model
        limits = _lab_limits(self.lab, model.functions)
        if model.version != self._drawn_version:
            self._drawn_version = model.version
            self.table.value = summary_html(model.summary())
        times, levels = model.series(now)
        fig = self.figure
        for name in levels:  # a function's first invocation adds its area
            if name not in {t.name for t in fig.data}:
                colour = _PALETTE[len(fig.data) % len(_PALETTE)]
                fig.add_scatter(
                    name=name,
                    x=[],
                    y=[],
                    mode="lines",
                    stackgroup="concurrency",
                    line={"shape": "hv", "width": 1, "color": colour},
                )
        colours = {t.name: t.line.color for t in fig.data}
        top = max([int(model.peak), *(v for v in limits.values() if v is not None)], default=1)
        with fig.batch_update():
            for trace in fig.data:
                trace.x = times
                trace.y = levels[trace.name]
            fig.layout.shapes = _limit_shapes(limits, colours)
            fig.layout.yaxis.range = [0, max(1, top) * 1.15]

    def __repr__(self) -> str:
        s = self.model
        return f"<MetricsWidget {s.invocations} invocations, {s.throttles} throttles>"
