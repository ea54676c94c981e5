"""What binds a stored file's content to it: SHA-256, or HMAC-SHA256 under a secret (so a cache
shared between machines accepts only what its own writers stored)."""

import hashlib
import hmac


def content_digest(secret: str | None = None):
    """A new digest object (``update``, ``hexdigest``)."""
    return hmac.new(secret.encode(), digestmod="sha256") if secret else hashlib.sha256()


def file_sha256(path) -> str:
    """The SHA-256 of a file's content, read in chunks (``hashlib.file_digest``)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
