import os
import time


def fail(event, context):
    raise ValueError(f"bad input: {event.get('x')}")


def crash(event, context):
    print("about to crash", flush=True)
    os._exit(3)


def slow(event, context):
    time.sleep(event.get("sleep", 10))
    return "done"


def unserializable(event, context):
    return {1, 2, 3}


def big(event, context):
    return "x" * (7 * 1024 * 1024)
