"""The one exception type the project raises for bad input, so callers can tell it from bugs."""


class DataError(ValueError):
    """Bad or missing input data. The message names the offending thing and how to fix it."""
