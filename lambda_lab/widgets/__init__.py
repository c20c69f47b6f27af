"""Notebook widgets that draw the lab live from its event log.

``lab.dashboard()`` composes them; each also works alone, on a ``Lab`` or a recorded
``EventLog``. The pure functions (``timeline_figure``, ``timeline_data``, ``console_lines``,
``metrics_summary``, ``environment_states``) turn events into pictures and numbers without a
notebook; ``lifecycle`` holds the timeline's reducer. How frames reach the browser while a
cell blocks: :mod:`lambda_lab.widgets.live`.

======================  ========================================================
``timeline``            Gantt chart: one row per environment (``lifecycle``)
``console``             the lifecycle as lines, with START/END/REPORT
``metrics``             concurrency, cold/warm, throttles, errors, p50/p95/p99, cost
``environments``        live environments with Kill buttons
``controls``            Invoke, Burst, concurrency and idle-timeout sliders, Reset
``dashboard``           all of them, one frame thread
``live``                the frame thread (``Renderer``) and the ``Panel`` protocol
======================  ========================================================
"""

from __future__ import annotations

# Plotly uses pandas when it finds it in sys.modules. Import it fully now, on the importing
# thread: if a notebook cell imported it for the first time (lab.events.to_dataframe()) while
# the frame thread draws, that thread would see a half-initialised module.
import pandas  # noqa: F401

from .console import ConsoleWidget, console_lines
from .controls import ControlsWidget
from .dashboard import Dashboard, dashboard
from .environments import EnvironmentState, EnvironmentsWidget, environment_states
from .live import Renderer
from .metrics import MetricsSummary, MetricsWidget, metrics_summary
from .timeline import TimelineModel, TimelineWidget, timeline_data, timeline_figure

__all__ = [
    "ConsoleWidget",
    "ControlsWidget",
    "Dashboard",
    "EnvironmentState",
    "EnvironmentsWidget",
    "MetricsSummary",
    "MetricsWidget",
    "Renderer",
    "TimelineModel",
    "TimelineWidget",
    "console_lines",
    "dashboard",
    "environment_states",
    "metrics_summary",
    "timeline_data",
    "timeline_figure",
]
