"""The lifecycle as sentences: one readable line per event.

The same story lambda-visualizer tells, and that CloudWatch Logs half-tells: an invocation is
received, an environment is created, its runtime polls for an event, the event is sent, the
handler prints, the result is reported, the environment is reaped. ``lambda-lab demo`` prints
these lines and the console widget shows them.
"""

from __future__ import annotations

from .events import Event

__all__ = ["describe", "format_line"]


def _short(request_id: str | None) -> str:
    return (request_id or "-")[:8]


def describe(event: Event) -> str | None:
    """A sentence for ``event``, or None for events not worth a line."""
    f, rid = event.get, _short(event.request_id)
    kind = event.kind
    if kind == "invoke.received":
        return f"invoke {rid} received ({f('invocation_type', 'RequestResponse')})"
    if kind == "invoke.throttled":
        return f"invoke {rid} throttled: 429 {f('reason')}"
    if kind == "env.init.start":
        why = "provisioned" if f("provisioned") else f"cold start for {rid}"
        return f"environment {event.env} created on {f('host')} ({why})"
    if kind == "env.init.end":
        return (f"environment {event.env} ready: pid {f('pid')}, init {f('init_ms'):.1f} ms "
                f"(platform {f('platform_ms'):.1f} ms + runtime {f('runtime_ms'):.1f} ms)")
    if kind == "env.init.error":
        return f"environment {event.env} failed init: {f('error_type')}: {f('error_message')}"
    if kind == "invoke.start":
        return f"event {rid} sent to {event.env} ({'cold' if f('cold') else 'warm'})"
    if kind == "invoke.end" and f("init_error"):
        return f"invoke {rid} failed: {event.env} could not initialise ({f('error_type')})"
    if kind == "invoke.end":
        error = f" {f('error_type')}" if f("error_type") else ""
        return f"invoke {rid} {f('outcome')}{error} in {f('duration_ms'):.1f} ms on {event.env}"
    if kind == "env.shutdown.start":
        return f"environment {event.env} shutting down ({f('reason')})"
    if kind == "env.shutdown.end":
        how = f("signal") or f"exit {f('exit_code')}"
        return f"environment {event.env} gone ({how})"
    if kind == "runtime.call":
        path = str(f("path", "")).replace("/2018-06-01/runtime", "")
        if path == "/invocation/next" and f("status") == 200:
            return None  # the event sent line says it
        return f"runtime in {event.env}: {f('method')} {path} -> {f('status')}"
    if kind == "log":
        return f"[{event.env}] {f('line')}"
    return None


def format_line(event: Event) -> str | None:
    """``describe`` with the event's time in front, as the console prints it."""
    text = describe(event)
    return None if text is None else f"{event.time:8.3f}s  {text}"
