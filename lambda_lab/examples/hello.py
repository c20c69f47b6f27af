"""A handler that greets, optionally sleeps, and shows what survives between invocations."""

import os
import time

# Init code: runs once per execution environment, before its first event.
STARTED = time.time()
served = 0


def handler(event, context):
    global served
    served += 1
    time.sleep(float(event.get("sleep", 0)))
    name = event.get("name", "world")
    print(f"hello {name} from pid {os.getpid()} (invocation #{served} here)")
    return {"message": f"Hello, {name}!", "pid": os.getpid(), "served": served}
