"""Live updates: how new events become frames while a notebook cell is still running.

The lab's server thread appends events; the widgets must redraw from them even while the
kernel's main thread is stuck inside ``fn.invoke(...)`` or ``time.sleep``. The mechanism::

    server thread ── EventLog.append ──> subscriber: wake.set()        (O(1), never blocks)
                                                │
    "lambda-lab-frames" thread  <───────────────┘  waits, coalesces, then once per frame:
        events = log.since(cursor)      every new event, in order
        panel.feed(events)              pure reducers (TimelineModel, ...)
        panel.draw(now)                 one figure.batch_update() / one value per widget
                                                │ comm messages (traitlet syncs)
    ipykernel IOPub thread  <───────────────────┘  sends them to the browser

Why a thread of our own and not the others:

* not the **kernel's main thread** (``IOLoop.add_callback`` onto the kernel loop): it is the
  thread that blocks in ``fn.invoke()``, so the chart would freeze exactly when it matters;
* not the **lab's IOLoop thread**: it runs the simulated cloud, and a 50 ms frame there would
  delay Runtime API answers and skew every measured duration;
* a dedicated daemon thread can block and compute freely. It is the *only* thread that touches
  the figures and display widgets after they are created, which is what makes up for
  ipywidgets and Plotly objects not being thread-safe (button callbacks run on the main
  thread; they only start work on executor threads and write to their own ``Output``).

Sending from a non-main thread works because ipykernel's comm ``publish_msg`` goes through
the IOPub socket, which since ipykernel 4.3 is an ``IOPubThread`` that accepts messages from
any thread (ipykernel PR #149 removed the main-thread check; verified on ipykernel 7.4: comm
messages from a worker thread reach the client while the main thread sleeps). Messages from
the browser (button clicks) still wait for the main thread: a click during a blocking cell is
handled when the cell ends. That is ipykernel's design (ipywidgets issue #1349), not ours.

Frames are coalesced: the subscriber only sets a flag, and the thread draws at most ``fps``
(10) frames a second, slower if a frame costs more than a quarter of the interval, so the
kernel keeps at least three quarters of a CPU. While a bar is still open it also ticks without
new events: at the frame rate while something runs (a running invocation's bar grows), twice a
second while environments only sit idle, not at all when nothing is open. A panel's
exception is shown in that panel's ``Output`` and drawing goes on.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Union

import ipywidgets

from ..events import Event, EventLog

if TYPE_CHECKING:
    from ..lab import Lab

__all__ = ["Background", "Panel", "Renderer", "Source", "clock_for", "error_output", "log_of"]

Source = Union["Lab", EventLog]
Clock = Callable[[], "float | None"]


def log_of(source: Any) -> EventLog:
    """The :class:`EventLog` behind a ``Lab`` (``lab.events``) or the log itself."""
    if isinstance(source, EventLog):
        return source
    events = getattr(source, "events", None)
    if isinstance(events, EventLog):
        return events
    raise TypeError(f"Expected a Lab or an EventLog, got {source!r}")


def clock_for(source: Any, live: bool | None = None) -> Clock:
    """``now`` for drawing open bars: the lab's clock if live, else the last event's time.

    A ``Lab`` is live; a bare ``EventLog`` (e.g. ``EventLog.from_jsonl``) is a recording
    unless ``live=True`` says otherwise.
    """
    if live is None:
        live = not isinstance(source, EventLog)
    log = log_of(source)
    return log.now if live else (lambda: None)


def error_output() -> ipywidgets.Output:
    return ipywidgets.Output(layout={"max_height": "12em", "overflow": "auto"})


class Panel:
    """A part of the dashboard the :class:`Renderer` draws: ``feed`` events, ``draw`` a frame.

    ``feed`` and ``draw`` run on the renderer's thread; ``draw`` makes one batched update.
    """

    errors: ipywidgets.Output
    renderer: Renderer | None = None
    _last_error: str | None = None

    def feed(self, events: Sequence[Event]) -> None:
        raise NotImplementedError

    def draw(self, now: float | None) -> None:
        raise NotImplementedError

    @property
    def tick(self) -> float | None:
        """Seconds until time alone changes the picture enough to redraw it.

        ``0``: as soon as the frame rate allows (a bar is running); ``None``: not until new
        events arrive (nothing is open).
        """
        return None

    def show_error(self, exc: BaseException) -> None:
        """Show ``exc`` with its traceback in this panel's ``Output``, once per distinct error."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if text != self._last_error:
            self._last_error = text
            self.errors.append_stderr(text)

    def refresh(self) -> None:
        """Draw a frame now, on the calling thread (tests, or a log that no longer grows)."""
        if self.renderer is not None:
            self.renderer.frame()

    def close(self) -> None:
        """Stop drawing and any background work, then close this widget and its children.

        Safe to call twice (ipywidgets also calls it when the widget is garbage-collected).
        """
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if self.renderer is not None:
            self.renderer.stop()
        background = getattr(self, "background", None)
        if isinstance(background, Background):
            background.shutdown()
        _close_tree(getattr(self, "children", ()))
        super().close()  # type: ignore[misc]

    def _start(self, source: Source, live: bool | None, start: bool) -> None:
        if start:
            self.renderer = Renderer(log_of(source), [self], clock=clock_for(source, live))
            self.renderer.start()


