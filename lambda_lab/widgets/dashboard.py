"""The dashboard: every panel of the lab on one screen, drawn by one frame thread.

``lab.dashboard()`` (or ``dashboard(lab)``) shows, top to bottom: the controls, the timeline
of execution environments, the console beside the environments panel (with Kill buttons),
and the metrics. All panels share one :class:`~lambda_lab.widgets.live.Renderer`, so one
subscription and one thread serve them, and each frame reads each new event once::

    >>> board = lab.dashboard()
    >>> board                                   # display it, then run cells that invoke
    >>> dashboard(EventLog.from_jsonl("burst.jsonl"))   # a recording: no controls, no Kill

Each panel also works alone (``TimelineWidget(lab)``, ``ConsoleWidget(lab)``, ...).
"""

from __future__ import annotations

from typing import Any

import ipywidgets

from ..events import EventLog
from .console import ConsoleWidget
from .controls import ControlsWidget
from .environments import EnvironmentsWidget
from .live import Panel, Renderer, Source, clock_for, log_of
from .metrics import MetricsWidget
from .timeline import TimelineWidget

__all__ = ["Dashboard", "dashboard"]


class Dashboard(ipywidgets.VBox):
    """The composed dashboard; ``.timeline``, ``.console``, ... are the panels."""

    def __init__(
        self,
        source: Source,
        *,
        window: float | None = 60.0,
        fps: float = 10.0,
        live: bool | None = None,
        start: bool = True,
    ) -> None:
        super().__init__()
        recording = isinstance(source, EventLog)
        self.controls = None if recording else ControlsWidget(source, start=False)
        self.timeline = TimelineWidget(source, window=window, start=False)
        self.console = ConsoleWidget(source, start=False)
        self.environments = EnvironmentsWidget(source, start=False)
        self.metrics = MetricsWidget(source, start=False)
        self.console.layout.width = "55%"
        self.environments.layout.width = "45%"
        panels: list[Panel] = [self.timeline, self.console, self.environments, self.metrics]
        if self.controls is not None:
            panels.append(self.controls)
        self.panels = panels
        self.renderer = Renderer(log_of(source), panels, clock=clock_for(source, live), fps=fps)
        if start:
            self.renderer.start()
        top: list[Any] = [] if self.controls is None else [self.controls]
        self.children = [
            *top,
            self.timeline,
            ipywidgets.HBox([self.console, self.environments]),
            self.metrics,
        ]

    def refresh(self) -> None:
        """Draw a frame now, on the calling thread."""
        self.renderer.frame()

    def close(self) -> None:
        """Stop drawing and close every widget (the lab keeps running)."""
        self.renderer.stop()
        for panel in self.panels:
            panel.close()
        for box in self.children:
            box.close()
        super().close()

    def __repr__(self) -> str:
        return f"<Dashboard {len(self.panels)} panels, {self.renderer.frames} frames>"


def dashboard(source: Source, **options: Any) -> Dashboard:
    """The live dashboard for a ``Lab`` (or a recorded ``EventLog``)."""
    return Dashboard(source, **options)
