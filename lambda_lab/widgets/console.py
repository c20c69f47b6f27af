"""The console: the lifecycle of every invocation, one readable line per step.

In AWS you reconstruct this from CloudWatch Logs, where the platform writes ``START``,
``END`` and ``REPORT`` lines around your function's own output ("Monitoring and
troubleshooting Lambda functions", Lambda Developer Guide). Here every step the platform
takes is a line too: the invoke received, the environment created (and its pid), the runtime
polling ``GET /runtime/invocation/next`` and receiving the event, the handler's output, the result
posted back, throttles and shutdowns::

    >>> print("\\n".join(console_lines(lab.events, function="hello")[-3:]))
       0.412s hello-1   | hello from the handler
       0.413s hello-1   runtime reported success for 8f3c... (202)
       0.414s hello-1   END RequestId: 8f3c...

``console_lines`` is pure; :class:`ConsoleWidget` shows the newest lines live, filtered by
function, keeping at most ``max_lines`` of history.
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Sequence

import anywidget
import ipywidgets
import traitlets

from ..events import Event
from ..narrate import console_lines, format_event, format_line
from .live import Panel, Source, error_output

__all__ = ["ConsoleWidget", "LogView", "console_lines", "format_event"]

ALL = "all functions"
_COLOURS = {
    "invoke.received": "#1f4e79",
    "invoke.throttled": "#d62728",
    "env.init.start": "#3182bd",
    "env.init.end": "#3182bd",
    "env.init.error": "#b30000",
    "invoke.start": "#555",
    "invoke.end": "#2ca02c",
    "env.shutdown.start": "#7f7f7f",
    "env.shutdown.end": "#7f7f7f",
    "runtime.call": "#8c6d31",
    "platform": "#6a3d9a",
    "stdout": "#000",
    "stderr": "#b30000",
}


class LogView(anywidget.AnyWidget):
    """A box of lines (``html``, one per line) that keeps the newest in view.

    It follows new lines only while the reader is at the bottom, so scrolling up to read
    an earlier invocation is not undone by the next frame.
    """

    _esm = """
    function render({ model, el }) {
      const box = document.createElement("pre");
      box.className = "lambda-lab-console";
      box.style.cssText = "max-height:22em;overflow:auto;margin:0;padding:4px;" +
        "font-size:11px;line-height:1.3;border:1px solid #ddd;white-space:pre-wrap";
      let follow = true;
      box.addEventListener("scroll", () => {
        follow = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
      });
      const draw = () => {
        box.innerHTML = model.get("html");
        if (follow) box.scrollTop = box.scrollHeight;
      };
      model.on("change:html", draw);
      el.appendChild(box);
      draw();
      requestAnimationFrame(draw);
      return () => model.off("change:html", draw);
    }
    export default { render };
    """
    html = traitlets.Unicode("").tag(sync=True)


class ConsoleWidget(Panel, ipywidgets.VBox):
    """The console, live: newest ``shown`` lines, a function filter, ``max_lines`` of history."""

    def __init__(
        self,
        source: Source,
        *,
        shown: int = 300,
        max_lines: int = 5000,
        live: bool | None = None,
        start: bool = True,
    ) -> None:
        super().__init__()
        self.shown = shown
        self.history: deque[tuple[str | None, str]] = deque(maxlen=max_lines)
        self.filter = ipywidgets.Dropdown(options=[ALL], value=ALL, description="Console")
        self.text = LogView(layout={"width": "100%"})
        self.errors = error_output()
        self.children = [self.filter, self.text, self.errors]
        self._functions: list[str] = []
        self._dirty = True
        self.filter.observe(self._on_filter, names="value")
        self._start(source, live, start)

    def _on_filter(self, change: object) -> None:
        self._dirty = True
        if self.renderer is not None:
            self.renderer.request()

    def feed(self, events: Sequence[Event]) -> None:
        for function in dict.fromkeys(e.function for e in events):
            if function is not None and function not in self._functions:
                self._functions.append(function)
        # Newest first, and no further than the history keeps: a replayed log of 60,000
        # events only formats its last max_lines.
        lines: list[tuple[str | None, str]] = []
        for e in reversed(events):
            if len(lines) == self.history.maxlen:
                break
            text = format_line(e)
            if text is None:
                continue
            stream = e.get("stream") if e.kind == "log" else e.kind
            colour = _COLOURS.get(str(stream), "#000")
            line = html.escape(text)
            lines.append((e.function, f'<span style="color:{colour}">{line}</span>'))
        if lines:
            self.history.extend(reversed(lines))
            self._dirty = True

    def lines(self) -> list[str]:
        """The lines currently shown, as plain text."""
        import re

        value = self.text.html
        return (
            [html.unescape(re.sub(r"<[^>]+>", "", s)) for s in value.split("\n")] if value else []
        )

    def draw(self, now: float | None) -> None:
        options = [ALL, *self._functions]
        if list(self.filter.options) != options:
            self.filter.options = options  # keeps the current value, which is still listed
        if not self._dirty:
            return
        self._dirty = False
        chosen = self.filter.value
        rows = [line for fn, line in self.history if chosen == ALL or fn == chosen]
        self.text.html = "\n".join(rows[-self.shown :])

    def __repr__(self) -> str:
        return f"<ConsoleWidget {len(self.history)} lines>"
