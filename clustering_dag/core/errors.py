"""The one exception type the project raises for bad input, so callers can tell it from bugs, and
the most a user's file may hold before it is refused as bad input."""

# The most a user's file may hold unless its registry entry says otherwise (`max_bytes:`); an IDX
# file's data is held to it too, its header checked before anything is read.
MAX_FILE_BYTES = 8 << 30


class DataError(ValueError):
    """Bad or missing input data. The message names the offending thing and how to fix it."""
