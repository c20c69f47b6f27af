"""Lesson 01: a module whose import is deliberately slow, like one that loads a big library.

INIT_SECONDS (an environment variable of the function) says how long the import takes.
INIT_ID is drawn once per import, so it names the execution environment that ran it.
"""

import os
import time
import uuid

print("init: importing init_demo", flush=True)
time.sleep(float(os.environ.get("INIT_SECONDS", "0")))
INIT_ID = uuid.uuid4().hex[:8]
calls = 0


def handler(event, context):
    global calls
    calls += 1
    time.sleep(float(event.get("sleep", 0)))
    return {"init_id": INIT_ID, "pid": os.getpid(), "calls": calls}
