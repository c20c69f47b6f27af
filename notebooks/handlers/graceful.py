"""Lesson 04: cleans up when the environment shuts down.

Lambda stops an environment with SIGTERM and, a moment later, SIGKILL. A function that
catches SIGTERM can use that moment to flush buffers or close connections.
"""

import signal
import sys

buffered = []


def on_sigterm(signum, frame):
    print(f"cleanup: flushing {len(buffered)} buffered record(s)", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, on_sigterm)


def handler(event, context):
    buffered.append(event)
    return {"buffered": len(buffered)}
