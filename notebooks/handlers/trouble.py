"""Lesson 02: three ways an invocation goes wrong. Deploy each as its own handler."""

import os
import time


def fail(event, context):
    """A handler error: the exception is reported, the environment lives on."""
    raise ValueError(f"cannot process order {event.get('order', '?')}")


def slow(event, context):
    """Runs longer than the function's timeout allows when asked to."""
    time.sleep(float(event.get("sleep", 5)))
    return "finished"


def crash(event, context):
    """The process dies under the runtime, as with a segfault or an out-of-memory kill."""
    print("about to exit abruptly", flush=True)
    os._exit(1)
