"""Big-data commands for layers, images and containers: list, get, size, digest, set.

One implementation per operation; the kind only picks the store methods.
"""

from __future__ import annotations

from collections.abc import Callable

from .context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..store import Store

Lister = Callable[["Store", str], list[str]]
Getter = Callable[["Store", str, str], bytes]


def _list(ctx: Context, keys: list[str]) -> int:
    if ctx.json:
        ctx.console.json(keys or None)
    else:
        ctx.console.out("".join(f"{key}\n" for key in keys))
    return 0


def _get(ctx: Context, getter: Getter) -> int:
    from .streams import open_output

    with open_output(ctx, str(ctx.flag("file") or "")) as out:
        out.write(getter(ctx.store, ctx.args[0], ctx.args[1]))
    return 0


def _line(ctx: Context, value: object) -> int:
    ctx.console.out(f"{value}\n")
    return 0


def _read(ctx: Context) -> bytes:
    """An image's or container's item: held whole (the store digests it), so capped."""
    from ..records.limits import MAX_BIG_DATA
    from .streams import read_input

    return read_input(ctx, str(ctx.flag("file") or ""), MAX_BIG_DATA, "big data item")


# -- layers ------------------------------------------------------------------------------
def list_layer_data(ctx: Context) -> int:
    return _list(ctx, ctx.store.list_layer_big_data(ctx.args[0]))


def get_layer_data(ctx: Context) -> int:
    return _get(ctx, lambda s, ref, key: s.layer_big_data(ref, key))


def set_layer_data(ctx: Context) -> int:
    from .streams import open_input

    with open_input(ctx, str(ctx.flag("file") or "")) as stream:  # streamed to the item's file
        ctx.store.set_layer_big_data(ctx.args[0], ctx.args[1], stream)
    return 0


# -- images ------------------------------------------------------------------------------
def list_image_data(ctx: Context) -> int:
    return _list(ctx, ctx.store.list_image_big_data(ctx.args[0]))


def get_image_data(ctx: Context) -> int:
    # the image first, then its item by ID: the message names the ID, as upstream's does
    return _get(ctx, lambda s, ref, key: s.image_big_data(s.image(ref).id, key))


def get_image_data_size(ctx: Context) -> int:
    return _line(ctx, ctx.store.image_big_data_size(ctx.args[0], ctx.args[1]))


def get_image_data_digest(ctx: Context) -> int:
    return _line(ctx, ctx.store.image_big_data_digest(ctx.args[0], ctx.args[1]))


def set_image_data(ctx: Context) -> int:
    ctx.store.set_image_big_data(ctx.args[0], ctx.args[1], _read(ctx))
    return 0


# -- containers --------------------------------------------------------------------------
def list_container_data(ctx: Context) -> int:
    return _list(ctx, ctx.store.list_container_big_data(ctx.args[0]))


def get_container_data(ctx: Context) -> int:
    return _get(ctx, lambda s, ref, key: s.container_big_data(ref, key))


def get_container_data_size(ctx: Context) -> int:
    return _line(ctx, ctx.store.container_big_data_size(ctx.args[0], ctx.args[1]))


def get_container_data_digest(ctx: Context) -> int:
    return _line(ctx, ctx.store.container_big_data_digest(ctx.args[0], ctx.args[1]))


def set_container_data(ctx: Context) -> int:
    ctx.store.set_container_big_data(ctx.args[0], ctx.args[1], _read(ctx))
    return 0
