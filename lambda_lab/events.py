"""The event log: everything that happens in the lab, in order.

Real Lambda tells you what happened through CloudWatch Logs (``START``, ``END``, ``REPORT``
lines) and metrics. lambda_lab keeps one append-only :class:`EventLog` instead, so that the
chart, the console, the metrics and the tests all read the same record and nothing is drawn
from hidden state::

    >>> log = EventLog()
    >>> log.append("invoke.received", function="hello", request_id="r1")
    Event(invoke.received t=0.000 function=hello env=None request_id=r1)
    >>> [e.kind for e in log]
    ['invoke.received']

Kinds (design.md §6): ``invoke.received``, ``invoke.throttled`` (``reason``),
``env.init.start``, ``env.init.end``, ``env.init.error``, ``invoke.start``, ``invoke.end``
(``outcome``: success | error | timeout | crash; ``duration_ms``), ``env.shutdown.start``
(``reason``: idle | timeout | crash | close, and our ``init_error`` for an environment discarded
after a failed Init), ``env.shutdown.end`` and ``log`` (``stream``, ``line``). One kind is our
addition, for the Runtime API lesson: ``runtime.call`` (``method``, ``path``, ``status``)
records each call a runtime makes to its endpoint.

The log is thread-safe: the server thread appends, any thread reads or subscribes.
Subscribers are called on the appending thread and must not block; a widget that needs
another thread hands the event over itself (see ``widgets/``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["KINDS", "Event", "EventLog"]

KINDS = (
    "invoke.received",
    "invoke.throttled",
    "env.init.start",
    "env.init.end",
    "env.init.error",
    "invoke.start",
    "invoke.end",
    "env.shutdown.start",
    "env.shutdown.end",
    "log",
    "runtime.call",
)

Subscriber = Callable[["Event"], None]


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened. ``fields`` holds the kind-specific values."""

    time: float
    kind: str
    function: str | None = None
    env: str | None = None
    request_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """A kind-specific field, e.g. ``event.get("outcome")``."""
        return self.fields.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON form: the five common keys, then the kind-specific fields."""
        row = {
            "time": round(self.time, 6),
            "kind": self.kind,
            "function": self.function,
            "env": self.env,
            "request_id": self.request_id,
        }
        row.update(self.fields)
        return row

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Event:
        common = {"time", "kind", "function", "env", "request_id"}
        return cls(
            time=float(row["time"]),
            kind=str(row["kind"]),
            function=row.get("function"),
            env=row.get("env"),
            request_id=row.get("request_id"),
            fields={k: v for k, v in row.items() if k not in common},
        )

    def __repr__(self) -> str:
        extra = "".join(f" {k}={v!r}" for k, v in self.fields.items() if k != "line")
        return (
            f"Event({self.kind} t={self.time:.3f} function={self.function} env={self.env} "
            f"request_id={self.request_id}{extra})"
        )


class EventLog:
    """An append-only, thread-safe list of :class:`Event` with subscribers.

    ``time`` is seconds since the log was created (the lab's start). A replayed log
    (:meth:`from_jsonl`) keeps the recorded times.
    """

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = list(events)
        self._subscribers: list[Subscriber] = []
        self._t0 = time.monotonic()

    # -- writing -------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the lab started: the clock every event uses."""
        return time.monotonic() - self._t0

    def append(
        self,
        kind: str,
        *,
        function: str | None = None,
        env: str | None = None,
        request_id: str | None = None,
        **fields: Any,
    ) -> Event:
        if kind not in KINDS:
            raise ValueError(f"Unknown event kind: {kind!r}; expected one of {KINDS}")
        with self._lock:
            event = Event(
                time=self.now(),
                kind=kind,
                function=function,
                env=env,
                request_id=request_id,
                fields=fields,
            )
            self._events.append(event)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken subscriber must not break the lab
                import traceback

                traceback.print_exc()
        return event

    # -- reading -------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every new event; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def since(self, index: int) -> list[Event]:
        """Events from position ``index`` on: lets a reader poll for what is new."""
        with self._lock:
            return self._events[index:]

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> Event:
        with self._lock:
            return self._events[index]

    def kinds(self, request_id: str | None = None, *, include_logs: bool = False) -> list[str]:
        """The sequence of kinds, optionally for one request: what the tests assert on."""
        return [
            e.kind
            for e in self
            if (request_id is None or e.request_id == request_id)
            and (include_logs or e.kind not in ("log", "runtime.call"))
        ]

    def filter(self, kind: str | None = None, **match: Any) -> list[Event]:
        """Events of ``kind`` whose common keys or fields equal ``match``."""
        out = []
        for e in self:
            if kind is not None and e.kind != kind:
                continue
            row = e.to_dict()
            if all(row.get(k) == v for k, v in match.items()):
                out.append(e)
        return out

    # -- export and replay ---------------------------------------------------------------
    def write_jsonl(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            with open(target, "w", encoding="utf-8") as f:
                self.write_jsonl(f)
            return
        for e in self:
            target.write(json.dumps(e.to_dict()) + "\n")

    @classmethod
    def from_jsonl(cls, path: str | Path) -> EventLog:
        """Load a saved log (e.g. from ``lambda-lab serve --events FILE``) for replay."""
        with open(path, encoding="utf-8") as f:
            return cls(Event.from_dict(json.loads(line)) for line in f if line.strip())

    def to_dataframe(self) -> Any:
        """The log as a pandas DataFrame, one row per event, kind-specific fields as columns."""
        import pandas as pd

        events = self.snapshot()
        extra = sorted({k for e in events for k in e.fields}, key=lambda k: (k != "outcome", k))
        columns = ["time", "kind", "function", "env", "request_id", *extra]
        return pd.DataFrame([e.to_dict() for e in events]).reindex(columns=columns)

    def __repr__(self) -> str:
        return f"<EventLog {len(self)} events>"
