"""The lifecycle as sentences: one readable line per event.

The story lambda-visualizer tells and CloudWatch Logs half-tells: an invocation is received, an
environment is created (with its pid), its runtime polls ``GET /runtime/invocation/next`` and
receives the event, the handler prints, the result is posted back, throttles, shutdowns; plus
the platform's own ``START``, ``END`` and ``REPORT`` lines ("Monitoring and troubleshooting
Lambda functions", Lambda Developer Guide). ``lambda-lab demo`` and ``serve`` print these lines;
the console widget shows them live::

    >>> print("\\n".join(console_lines(lab.events, function="hello")[-2:]))
        0.413s hello-1    runtime reported success for 8f3c... (202)
        0.414s hello-1    END RequestId: 8f3c...
"""

from __future__ import annotations

from collections.abc import Iterable

from .events import Event

__all__ = ["format_event", "format_line", "console_lines"]


def _ms(value: object) -> str:
    return "?" if value is None else f"{float(value):.1f} ms"  # type: ignore[arg-type]


def _runtime_call(e: Event) -> str:
    method, path, status = e.get("method"), str(e.get("path") or ""), e.get("status")
    if path.endswith("/invocation/next"):
        return f"runtime received the event (GET next {status})"
    if path.endswith("/response"):
        return f"runtime reported success for {e.request_id} ({status})"
    if path.endswith("/init/error"):
        return f"runtime reported an init error ({status})"
    if path.endswith("/error"):
        return f"runtime reported an error for {e.request_id} ({status})"
    return f"runtime called {method} {path} ({status})"


def format_event(e: Event) -> str | None:
    """One console line (without the time) for ``e``; ``None`` for nothing worth a line."""
    k = e.kind
    if k == "invoke.received":
        return (
            f"invoke received {e.request_id} ({e.get('invocation_type', 'RequestResponse')},"
            f" {e.get('payload_bytes', '?')} B)"
        )
    if k == "invoke.throttled":
        return f"THROTTLED {e.request_id}: 429 {e.get('reason', '')} {e.get('message') or ''}"
    if k == "env.init.start":
        if e.get("provisioned"):
            why = "provisioned concurrency"
        else:
            why = f"cold start for {e.request_id}"
        return (
            f"environment created on {e.get('host') or '?'} ({why}),"
            f" platform init {float(e.get('init_delay') or 0) * 1000:.0f} ms"
        )
    if k == "env.init.end":
        return (
            f"runtime ready, pid {e.get('pid')}, polling GET next: init {_ms(e.get('init_ms'))}"
            f" (platform {_ms(e.get('platform_ms'))} + runtime {_ms(e.get('runtime_ms'))})"
        )
    if k == "env.init.error":
        return (
            f"INIT FAILED {e.get('error_type')}: {e.get('error_message')}"
            f" after {_ms(e.get('init_ms'))}"
        )
    if k == "invoke.start":
        return f"event {e.request_id} sent to the runtime ({'cold' if e.get('cold') else 'warm'})"
    if k == "invoke.end":
        outcome = e.get("outcome")
        what = outcome if outcome == "success" else f"{str(outcome).upper()} {e.get('error_type')}"
        if e.get("init_error") or e.env is None:  # the handler never ran
            return f"{what} for {e.request_id}: its environment failed to initialise"
        memory = e.get("max_memory_mb")
        return (
            f"{what} for {e.request_id} in {_ms(e.get('duration_ms'))}"
            f" (billed {e.get('billed_ms')} ms"
            + ("" if memory is None else f", max memory {memory} MB")
            + ")"
        )
    if k == "env.shutdown.start":
        return f"shutting down ({e.get('reason')})"
    if k == "env.shutdown.end":
        how = f"signal {e.get('signal')}" if e.get("signal") else f"exit code {e.get('exit_code')}"
        return f"environment gone ({how})"
    if k == "runtime.call":
        return _runtime_call(e)
    if k == "log":
        line = str(e.get("line", "")).rstrip("\n")
        if e.get("stream") == "platform":
            return line
        return f"{'!' if e.get('stream') == 'stderr' else '|'} {line}"
    return None


def format_line(e: Event) -> str | None:
    """The console line for ``e``, time and environment first; ``None`` if not worth one."""
    text = format_event(e)
    return None if text is None else _line(e, text)


def _line(e: Event, text: str) -> str:
    return f"{e.time:9.3f}s {e.env or e.function or '':<10} {text}"


def console_lines(
    events: Iterable[Event], function: str | None = None, limit: int | None = None
) -> list[str]:
    """The console as plain text lines, optionally for one function, the newest ``limit``."""
    lines = []
    for e in events:
        if function is not None and e.function != function:
            continue
        text = format_event(e)
        if text is not None:
            lines.append(_line(e, text))
    return lines if limit is None else lines[-limit:]
