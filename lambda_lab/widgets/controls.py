"""Controls: invoke, burst and turn the knobs of a running lab from buttons and sliders.

Everything here is a line of the Python API a lesson could type instead: **Invoke** is
``fn.invoke(payload)``, **Burst N** is ``fn.burst(n, payload)``, the sliders set
``lab.account_concurrency``, ``fn.reserved_concurrency`` (a function's maximum and guaranteed
share, "Configuring reserved concurrency"), ``fn.provisioned_concurrency`` (environments
initialised ahead, "Configuring provisioned concurrency") and ``fn.idle_timeout`` (our knob
for how long an idle environment survives)::

    >>> ControlsWidget(lab)

A widget callback runs on the kernel's main thread, so it never does the work itself: it
hands it to a :class:`~lambda_lab.widgets.live.Background` thread and returns at once. Results
and exceptions (with their tracebacks) are written to the widget's output area.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

import ipywidgets

from ..events import Event
from .live import Background, Panel

__all__ = ["ControlsWidget"]


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """Show a callback's exception in the widget's output instead of losing it."""

    @wraps(method)
    def run(self: ControlsWidget, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception as exc:
            self.output.append_stderr(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            )

    return run


def _summary(results: Sequence[Any]) -> str:
    outcomes = Counter(getattr(r, "outcome", "?") for r in results)
    cold = sum(1 for r in results if getattr(r, "cold", False))
    parts = ", ".join(f"{n} {k}" for k, n in outcomes.items())
    return f"burst of {len(results)}: {parts}; {cold} cold starts"


class ControlsWidget(Panel, ipywidgets.VBox):
    """Buttons and sliders for one lab. ``start=False`` when a dashboard draws it."""

    def __init__(self, lab: Any, *, start: bool = True) -> None:
        super().__init__()
        self.lab = lab
        self.output = ipywidgets.Output(layout={"max_height": "10em", "overflow": "auto"})
        self.errors = self.output
        self.background = Background(self.output, name="controls")
        self._syncing = False
        self._initial = self._settings()
        slider = {"continuous_update": False, "style": {"description_width": "11em"}}
        self.function = ipywidgets.Dropdown(options=list(lab.functions), description="Function")
        self.payload = ipywidgets.Textarea(
            value='{"name": "Ada"}', description="Payload (JSON)", layout={"width": "30em"}
        )
        self.sleep = ipywidgets.FloatSlider(
            0.0, min=0.0, max=5.0, step=0.1, description="handler sleep (s)", **slider
        )
        self.invoke_button = ipywidgets.Button(description="Invoke", button_style="primary")
        self.async_button = ipywidgets.Button(description="Invoke async (Event)")
        self.burst_size = ipywidgets.IntSlider(5, min=1, max=100, description="Burst N", **slider)
        self.burst_button = ipywidgets.Button(description="Burst", button_style="warning")
        self.account = ipywidgets.IntSlider(
            lab.account_concurrency,
            min=1,
            max=max(100, lab.account_concurrency),
            description="account concurrency",
            **slider,
        )
        self.reserved_on = ipywidgets.Checkbox(False, description="reserve", indent=False)
        self.reserved = ipywidgets.IntSlider(
            0, min=0, max=100, description="reserved concurrency", **slider
        )
        self.provisioned = ipywidgets.IntSlider(
            0, min=0, max=20, description="provisioned concurrency", **slider
        )
        self.idle_timeout = ipywidgets.FloatSlider(
            600.0, min=1.0, max=600.0, step=1.0, description="idle timeout (s)", **slider
        )
        self.reset_button = ipywidgets.Button(description="Reset settings", icon="undo")

        self.invoke_button.on_click(self._invoke)
        self.async_button.on_click(self._invoke_async)
        self.burst_button.on_click(self._burst)
        self.reset_button.on_click(self._reset)
        self.function.observe(self._on_function, names="value")
        self.account.observe(self._on_account, names="value")
        for w in (self.reserved, self.reserved_on):
            w.observe(self._on_reserved, names="value")
        self.provisioned.observe(self._on_provisioned, names="value")
        self.idle_timeout.observe(self._on_idle_timeout, names="value")
        self._show_function()

        self.children = [
            ipywidgets.HBox([self.function, self.payload]),
            ipywidgets.HBox([self.sleep, self.invoke_button, self.async_button]),
            ipywidgets.HBox([self.burst_size, self.burst_button]),
            ipywidgets.HBox([self.account, self.reset_button]),
            ipywidgets.HBox([self.reserved_on, self.reserved]),
            ipywidgets.HBox([self.provisioned, self.idle_timeout]),
            self.output,
        ]
        if start:  # only to notice functions deployed later
            from .live import Renderer

            self.renderer = Renderer(lab.events, [self]).start()

    # -- state -----------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        return {
            "account_concurrency": self.lab.account_concurrency,
            "functions": {
                name: {
                    "reserved_concurrency": fn.reserved_concurrency,
                    "provisioned_concurrency": fn.provisioned_concurrency,
                    "idle_timeout": fn.idle_timeout,
                }
                for name, fn in self.lab.functions.items()
            },
        }

    def _fn(self) -> Any:
        name = self.function.value
        if name is None:
            raise ValueError("No function deployed yet: call lab.deploy(...) first")
        return self.lab.functions[name]

    def _show_function(self) -> None:
        """Move the sliders to the selected function's current settings."""
        if self.function.value is None:
            return
        fn = self._fn()
        self._syncing = True
        try:
            reserved = fn.reserved_concurrency
            self.reserved_on.value = reserved is not None
            self.reserved.value = reserved or 0
            self.provisioned.value = fn.provisioned_concurrency
            self.idle_timeout.max = max(self.idle_timeout.max, fn.idle_timeout)
            self.idle_timeout.value = fn.idle_timeout
            self.account.value = self.lab.account_concurrency
        finally:
            self._syncing = False

    def payload_value(self) -> Any:
        """The JSON payload, with ``sleep`` set from the slider when it is above zero."""
        text = self.payload.value.strip() or "null"
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Payload is not valid JSON ({exc}): {text!r}") from None
        if self.sleep.value > 0:
            if payload is None:
                payload = {}
            if not isinstance(payload, dict):
                raise ValueError(f"Cannot add 'sleep' to a non-object payload: {text!r}")
            payload = {**payload, "sleep": self.sleep.value}
        return payload

    # -- callbacks (main thread: never block) ----------------------------------------------
    @_guarded
    def _invoke(self, _button: object = None) -> None:
        fn, payload = self._fn(), self.payload_value()
        self.background.submit(fn.invoke, payload, report=repr)

    @_guarded
    def _invoke_async(self, _button: object = None) -> None:
        fn, payload = self._fn(), self.payload_value()
        self.background.submit(
            fn.invoke_async, payload, report=lambda rid: f"queued async invoke {rid}"
        )

    @_guarded
    def _burst(self, _button: object = None) -> None:
        fn, payload = self._fn(), self.payload_value()
        self.background.submit(fn.burst, self.burst_size.value, payload, report=_summary)

    @_guarded
    def _on_function(self, _change: object) -> None:
        self._show_function()

    def _set(self, target: Any, key: str, value: Any) -> None:
        label = getattr(target, "name", "account")
        self.background.submit(
            setattr, target, key, value, report=lambda _: f"{label}: {key} = {value}"
        )

    @_guarded
    def _on_account(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self._set(self.lab, "account_concurrency", change["new"])

    @_guarded
    def _on_reserved(self, _change: object) -> None:
        self.reserved.disabled = not self.reserved_on.value
        if not self._syncing:
            value = self.reserved.value if self.reserved_on.value else None
            self._set(self._fn(), "reserved_concurrency", value)

    @_guarded
    def _on_provisioned(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self._set(self._fn(), "provisioned_concurrency", change["new"])

    @_guarded
    def _on_idle_timeout(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self._set(self._fn(), "idle_timeout", change["new"])

    @_guarded
    def _reset(self, _button: object = None) -> None:
        """Put every setting back to what it was when the controls were created."""
        initial = self._initial

        def restore() -> None:
            self.lab.account_concurrency = initial["account_concurrency"]
            for name, keys in initial["functions"].items():
                if name in self.lab.functions:
                    self.lab.functions[name].update(**keys)

        def done(_: object) -> str:
            self._show_function()
            return "settings reset"

        self.background.submit(restore, report=done)

    # -- Panel: notice functions deployed after the controls were made --------------------
    def feed(self, events: Sequence[Event]) -> None:
        pass

    def draw(self, now: float | None) -> None:
        names = list(self.lab.functions)
        if list(self.function.options) != names:
            for name, fn in self.lab.functions.items():
                self._initial["functions"].setdefault(
                    name,
                    {
                        "reserved_concurrency": fn.reserved_concurrency,
                        "provisioned_concurrency": fn.provisioned_concurrency,
                        "idle_timeout": fn.idle_timeout,
                    },
                )
            self.function.options = names

    def __repr__(self) -> str:
        return f"<ControlsWidget functions={list(self.lab.functions)}>"
