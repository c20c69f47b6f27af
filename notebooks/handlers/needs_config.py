"""Lesson 01: init code that fails when a setting is missing, as real code often does."""

import os

DATABASE_URL = os.environ["DATABASE_URL"]  # KeyError at import time if it is not set
print(f"init: would connect to {DATABASE_URL}", flush=True)


def handler(event, context):
    return {"connected_to": DATABASE_URL}