def _close_tree(children: Sequence[Any]) -> None:
    for child in children:
        _close_tree(getattr(child, "children", ()))
        child.close()


class Renderer:
    """The frame thread: wakes on new events, coalesces them, draws every panel.

    ``frame()`` may also be called directly from any thread; a lock keeps frames whole.
    ``last_cpu_ms`` is the kernel CPU time the last frame took (``time.thread_time``).
    """

    def __init__(
        self,
        log: EventLog,
        panels: Sequence[Panel],
        *,
        clock: Clock | None = None,
        fps: float = 10.0,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps={fps} must be > 0")
        self.log = log
        self.panels = list(panels)
        self.clock: Clock = clock or log.now
        self.min_interval = 1.0 / fps
        self.frames = 0
        self.last_cpu_ms = 0.0
        self._cursor = 0
        self._tick: float | None = None
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        for panel in self.panels:
            panel.renderer = self

    def start(self) -> Renderer:
        if self._thread is None:
            self._unsubscribe = self.log.subscribe(self._on_event)
            self._thread = threading.Thread(target=self._run, name="lambda-lab-frames", daemon=True)
            self._wake.set()  # draw what is already in the log
            self._thread.start()
        return self

    def _on_event(self, event: Event) -> None:
        # Runs on the server thread: only flag that there is news.
        self._wake.set()

    def request(self) -> None:
        """Ask for a frame soon (e.g. after a filter changed)."""
        self._wake.set()

    @property
    def interval(self) -> float:
        return max(self.min_interval, 4 * self.last_cpu_ms / 1000)

    def _run(self) -> None:
        last = float("-inf")
        while not self._stopped.is_set():
            tick = self._tick
            self._wake.wait(None if tick is None else max(tick, self.interval))
            if self._stopped.is_set():
                return
            delay = last + self.interval - time.monotonic()
            if delay > 0 and self._stopped.wait(delay):
                return
            self._wake.clear()
            last = time.monotonic()
            self.frame()

    def frame(self) -> None:
        with self._lock:
            cpu = time.thread_time()
            events = self.log.since(self._cursor)
            self._cursor += len(events)
            try:
                now = self.clock()
            except Exception:  # a closed lab: draw up to the last event
                now = None
            for panel in self.panels:
                try:
                    panel.feed(events)
                    panel.draw(now)
                except Exception as exc:  # never lose it, never stop drawing the others
                    panel.show_error(exc)
            ticks = [t for t in (panel.tick for panel in self.panels) if t is not None]
            self._tick = min(ticks, default=None)
            self.frames += 1
            self.last_cpu_ms = (time.thread_time() - cpu) * 1000

    def stop(self) -> None:
        """Stop the thread and unsubscribe; the widgets keep their last frame."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Renderer {state} {len(self.panels)} panels, {self.frames} frames>"


class Background:
    """Runs widget callbacks' work off the kernel's main thread, reporting into an ``Output``.

    A button callback runs on the kernel's main thread; if it called ``fn.invoke()`` there,
    the kernel would be busy until the invocation ended. It submits the work here instead and
    returns at once; the result or the exception (with traceback) is written to ``output``.
    """

    def __init__(self, output: ipywidgets.Output, *, workers: int = 4, name: str = "widget"):
        self.output = output
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"lambda-lab-{name}")

    def submit(
        self, fn: Callable[..., Any], *args: Any, report: Callable[[Any], str | None] | None = None
    ) -> Future[Any]:
        def run() -> Any:
            try:
                result = fn(*args)
            except Exception as exc:
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                self.output.append_stderr(text)
                raise
            if report is not None:
                message = report(result)
                if message:
                    self.output.append_stdout(message + "\n")
            return result

        return self._pool.submit(run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
