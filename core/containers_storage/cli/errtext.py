"""Error texts as the Go tool prints them."""

from __future__ import annotations

import os


def errno_text(errno: int) -> str:
    """Go's text for an errno: the C library's message with a lower-case first letter."""
    text = os.strerror(errno)
    return text[:1].lower() + text[1:]


def os_error_text(exc: OSError, op: str = "") -> str:
    """``<op> <path>: <reason>`` like Go's ``*fs.PathError``."""
    reason = errno_text(exc.errno) if exc.errno else str(exc.strerror or exc)
    if exc.filename is None:
        return reason
    path = os.fsdecode(exc.filename)
    return f"{op} {path}: {reason}" if op else f"{path}: {reason}"


def error_text(exc: BaseException) -> str:
    from ..errors import StorageError

    if isinstance(exc, OSError) and not isinstance(exc, StorageError) and exc.errno:
        return os_error_text(exc)
    return str(exc)


class CommandError(Exception):
    """A failure the command reports with exactly this text (exit 1)."""


def not_found_errors() -> tuple[type[BaseException], ...]:
    """What a failed lookup may raise: upstream's listing commands skip any lookup error."""
    from ..errors import StorageError

    return (LookupError, StorageError)
