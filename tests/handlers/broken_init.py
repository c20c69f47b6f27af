print("importing broken_init", flush=True)
raise RuntimeError("cannot connect to the database")


def handler(event, context):
    return "never"
