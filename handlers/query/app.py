"""query handler (see issue 3)."""


def handler(event, context):
    raise NotImplementedError
