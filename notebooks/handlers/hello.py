"""The lessons' first function: greets, can take its time, and counts its calls.

Everything at module level is *init code*: it runs once, when an execution environment
imports this file, and then stays in memory for every later event that environment serves.
"""

import os
import time

calls = 0  # lives as long as the environment (the process) does


def handler(event, context):
    global calls
    calls += 1
    time.sleep(float(event.get("sleep", 0)))
    name = event.get("name", "world")
    print(f"hello {name} (call #{calls} in pid {os.getpid()})")
    return {"message": f"Hello, {name}!", "pid": os.getpid(), "calls": calls}
