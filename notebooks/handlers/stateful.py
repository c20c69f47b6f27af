"""Lesson 02: module-level state that survives from one invocation to the next.

It survives only inside one execution environment: another environment of the same
function has its own copy, and a new environment starts empty.
"""

import os
import time

calls = 0
memory = {}


def handler(event, context):
    global calls
    calls += 1
    if "remember" in event:
        memory.update(event["remember"])
    time.sleep(float(event.get("sleep", 0)))
    recalled = memory.get(event["recall"]) if "recall" in event else None
    return {"pid": os.getpid(), "calls": calls, "recalled": recalled}
