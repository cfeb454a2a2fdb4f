"""Input and output files of the commands (``--file`` or standard input/output)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..typeshim import cast
from .context import Context
from .errtext import CommandError, os_error_text
from .progress import Progress, ProgressReader, on_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


def open_file(path: str, mode: str) -> IO[bytes]:
    """Open ``path`` in binary ``mode``; failures read like Go's ``open <path>: ...``."""
    try:
        return cast("IO[bytes]", open(path, mode))
    except OSError as exc:
        raise CommandError(os_error_text(exc, "open")) from None


@contextmanager
def open_input(ctx: Context, path: str, label: str = "") -> Iterator[IO[bytes]]:
    """``path`` or standard input, with a progress line when stderr is a terminal."""
    stream = open_file(path, "rb") if path else sys.stdin.buffer
    try:
        if label and on_terminal(ctx.console.err_stream):
            total = None
            try:
                st = os.fstat(stream.fileno())
                total = st.st_size if st.st_size > 0 else None
            except (OSError, ValueError, AttributeError):
                pass
            progress = Progress(ctx.console.err_stream, label, total)
            try:
                yield cast("IO[bytes]", ProgressReader(stream, progress))
            finally:
                progress.finish()
        else:
            yield stream
    finally:
        if path:
            stream.close()


def read_input(ctx: Context, path: str, limit: int, what: str) -> bytes:
    """All of the input, refused (InputTooLarge) once past ``limit`` bytes: an endless
    input such as /dev/zero must not grow memory."""
    from ..records.limits import read_limited

    with open_input(ctx, path) as stream:
        return read_limited(stream, limit, what)


@contextmanager
def open_output(ctx: Context, path: str) -> Iterator[IO[bytes]]:
    """``path`` (created or truncated now) or standard output."""
    if not path:
        yield ctx.console.out_stream
        ctx.console.out_stream.flush()
        return
    stream = open_file(path, "wb")
    try:
        yield stream
    finally:
        stream.close()
