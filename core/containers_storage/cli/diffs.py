"""Layer contents: ``changes``, ``diffsize``, ``diff``, ``applydiff`` (cli.md §5.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .context import Context
from .gofmt import go_quote

if TYPE_CHECKING:
    from ..archive.types import Compression

_KIND_NAMES = {0: "Modify", 1: "Add", 2: "Delete"}
_CHUNK = 1 << 20


def _layer_and_from(ctx: Context) -> tuple[str, str]:
    return ctx.args[0], ctx.args[1] if len(ctx.args) > 1 else ""


def changes(ctx: Context) -> int:
    to, from_ = _layer_and_from(ctx)
    found = ctx.store.changes(from_, to)
    if ctx.json:
        items = [{"Path": c.path, "Kind": int(c.kind)} for c in found]
        ctx.console.json(items or None)
    else:
        ctx.console.out("".join(f"{_KIND_NAMES.get(int(c.kind), '?')} {go_quote(c.path)}\n" for c in found))
    return 0


def diffsize(ctx: Context) -> int:
    to, from_ = _layer_and_from(ctx)
    ctx.console.out(f"{ctx.store.diff_size(from_, to)}\n")
    return 0


def _compression(ctx: Context) -> Compression | None:
    """The strongest of ``-x > -b > -c > -u`` given, else None (the layer's own)."""
    from ..archive.types import Compression

    for flag, value in (
        ("xz", Compression.XZ),
        ("bzip2", Compression.BZIP2),
        ("gzip", Compression.GZIP),
        ("uncompressed", Compression.NONE),
    ):
        if ctx.flag(flag):
            return value
    return None


def diff(ctx: Context) -> int:
    from ..store import DiffOptions
    from .progress import Progress, ProgressWriter, on_terminal
    from .streams import open_output

    to, from_ = _layer_and_from(ctx)
    path = str(ctx.flag("file") or "")
    with open_output(ctx, path) as out:
        stream = ctx.store.diff(from_, to, DiffOptions(compression=_compression(ctx)))
        try:
            sink = out
            if on_terminal(ctx.console.err_stream) and (path or not on_terminal(out)):
                sink = ProgressWriter(out, Progress(ctx.console.err_stream, "Writing diff"))  # type: ignore[assignment]
            try:
                while chunk := stream.read(_CHUNK):
                    sink.write(chunk)
            finally:
                if isinstance(sink, ProgressWriter):
                    sink.progress.finish()
        finally:
            stream.close()
    return 0


def applydiff(ctx: Context) -> int:
    from .streams import open_input

    with open_input(ctx, str(ctx.flag("file") or ""), "Applying") as stream:
        ctx.store.apply_diff(ctx.args[0], stream)
    return 0
