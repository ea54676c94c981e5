"""Every path made from a name that a user (or anyone who reaches the UI) chooses: a batch file in
the inbox, a partition key in the cache, a dataset of the registry. One rule, one place:

- the name is one plain component: ASCII letters, digits, ``.``, ``_`` and ``-``, starting with a
  letter or digit, at most :data:`MAX_NAME` characters (so no separator of either kind, no ``.`` or
  ``..``, no absolute path, no control character, no look-alike in another Unicode form);
- the path it makes lies inside its folder once links are resolved.

Anything else is refused with one :class:`DataError` naming the name, the folder and the rule.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from clustering_dag.core.errors import DataError

MAX_NAME = 200
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RULE = (f"one plain name: ASCII letters, digits, '.', '_' and '-', starting with a letter or digit, at "
        f"most {MAX_NAME} characters (no separators, no '.' or '..', no control characters)")


def shown(name: object, limit: int = 60) -> str:
    """``name`` as an error message quotes it: escaped (a NUL or newline stays visible), cut short."""
    text = repr(name)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(str(name)):,} characters)"


def is_plain_name(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME and PLAIN_NAME.fullmatch(name) is not None


def check_name(name: object, what: str, folder: object) -> str:
    """``name`` itself when it is one plain component (:data:`RULE`); else one clear error."""
    if not is_plain_name(name):
        raise DataError(f"{what} {shown(name)} is refused in {folder}: a name there must be {RULE}. "
                        f"Rename it.")
    return name


def path_in(folder: Path, name: object, what: str, suffix: str = "") -> Path:
    """``folder / (name + suffix)``, where ``name`` is a plain name and the path, its links
    resolved, lies inside ``folder`` (itself resolved): the one way a name becomes a local path."""
    path = Path(folder) / (check_name(name, what, folder) + suffix)
    confined(folder, path, what)
    return path


def confined(folder: Path, path: Path, what: str) -> Path:
    """``path`` when it lies inside ``folder`` once every link on the way is resolved; else one
    clear error (a link in the folder to a file elsewhere is refused, not followed)."""
    root, real = os.path.realpath(folder), os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise DataError(f"{what} {path} leads outside {folder} (to {real}): a link out of the folder "
                        f"is not followed. Put the file itself in {folder}.")
    return path
