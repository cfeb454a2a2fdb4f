"""Image commands: ``images``, ``image``, ``images-by-digest``, ``create-image`` (cli.md §5.2)."""

from __future__ import annotations

from .context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..records.model import Image


def _listing(ctx: Context, found: list[Image], *, null_if_empty: bool) -> None:
    if ctx.json:
        items = [image.to_json(extra=False) for image in found]
        ctx.console.json(items if items or not null_if_empty else None)
        return
    out: list[str] = []
    quiet = bool(ctx.flag("quiet"))
    for image in found:
        out.append(image.id + "\n")
        if quiet:
            continue
        out.extend(f"\tname: {name}\n" for name in image.names)
        out.extend(f"\tdigest: {digest}\n" for digest in image.digests)
        out.extend(f"\tdata: {key}\n" for key in image.big_data_names)
    ctx.console.out("".join(out))


def images(ctx: Context) -> int:
    _listing(ctx, ctx.store.images(), null_if_empty=True)
    return 0


def images_by_digest(ctx: Context) -> int:
    _listing(ctx, ctx.store.images_by_digest(ctx.args[0]), null_if_empty=False)
    return 0


def image(ctx: Context) -> int:
    from .errtext import not_found_errors

    found: list[Image] = []
    missing = False
    for ref in ctx.args:
        try:
            found.append(ctx.store.image(ref))
        except not_found_errors():
            missing = True
    if ctx.json:
        ctx.console.json([item.to_json(extra=False) for item in found])
        return 1 if missing else 0
    for item in found:
        out = [f"ID: {item.id}\n"]
        out.extend(f"Name: {name}\n" for name in item.names)
        out.append(f"Top Layer: {item.top_layer}\n")
        out.extend(f"Top Layer: {mapped}\n" for mapped in item.mapped_top_layers)
        out.extend(f"Digest: {digest}\n" for digest in item.digests)
        out.extend(f"Data: {key}\n" for key in item.big_data_names)
        try:
            out.append(f"Size: {ctx.store.image_size(item.id)}\n")
        except Exception as exc:
            from .errtext import error_text

            out.append(f"Size unknown: {error_text(exc)}\n")
        if item.read_only:
            out.append("Read Only: true\n")
        ctx.console.out("".join(out))
    return 1 if missing else 0


def metadata_flag(ctx: Context) -> str:
    """``--metadata-file`` wins over ``--metadata``."""
    from ..records.limits import MAX_METADATA, read_limited
    from .streams import open_file

    path = str(ctx.flag("metadata_file") or "")
    if path:
        with open_file(path, "rb") as f:
            return read_limited(f, MAX_METADATA, "metadata").decode("utf-8", "surrogateescape")
    return str(ctx.flag("metadata") or "")


def create_image(ctx: Context) -> int:
    from ..store import ImageOptions

    metadata = metadata_flag(ctx)
    new = ctx.store.create_image(
        id=str(ctx.flag("id") or ""),
        names=list(ctx.flag("names") or []),
        layer=ctx.args[0] if ctx.args else "",
        metadata=metadata,
        options=ImageOptions(digest=str(ctx.flag("digest") or ""), metadata=metadata),
    )
    if ctx.json:
        ctx.console.json(new.to_json(extra=False))
    else:
        ctx.console.out(new.id + "\n" + "".join(f"\t{name}\n" for name in new.names))
    return 0
