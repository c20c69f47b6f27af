"""The lifecycle of every execution environment, as bars: the pure half of the timeline.

Lambda documents an execution environment's lifecycle as phases ("Lambda execution
environment lifecycle", Lambda Developer Guide): **Init** (here split into the platform's
part, ``init_delay``, and the runtime's, up to its first ``GET /runtime/invocation/next``),
**Invoke** (once per invocation), and **Shutdown**; between invocations the environment sits
idle. :class:`TimelineModel` reads the event log and turns each phase into a bar with a start,
an end, a row and a hover text::

    >>> frame = timeline_data(lab.events)
    >>> frame.labels                         # one row per environment, "env (pid)"
    ['hello-1 (4242)', 'hello-2 (4243)', 'hello: throttled']
    >>> frame.traces["success"].base         # start times (s) of successful invocations

It is a reducer: ``feed`` events as they come, ask for ``data(now)`` as often as you like;
finished bars are cached as arrays, so a frame costs about a millisecond at 10,000 bars.
No widgets, no threads, no clock: :mod:`lambda_lab.widgets.timeline` draws what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events import Event

__all__ = [
    "BAR_STYLES",
    "MAX_BARS",
    "MAX_ROWS",
    "OUTCOMES",
    "THROTTLE_STYLE",
    "TRACE_NAMES",
    "TimelineData",
    "TimelineModel",
    "TraceData",
    "timeline_data",
]

OUTCOMES = ("success", "error", "timeout", "crash")

# (key, legend name, colour, bar thickness in rows). One Bar trace each, in this order.
BAR_STYLES: tuple[tuple[str, str, str, float], ...] = (
    ("init_platform", "init: platform", "#c6dbef", 0.7),
    ("init_runtime", "init: runtime", "#6baed6", 0.7),
    ("init_error", "init failed", "#67000d", 0.7),
    ("idle", "idle", "#bdbdbd", 0.22),
    ("earlier", "earlier invocations", "#a1d99b", 0.7),
    ("running", "running", "#fdd835", 0.7),
    ("success", "success", "#2ca02c", 0.7),
    ("error", "error", "#d62728", 0.7),
    ("timeout", "timeout", "#ff7f0e", 0.7),
    ("crash", "crash", "#7b3294", 0.7),
    ("shutdown", "shutdown", "#525252", 0.7),
)
THROTTLE_STYLE = ("throttled", "throttled (429)", "#d62728")
TRACE_NAMES = tuple(s[1] for s in BAR_STYLES) + (THROTTLE_STYLE[1],)

IDLE_TICK = 0.5  # s between frames while environments only sit idle (their bars grow slowly)
MAX_ROWS = 1_000
MAX_BARS = 10_000
_MIN_IDLE_S = 0.001  # an invocation that follows init at once leaves no idle bar worth drawing


def _ms(value: Any) -> str:
    return "?" if value is None else f"{float(value):.1f} ms"


class _Env:
    """What the timeline knows about one execution environment so far."""

    __slots__ = (
        "index",
        "function",
        "env",
        "pid",
        "provisioned",
        "host",
        "state",
        "init_start",
        "init_delay",
        "cause",
        "inv_start",
        "inv_rid",
        "inv_cold",
        "idle_start",
        "shutdown_start",
        "shutdown_reason",
        "last_active",
        "invocations",
    )

    def __init__(self, index: int, function: str, env: str, t: float) -> None:
        self.index = index
        self.function = function
        self.env = env
        self.pid: int | None = None
        self.provisioned = False
        self.host: str | None = None
        self.state = "initializing"
        self.init_start: float | None = t
        self.init_delay = 0.0
        self.cause: str | None = None
        self.inv_start: float | None = None
        self.inv_rid: str | None = None
        self.inv_cold = False
        self.idle_start: float | None = None
        self.shutdown_start: float | None = None
        self.shutdown_reason: str | None = None
        self.last_active = t
        self.invocations = 0

    @property
    def label(self) -> str:
        return f"{self.env} ({self.pid if self.pid is not None else '…'})"


class _Bars:
    """Finished bars of one kind, as growing columns."""

    __slots__ = ("start", "end", "env", "hover")

    def __init__(self) -> None:
        self.start: list[float] = []
        self.end: list[float] = []
        self.env: list[int] = []
        self.hover: list[str] = []

    def add(self, start: float, end: float, env: int, hover: str) -> None:
        self.start.append(start)
        self.end.append(max(end, start))
        self.env.append(env)
        self.hover.append(hover)


@dataclass(frozen=True, kw_only=True)
class TraceData:
    """The arrays of one trace: ``base`` (start, s), ``x`` (length, s), ``y`` (row)."""

    base: np.ndarray
    x: np.ndarray
    y: np.ndarray
    hovertext: np.ndarray


@dataclass(frozen=True, kw_only=True)
class TimelineData:
    """Everything a frame needs: one :class:`TraceData` per trace name, plus the y axis."""

    traces: dict[str, TraceData]
    labels: list[str]
    functions: list[str]
    x_range: tuple[float, float]
    hidden_rows: int
    aggregated: int

    def rows(self) -> list[str]:
        return list(self.labels)


class TimelineModel:
    """Turns events into bars, one event at a time (``feed``), and bars into a frame (``data``).

    Pure: no widgets, no threads, no clock. ``data(now)`` draws bars that are still open (a
    running invocation, an idle environment) up to ``now``.
    """

    def __init__(self, *, max_rows: int = MAX_ROWS, max_bars: int = MAX_BARS) -> None:
        self.max_rows = max_rows
        self.max_bars = max_bars
        self.envs: dict[str, _Env] = {}
        self.order: list[_Env] = []
        self.functions: list[str] = []
        self.bars: dict[str, _Bars] = {key: _Bars() for key, *_ in BAR_STYLES}
        self.throttles: list[tuple[float, str, str]] = []  # (time, function, hover)
        self.last_time = 0.0
        self._version = 0  # bumps whenever a finished bar is added
        self._cache: tuple[int, dict[str, tuple[np.ndarray, ...]], int] | None = None

    # -- reducing events -------------------------------------------------------------------
    def feed(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def _env(self, event: Event) -> _Env | None:
        if event.env is None:
            return None
        rec = self.envs.get(event.env)
        if rec is None:  # a log that starts mid-way (or a lost init.start): draw what we can
            function = event.function or event.env.rsplit("-", 1)[0]
            rec = _Env(len(self.order), function, event.env, event.time)
            if event.kind != "env.init.start":
                rec.init_start = None
                rec.state = "idle"
            self.envs[event.env] = rec
            self.order.append(rec)
            self._function(function)
        return rec

    def _function(self, name: str | None) -> None:
        if name is not None and name not in self.functions:
            self.functions.append(name)

    def _bar(self, kind: str, start: float, end: float, rec: _Env, hover: str) -> None:
        self.bars[kind].add(start, end, rec.index, hover)
        self._version += 1

    def apply(self, event: Event) -> None:
        t = event.time
        self.last_time = max(self.last_time, t)
        kind = event.kind
        if kind in ("log", "runtime.call", "invoke.received"):
            self._function(event.function)
            return
        if kind == "invoke.throttled":
            self._function(event.function)
            hover = (
                f"<b>throttled</b> {event.request_id}<br>{event.get('reason', '')}<br>t={t:.3f} s"
            )
            self.throttles.append((t, event.function or "?", hover))
            self._version += 1
            return
        rec = self._env(event)
        if rec is None:
            return
        rec.last_active = t
        if kind == "env.init.start":
            rec.init_start = t
            rec.init_delay = float(event.get("init_delay") or 0.0)
            rec.provisioned = bool(event.get("provisioned"))
            rec.host = event.get("host")
            rec.cause = event.request_id
            rec.state = "initializing"
        elif kind == "env.init.end":
            rec.pid = event.get("pid", rec.pid)
            self._close_init(rec, t, event, failed=False)
            rec.state = "idle"
            rec.idle_start = t
        elif kind == "env.init.error":
            self._close_init(rec, t, event, failed=True)
            rec.state = "failed"
        elif kind == "invoke.start":
            self._close_idle(rec, t)
            if event.get("pid") is not None:
                rec.pid = event.get("pid")
            rec.inv_start, rec.inv_rid, rec.inv_cold = t, event.request_id, bool(event.get("cold"))
            rec.state = "busy"
        elif kind == "invoke.end":
            if event.get("init_error") and rec.inv_start is None:
                return  # it never ran: the "init failed" bar already tells it
            self._close_invocation(rec, t, event)
            rec.state = "idle"
            rec.idle_start = t
        elif kind == "env.shutdown.start":
            self._close_idle(rec, t)
            if rec.init_start is not None:
                self._close_init(rec, t, event, failed=True)
            rec.shutdown_start, rec.shutdown_reason = t, event.get("reason")
            rec.state = "shutting down"
        elif kind == "env.shutdown.end":
            self._close_idle(rec, t)
            if rec.inv_start is not None:  # the process died with no invoke.end: a crash
                self._close_invocation(rec, t, event)
            start = rec.shutdown_start if rec.shutdown_start is not None else t
            exit_code, signal = event.get("exit_code"), event.get("signal")
            how = f"signal {signal}" if signal else f"exit code {exit_code}"
            hover = (
                f"<b>shutdown</b> {rec.env} ({rec.shutdown_reason or '?'})<br>{how}"
                f"<br>{(t - start) * 1000:.0f} ms"
            )
            self._bar("shutdown", start, t, rec, hover)
            rec.shutdown_start = None
            rec.state = "gone"

    def _close_init(self, rec: _Env, t: float, event: Event, *, failed: bool) -> None:
        start = rec.init_start
        if start is None:
            return
        platform_ms = event.get("platform_ms")
        split = start + (platform_ms / 1000 if platform_ms is not None else rec.init_delay)
        split = min(split, t)
        init_ms = event.get("init_ms")
        why = "provisioned concurrency" if rec.provisioned else f"cold start for {rec.cause}"
        self._bar(
            "init_platform",
            start,
            split,
            rec,
            f"<b>init: platform</b> {rec.env} on {rec.host or '?'}<br>{why}"
            f"<br>{(split - start) * 1000:.0f} ms (init_delay: microVM boot, code download)",
        )
        if failed:
            self._bar(
                "init_error",
                split,
                t,
                rec,
                f"<b>init failed</b> {rec.env}<br>{event.get('error_type') or ''}"
                f" {event.get('error_message') or ''}<br>init {_ms(init_ms)}",
            )
        else:
            self._bar(
                "init_runtime",
                split,
                t,
                rec,
                f"<b>init: runtime</b> {rec.env} pid {rec.pid}<br>{why}"
                f"<br>runtime {_ms(event.get('runtime_ms'))} · init total {_ms(init_ms)}",
            )
        rec.init_start = None

    def _close_idle(self, rec: _Env, t: float) -> None:
        if rec.idle_start is not None:
            if t - rec.idle_start >= _MIN_IDLE_S:
                self._bar(
                    "idle",
                    rec.idle_start,
                    t,
                    rec,
                    f"<b>idle</b> {rec.env}<br>{t - rec.idle_start:.2f} s",
                )
            rec.idle_start = None

    def _close_invocation(self, rec: _Env, t: float, event: Event) -> None:
        outcome = event.get("outcome") or "crash"
        if outcome not in OUTCOMES:
            outcome = "error"
        start = rec.inv_start
        if start is None:
            start = t - float(event.get("duration_ms") or 0.0) / 1000
        cold = event.get("cold", rec.inv_cold)
        lines = [
            f"<b>{outcome}</b> {event.request_id or rec.inv_rid}",
            f"{'cold' if cold else 'warm'} start on {rec.env}",
            f"duration {_ms(event.get('duration_ms'))} · billed {_ms(event.get('billed_ms'))}",
        ]
        if cold and event.get("init_ms") is not None:
            lines.append(f"init {_ms(event.get('init_ms'))}")
        if event.get("error_type"):
            lines.append(str(event.get("error_type")))
        if event.get("max_memory_mb") is not None:
            lines.append(f"memory {event.get('max_memory_mb')}/{event.get('memory_size')} MB")
        self._bar(outcome, start, t, rec, "<br>".join(lines))
        rec.invocations += 1
        rec.inv_start = None

    # -- drawing ---------------------------------------------------------------------------
    def _layout_rows(self) -> tuple[np.ndarray, list[str], int]:
        """Row number of every environment (-1: not drawn), the row labels, rows hidden."""
        envs = self.order
        visible = envs
        hidden = 0
        if len(envs) > self.max_rows:  # keep live environments, then the most recently active
            ranked = sorted(envs, key=lambda e: (e.state != "gone", e.last_active), reverse=True)
            keep = {e.index for e in ranked[: self.max_rows]}
            visible = [e for e in envs if e.index in keep]
            hidden = len(envs) - len(visible)
        row_of = np.full(len(envs), -1, dtype=np.int64)
        labels: list[str] = []
        throttled = {f for _, f, _ in self.throttles}
        by_function: dict[str, list[_Env]] = {f: [] for f in self.functions}
        for e in visible:
            by_function.setdefault(e.function, []).append(e)
        for function, members in by_function.items():
            for e in members:
                row_of[e.index] = len(labels)
                labels.append(e.label)
            if function in throttled:
                labels.append(f"{function}: throttled")
        return row_of, labels, hidden

    def _closed(self) -> tuple[dict[str, tuple[np.ndarray, ...]], int]:
        """Finished bars as arrays (start, end, env, hover), older invocations merged."""
        if self._cache is not None and self._cache[0] == self._version:
            return self._cache[1], self._cache[2]
        out: dict[str, tuple[np.ndarray, ...]] = {}
        for key, bars in self.bars.items():
            out[key] = (
                np.asarray(bars.start, dtype=float),
                np.asarray(bars.end, dtype=float),
                np.asarray(bars.env, dtype=np.int64),
                np.asarray(bars.hover, dtype=object),
            )
        aggregated = 0
        total = sum(len(self.bars[k].start) for k in OUTCOMES)
        if total > self.max_bars:
            aggregated = total - self.max_bars
            ends = np.concatenate([out[k][1] for k in OUTCOMES])
            cutoff = np.partition(ends, aggregated - 1)[aggregated - 1]
            starts, stops, owners, counts = [], [], [], []
            for key in OUTCOMES:
                s, e, env, hover = out[key]
                old = e <= cutoff
                starts.append(s[old])
                stops.append(e[old])
                owners.append(env[old])
                counts.append(np.bincount(env[old], minlength=len(self.order)))
                out[key] = (s[~old], e[~old], env[~old], hover[~old])
            s_all, e_all, env_all = (np.concatenate(a) for a in (starts, stops, owners))
            n = len(self.order)
            first = np.full(n, np.inf)
            last = np.full(n, -np.inf)
            np.minimum.at(first, env_all, s_all)
            np.maximum.at(last, env_all, e_all)
            ids = np.flatnonzero(np.isfinite(first))
            hovers = []
            for i in ids:
                parts = ", ".join(
                    f"{int(c[i])} {k}" for k, c in zip(OUTCOMES, counts, strict=True) if c[i]
                )
                hovers.append(
                    f"<b>{int(sum(c[i] for c in counts))} earlier invocations</b>"
                    f" on {self.order[i].env}<br>{parts}"
                )
            out["earlier"] = (first[ids], last[ids], ids, np.asarray(hovers, dtype=object))
            s, e, env, hover = out["idle"]
            keep = e > cutoff  # idle gaps inside the merged span are part of it
            out["idle"] = (s[keep], e[keep], env[keep], hover[keep])
        self._cache = (self._version, out, aggregated)
        return out, aggregated

    def _open(self, now: float) -> dict[str, tuple[list[float], list[float], list[int], list[str]]]:
        """Bars still growing at ``now``."""
        out: dict[str, tuple[list[float], list[float], list[int], list[str]]] = {}

        def add(kind: str, start: float, end: float, rec: _Env, hover: str) -> None:
            cols = out.setdefault(kind, ([], [], [], []))
            cols[0].append(start)
            cols[1].append(max(start, end))
            cols[2].append(rec.index)
            cols[3].append(hover)

        for rec in self.order:
            if rec.state == "gone":
                continue
            if rec.init_start is not None:
                split = min(rec.init_start + rec.init_delay, now)
                add(
                    "init_platform",
                    rec.init_start,
                    split,
                    rec,
                    f"<b>init: platform</b> {rec.env} on {rec.host or '?'} (in progress)",
                )
                if now > split:
                    add(
                        "init_runtime",
                        split,
                        now,
                        rec,
                        f"<b>init: runtime</b> {rec.env} (in progress)",
                    )
            if rec.inv_start is not None:
                add(
                    "running",
                    rec.inv_start,
                    now,
                    rec,
                    f"<b>running</b> {rec.inv_rid}<br>{'cold' if rec.inv_cold else 'warm'}"
                    f" start on {rec.env}<br>since t={rec.inv_start:.3f} s",
                )
            if rec.idle_start is not None and now - rec.idle_start >= _MIN_IDLE_S:
                add(
                    "idle",
                    rec.idle_start,
                    now,
                    rec,
                    f"<b>idle</b> {rec.env}<br>since t={rec.idle_start:.3f} s",
                )
            if rec.shutdown_start is not None:
                add(
                    "shutdown",
                    rec.shutdown_start,
                    now,
                    rec,
                    f"<b>shutting down</b> {rec.env} ({rec.shutdown_reason})",
                )
        return out

    @property
    def tick(self) -> float | None:
        """How soon time alone changes the picture: see ``Panel.tick``."""
        alive = [rec for rec in self.order if rec.state != "gone"]
        if any(rec.state in ("busy", "initializing", "shutting down") for rec in alive):
            return 0.0
        return IDLE_TICK if alive else None

    def data(self, now: float | None = None, *, window: float | None = None) -> TimelineData:
        """The frame at time ``now`` (default: the last event), showing ``window`` seconds."""
        now = self.last_time if now is None else max(now, self.last_time)
        row_of, labels, hidden = self._layout_rows()
        closed, aggregated = self._closed()
        opened = self._open(now)
        traces: dict[str, TraceData] = {}
        for key, name, *_ in BAR_STYLES:
            s, e, env, hover = closed[key] if key in closed else _EMPTY
            if key in opened:
                o = opened[key]
                s = np.concatenate([s, np.asarray(o[0], dtype=float)])
                e = np.concatenate([e, np.asarray(o[1], dtype=float)])
                env = np.concatenate([env, np.asarray(o[2], dtype=np.int64)])
                hover = np.concatenate([hover, np.asarray(o[3], dtype=object)])
            rows = row_of[env] if len(env) else env
            shown = rows >= 0
            if not shown.all():
                s, e, rows, hover = s[shown], e[shown], rows[shown], hover[shown]
            traces[name] = TraceData(base=s, x=e - s, y=rows.astype(np.int32), hovertext=hover)
        if self.throttles:
            row_index = {label: i for i, label in enumerate(labels)}
            t = np.asarray([x[0] for x in self.throttles], dtype=float)
            y = np.asarray(
                [row_index.get(f"{x[1]}: throttled", -1) for x in self.throttles], dtype=np.int32
            )
            hover = np.asarray([x[2] for x in self.throttles], dtype=object)
        else:
            t, y, hover = _EMPTY[0], _EMPTY[2].astype(np.int32), _EMPTY[3]
        traces[THROTTLE_STYLE[1]] = TraceData(base=t, x=t, y=y, hovertext=hover)
        if window is None or now <= window:
            span = max(now, 1.0)
            x_range = (0.0, span * 1.03)
        else:
            x_range = (now - window, now + window * 0.03)
        return TimelineData(
            traces=traces,
            labels=labels,
            functions=list(self.functions),
            x_range=x_range,
            hidden_rows=hidden,
            aggregated=aggregated,
        )


_EMPTY = (
    np.zeros(0, dtype=float),
    np.zeros(0, dtype=float),
    np.zeros(0, dtype=np.int64),
    np.zeros(0, dtype=object),
)


def timeline_data(
    events: Iterable[Event], now: float | None = None, *, window: float | None = None
) -> TimelineData:
    """The pure function behind every timeline: events in, arrays per trace out."""
    model = TimelineModel()
    model.feed(events)
    return model.data(now, window=window)
