"""Reading query-string and form values that are not bound to a form.

Every id or word a page takes from the URL goes through here, so that a bad value (a NUL byte,
a Unicode digit `int()` refuses, a number too large for the database) is ignored or refused
with a message, never a server error.
"""

import re

_ASCII_ID = re.compile(r"[0-9]{1,18}")  # below 2**63: fits every database's bigint


def positive_int(value) -> int | None:
    """An id written in ASCII digits, or None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 10**18 else None
    if not isinstance(value, str) or not _ASCII_ID.fullmatch(value):
        return None
    number = int(value)
    return number or None


def clean_text(value, max_length: int = 200) -> str:
    """A search word: trimmed, without control characters (PostgreSQL refuses NUL)."""
    if not isinstance(value, str):
        return ""
    text = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return text.strip()[:max_length]


def choice(value, allowed, default: str) -> str:
    """One of the allowed words, else the default."""
    return value if isinstance(value, str) and value in allowed else default
