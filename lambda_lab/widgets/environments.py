"""The environments panel: every live execution environment, with a Kill button.

An execution environment is a process that Lambda keeps between invocations ("Lambda
execution environment lifecycle", Lambda Developer Guide): initializing, then idle or busy,
then shutting down. Here each is a line (function, env id, pid, state, invocations served,
peak memory, provisioned or on-demand) and **Kill** sends its process SIGKILL
(``lab.kill(env)``), so a class can watch the in-flight invocation fail with
``Runtime.ExitError`` and the next one pay a cold start::

    >>> EnvironmentsWidget(lab)
    >>> environment_states(lab.events)     # the same, as records

The states come from the event log, not from the engine's objects, so a replayed log shows
them too (with the Kill buttons disabled).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ipywidgets

from ..events import Event, EventLog
from .live import Background, Panel, Source, error_output

__all__ = ["EnvironmentState", "EnvironmentsWidget", "environment_states"]

_STATE_COLOURS = {
    "initializing": "#3182bd",
    "idle": "#7f7f7f",
    "busy": "#e6a700",
    "shutting down": "#525252",
    "failed": "#b30000",
}


@dataclass(frozen=True, kw_only=True)
class EnvironmentState:
    function: str
    env: str
    pid: int | None = None
    state: str = "initializing"  # initializing | idle | busy | shutting down | gone
    invocations: int = 0
    max_memory_mb: float | None = None
    provisioned: bool = False
    host: str | None = None


class EnvironmentTracker:
    """Environment states reduced from events. Pure: no widgets, no processes."""

    def __init__(self) -> None:
        self.envs: dict[str, EnvironmentState] = {}

    def feed(self, events: Iterable[Event]) -> None:
        for e in events:
            if e.env is None or e.kind in ("log", "runtime.call", "invoke.received"):
                continue
            s = self.envs.get(e.env) or EnvironmentState(function=e.function or "?", env=e.env)
            k = e.kind
            if k == "env.init.start":
                s = replace(s, provisioned=bool(e.get("provisioned")), host=e.get("host"))
            elif k == "env.init.end":
                s = replace(s, pid=e.get("pid", s.pid), state="idle")
            elif k == "env.init.error":
                s = replace(s, state="failed")
            elif k == "invoke.start":
                s = replace(s, pid=e.get("pid") or s.pid, state="busy")
            elif k == "invoke.end":
                if e.get("init_error"):  # it never ran here; the environment failed first
                    continue
                memory = e.get("max_memory_mb")
                if memory is not None and s.max_memory_mb is not None:
                    memory = max(memory, s.max_memory_mb)
                s = replace(
                    s,
                    state="idle",
                    invocations=s.invocations + 1,
                    max_memory_mb=memory if memory is not None else s.max_memory_mb,
                )
            elif k == "env.shutdown.start":
                s = replace(s, state="shutting down")
            elif k == "env.shutdown.end":
                s = replace(s, state="gone")
            self.envs[e.env] = s

    def live(self) -> list[EnvironmentState]:
        """Environments not yet gone, grouped by function in order of creation."""
        order = {f: i for i, f in enumerate(dict.fromkeys(s.function for s in self.envs.values()))}
        alive = [s for s in self.envs.values() if s.state != "gone"]
        return sorted(alive, key=lambda s: order[s.function])  # stable: creation order


def environment_states(events: Iterable[Event]) -> list[EnvironmentState]:
    """Every environment the log mentions, with its latest state (``gone`` included)."""
    tracker = EnvironmentTracker()
    tracker.feed(events)
    return list(tracker.envs.values())


def describe(s: EnvironmentState) -> str:
    memory = "–" if s.max_memory_mb is None else f"{s.max_memory_mb:.0f} MB"
    kind = "provisioned" if s.provisioned else "on-demand"
    colour = _STATE_COLOURS.get(s.state, "#000")
    return (
        "<span style='font-family:monospace;font-size:12px'>"
        f"{html.escape(s.function):<10} <b>{html.escape(s.env)}</b> pid {s.pid or '…'}"
        f" · <span style='color:{colour}'>{s.state}</span> · {s.invocations} invocations"
        f" · peak {memory} · {kind}</span>"
    )


class EnvironmentsWidget(Panel, ipywidgets.VBox):
    """The live environments, one line each with a Kill button (at most ``max_shown``)."""

    def __init__(
        self,
        source: Source,
        *,
        max_shown: int = 100,
        live: bool | None = None,
        start: bool = True,
    ) -> None:
        super().__init__()
        self.lab: Any = None if isinstance(source, EventLog) else source
        self.max_shown = max_shown
        self.tracker = EnvironmentTracker()
        self.title = ipywidgets.HTML("<b>Execution environments</b>")
        self.rows = ipywidgets.VBox()
        self.errors = error_output()
        self.background = Background(self.errors, workers=2, name="kill")
        self.children = [self.title, self.rows, self.errors]
        self._rows: dict[str, tuple[ipywidgets.HBox, ipywidgets.HTML, ipywidgets.Button]] = {}
        self._start(source, live, start)

    def feed(self, events: Sequence[Event]) -> None:
        self.tracker.feed(events)

    def kill(self, env: str) -> None:
        """What the Kill button does: SIGKILL the environment's process, off the main thread."""
        if self.lab is None:
            self.errors.append_stderr(f"Cannot kill {env}: this is a recorded log, not a lab\n")
            return
        self.background.submit(self.lab.kill, env, report=lambda _: f"killed {env}")

    def _row(
        self, s: EnvironmentState
    ) -> tuple[ipywidgets.HBox, ipywidgets.HTML, ipywidgets.Button]:
        label = ipywidgets.HTML(describe(s))
        button = ipywidgets.Button(
            description="Kill",
            button_style="danger",
            tooltip=f"SIGKILL {s.env}'s process",
            disabled=self.lab is None,
            layout={"width": "4.5em"},
        )
        button.on_click(lambda _b, env=s.env: self.kill(env))
        return ipywidgets.HBox([button, label]), label, button

    def draw(self, now: float | None) -> None:
        live = self.tracker.live()
        shown = live[: self.max_shown]
        for s in shown:
            if s.env not in self._rows:
                self._rows[s.env] = self._row(s)
            _, label, button = self._rows[s.env]
            text = describe(s)
            if label.value != text:
                label.value = text
            button.disabled = self.lab is None or s.state in ("shutting down", "gone")
        keep = {s.env for s in shown}
        for env in [e for e in self._rows if e not in keep]:
            box, label, button = self._rows.pop(env)
            for w in (button, label, box):
                w.close()
        children = tuple(self._rows[s.env][0] for s in shown)
        if self.rows.children != children:
            self.rows.children = children
        more = f" (showing {len(shown)})" if len(live) > len(shown) else ""
        title = f"<b>Execution environments: {len(live)} live</b>{more}"
        if self.title.value != title:
            self.title.value = title

    def states(self) -> list[EnvironmentState]:
        return self.tracker.live()

    def __repr__(self) -> str:
        return f"<EnvironmentsWidget {len(self.tracker.live())} live>"
