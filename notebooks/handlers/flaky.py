"""Lesson 05: fails the first few attempts at each event, then succeeds.

Lambda retries a failed asynchronous event with the *same* request id, so the handler can
recognise a retry through ``context.aws_request_id``. (Here the count is kept in memory,
which works because every attempt lands in the same environment; real code would use a
table.)
"""

attempts = {}


def handler(event, context):
    seen = attempts.get(context.aws_request_id, 0) + 1
    attempts[context.aws_request_id] = seen
    print(f"attempt {seen} at event {context.aws_request_id[:8]}", flush=True)
    if seen <= int(event.get("fail_times", 0)):
        raise RuntimeError(f"attempt {seen} failed on purpose")
    return {"succeeded_on_attempt": seen}
