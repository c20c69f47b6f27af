"""The timeline: one row per execution environment, one bar per thing it did.

Real Lambda never shows you its environments; this Gantt chart does. Each row is one execution
environment (grouped by function, labelled ``env (pid)``): its init phase split into the
platform part (``init_delay``: microVM boot, code download) and the runtime part (process start
to the first ``GET /runtime/invocation/next``), each invocation coloured by outcome, the idle
time between invocations as a thin bar, and the shutdown. Throttled invocations (HTTP 429,
``TooManyRequestsException``) never reach an environment, so they are markers on a row of their
own per function::

    >>> from lambda_lab.widgets.timeline import timeline_figure
    >>> fig = timeline_figure(lab.events)       # a static go.Figure: fig.write_html("t.html")
    >>> TimelineWidget(lab)                     # the same picture, live, in a notebook

Everything is computed from the :class:`~lambda_lab.events.EventLog` by ``TimelineModel``
(:mod:`lambda_lab.widgets.lifecycle`), a pure, incremental reducer: the live widget,
``lab.timeline_figure()`` and a replayed log (``EventLog.from_jsonl``) run the same code. There
is one Plotly ``Bar`` trace per *kind* of bar, never one per invocation, so 10,000 bars are 10
traces of arrays. Beyond ``max_bars`` finished invocations the oldest are merged into one
"earlier invocations" bar per environment; beyond ``max_rows`` environments the longest-gone
ones are left out (and counted in the title).

Live updates, while a cell blocks in ``fn.invoke()``: events only wake a dedicated frame thread,
which draws at most 10 frames a second, each one ``figure.batch_update()``, and whose comm
messages leave through ipykernel's thread-safe IOPub thread; not the kernel's main thread (it
is the one blocked) nor the lab's IOLoop thread (it runs the cloud). The reasons and the
evidence are in :mod:`lambda_lab.widgets.live`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import ipywidgets
import plotly.graph_objects as go

from ..events import Event
from .lifecycle import (
    BAR_STYLES,
    MAX_BARS,
    MAX_ROWS,
    THROTTLE_STYLE,
    TRACE_NAMES,
    TimelineData,
    TimelineModel,
    timeline_data,
)
from .live import Panel, Source, error_output, log_of

__all__ = ["TRACE_NAMES", "TimelineModel", "TimelineWidget", "timeline_data", "timeline_figure"]


# -- Plotly ----------------------------------------------------------------------------------
def _skeleton() -> list[go.Bar | go.Scatter]:
    traces: list[go.Bar | go.Scatter] = [
        go.Bar(
            name=name,
            orientation="h",
            marker={"color": colour, "line": {"width": 0.5, "color": "white"}},
            width=width,
            base=[],
            x=[],
            y=[],
            hovertemplate="%{hovertext}<extra></extra>",
        )
        for _, name, colour, width in BAR_STYLES
    ]
    traces.append(
        go.Scatter(
            name=THROTTLE_STYLE[1],
            mode="markers",
            marker={
                "color": THROTTLE_STYLE[2],
                "symbol": "x-thin",
                "size": 10,
                "line": {"width": 2, "color": THROTTLE_STYLE[2]},
            },
            x=[],
            y=[],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    return traces


def _base_layout() -> dict[str, Any]:
    return {
        "barmode": "overlay",
        "bargap": 0.2,
        "template": "plotly_white",
        "margin": {"l": 10, "r": 10, "t": 60, "b": 40},
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "yanchor": "bottom",
            "font": {"size": 10},
        },
        "title": {"y": 0.99, "yanchor": "top", "x": 0.01, "font": {"size": 14}},
        "xaxis": {"title": {"text": "seconds since the lab started"}, "zeroline": False},
        "yaxis": {"autorange": "reversed", "automargin": True, "tickmode": "array"},
        "hoverlabel": {"align": "left"},
        "uirevision": "timeline",
    }


def _layout_updates(frame: TimelineData, *, follow: bool = True) -> dict[str, Any]:
    """The layout properties that change from frame to frame."""
    n = len(frame.labels)
    step = max(1, -(-n // 150))  # at most ~150 labels: more would overlap into a smudge
    title = f"Execution environments ({sum(1 for lab in frame.labels if ': ' not in lab)})"
    notes = []
    if frame.hidden_rows:
        notes.append(f"{frame.hidden_rows} older environments not drawn")
    if frame.aggregated:
        notes.append(f"{frame.aggregated} earlier invocations merged")
    if notes:
        title += " · " + " · ".join(notes)
    updates = {
        "title.text": title,
        "height": int(min(max(160 + 24 * n, 300), 1200)),
        "yaxis.tickvals": list(range(0, n, step)),
        "yaxis.ticktext": frame.labels[::step],
        "yaxis.tickfont.size": 12 if n <= 40 else 9,
        "yaxis.range": [n - 0.5, -0.5] if n else [0.5, -0.5],
    }
    if follow:  # else leave the x axis where the reader zoomed it
        updates["xaxis.range"] = list(frame.x_range)
    return updates


def timeline_figure(source: Source | Iterable[Event], *, window: float | None = None) -> go.Figure:
    """A static ``go.Figure`` of the whole log, e.g. for ``fig.write_html("timeline.html")``."""
    events = log_of(source) if not isinstance(source, (list, tuple)) else source
    frame = timeline_data(events, window=window)
    fig = go.Figure(data=_skeleton(), layout=_base_layout())
    _apply(fig, frame)
    return fig


def _apply(fig: go.Figure, frame: TimelineData, *, follow: bool = True) -> None:
    for trace, name in zip(fig.data, TRACE_NAMES, strict=True):
        d = frame.traces[name]
        if name == THROTTLE_STYLE[1]:
            trace.x = d.x
        else:
            trace.base = d.base
            trace.x = d.x
        trace.y = d.y
        trace.hovertext = d.hovertext.astype(str) if len(d.hovertext) else []
    fig.update_layout(_layout_updates(frame, follow=follow))


class TimelineWidget(Panel, ipywidgets.VBox):
    """The live timeline: a ``go.FigureWidget`` redrawn from the event log.

    ``TimelineWidget(lab)`` follows a running lab; ``TimelineWidget(EventLog.from_jsonl(p))``
    draws a recorded one. ``window`` is how many seconds of the newest history the x axis
    shows (``None``: everything); untick ``follow`` to zoom and pan freely. ``max_rows`` and
    ``max_bars`` bound the drawing.
    ``start=False`` leaves the drawing to a shared :class:`Renderer` (see ``dashboard``).
    """

    def __init__(
        self,
        source: Source,
        *,
        window: float | None = 60.0,
        max_rows: int = MAX_ROWS,
        max_bars: int = MAX_BARS,
        live: bool | None = None,
        start: bool = True,
    ) -> None:
        super().__init__()
        self.window = window
        self.model = TimelineModel(max_rows=max_rows, max_bars=max_bars)
        self.figure = go.FigureWidget(data=_skeleton(), layout=_base_layout())
        self.follow = ipywidgets.Checkbox(True, description="follow the newest events")
        self.errors = error_output()
        self.children = [self.follow, self.figure, self.errors]
        self.follow.observe(self._redraw, names="value")
        self._start(source, live, start)

    def _redraw(self, _change: object = None) -> None:
        if self.renderer is not None:
            self.renderer.request()

    def feed(self, events: Sequence[Event]) -> None:
        self.model.feed(events)

    @property
    def tick(self) -> float | None:
        return self.model.tick

    def draw(self, now: float | None) -> None:
        frame = self.model.data(now, window=self.window)
        with self.figure.batch_update():
            _apply(self.figure, frame, follow=self.follow.value)

    def rows(self) -> list[str]:
        """The y tick labels as drawn (what a student reads on the left of the chart)."""
        return list(self.figure.layout.yaxis.ticktext or ())

    def trace(self, name: str) -> Any:
        """The trace called ``name``, one of ``TRACE_NAMES``."""
        return self.figure.data[TRACE_NAMES.index(name)]

    def __repr__(self) -> str:
        return f"<TimelineWidget {len(self.model.order)} environments>"
