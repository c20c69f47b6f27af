"""Returns what the runtime told the handler about this invocation: the context object."""


def handler(event, context):
    client_context = context.client_context
    return {
        "request_id": context.aws_request_id,
        "function_arn": context.invoked_function_arn,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "custom": getattr(client_context, "custom", None) if client_context else None,
    }
