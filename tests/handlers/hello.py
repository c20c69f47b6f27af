import os
import time

INIT_PID = os.getpid()
print("init: hello imported", flush=True)
COUNT = 0


def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    print(f"hello {event.get('name', 'world')}", flush=True)
    return {
        "message": f"Hello, {event.get('name', 'world')}!",
        "pid": os.getpid(),
        "count": COUNT,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
