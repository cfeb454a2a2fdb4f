"""Layer commands: ``layers``, ``layer``, ``storage-layers``, ``create-layer``,
``import-layer``, ``create-storage-layer`` (cli.md §5.1)."""

from __future__ import annotations

from .context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..records.model import Container, Image, Layer
    from ..store import LayerOptions


def _json_or_null(items: list[dict[str, object]]) -> list[dict[str, object]] | None:
    """Go prints a nil slice as ``null``: upstream's listings build theirs by appending."""
    return items or None


def _users(ctx: Context) -> tuple[dict[str, list[Image]], dict[str, Container]]:
    """Images by top (and mapped top) layer, and the container of each container layer.

    As upstream: an image is listed once per matching entry, the last container wins.
    """
    by_layer: dict[str, list[Image]] = {}
    for image in ctx.store.images():
        for layer_id in (image.top_layer, *image.mapped_top_layers):
            by_layer.setdefault(layer_id, []).append(image)
    containers = {c.layer_id: c for c in ctx.store.containers()}
    return by_layer, containers


def layers(ctx: Context) -> int:
    all_layers = ctx.store.layers()
    if ctx.json:
        ctx.console.json(_json_or_null([layer.to_json(extra=False) for layer in all_layers]))
        return 0
    if ctx.flag("tree"):
        _print_tree(ctx, all_layers)
        return 0
    quick = bool(ctx.flag("quick"))
    images, containers = ({}, {}) if quick else _users(ctx)
    out: list[str] = []
    for layer in all_layers:
        out.append(layer.id + "\n")
        if quick:
            continue
        out.extend(f"\tname: {name}\n" for name in layer.names)
        for image in images.get(layer.id, ()):
            out.append(f"\timage: {image.id}\n")
            out.extend(f"\t\tname: {name}\n" for name in image.names)
        container = containers.get(layer.id)
        if container is not None:
            out.append(f"\tcontainer: {container.id}\n")
            out.extend(f"\t\tname: {name}\n" for name in container.names)
    ctx.console.out("".join(out))
    return 0


def _print_tree(ctx: Context, all_layers: list[Layer]) -> None:
    from .tree import Node, render

    images, containers = _users(ctx)
    nodes = []
    for layer in all_layers:
        notes = [f"name: {name}" for name in layer.names]
        if layer.mount_point:
            notes.append(f"mount: {layer.mount_point}")
        for image in images.get(layer.id, ()):
            notes.append(f"image: {image.id}")
            notes.extend(f"image name: {name}" for name in image.names)
        container = containers.get(layer.id)
        if container is not None:
            notes.append(f"container: {container.id}")
            notes.extend(f"container name: {name}" for name in container.names)
        nodes.append(Node(layer.parent or "(base)", layer.id, tuple(notes)))
    ctx.console.out("".join(line + "\n" for line in render(nodes)))


def layer(ctx: Context) -> int:
    from .errtext import not_found_errors

    found: list[Layer] = []
    missing = False
    for ref in ctx.args:
        try:
            found.append(ctx.store.layer(ref))
        except not_found_errors():
            missing = True
    if ctx.json:
        ctx.console.json([item.to_json(extra=False) for item in found])
    else:
        out: list[str] = []
        for item in found:
            out.append(f"ID: {item.id}\n")
            out.extend(f"UID mapping: (container={m.container_id}, host={m.host_id}, size={m.size})\n"
                       for m in item.uid_map)
            out.extend(f"GID mapping: (container={m.container_id}, host={m.host_id}, size={m.size})\n"
                       for m in item.gid_map)
            if item.parent:
                out.append(f"Parent: {item.parent}\n")
            out.extend(f"Name: {name}\n" for name in item.names)
            if item.read_only:
                out.append("Read Only: true\n")
        ctx.console.out("".join(out))
    return 1 if missing else 0


def storage_layers(ctx: Context) -> int:
    ids = ctx.store.driver.list_layers()
    if ctx.json:
        ctx.console.json(list(ids))
    else:
        ctx.console.out("".join(f"{i}\n" for i in ids))
    return 0


def _print_new_layer(ctx: Context, new: Layer) -> None:
    if ctx.json:
        ctx.console.json(new.to_json(extra=False))
    else:
        ctx.console.out(new.id + "\n" + "".join(f"\t{name}\n" for name in new.names))


def _layer_options(ctx: Context) -> LayerOptions:
    from ..store import LayerOptions
    from .idmapflags import id_mapping_options

    return LayerOptions(id_mapping=id_mapping_options(ctx))


def create_layer(ctx: Context) -> int:
    options = _layer_options(ctx)
    new = ctx.store.create_layer(
        id=str(ctx.flag("id") or ""),
        parent=ctx.args[0] if ctx.args else "",
        names=list(ctx.flag("names") or []),
        mount_label=str(ctx.flag("label") or ""),
        writeable=not ctx.flag("readonly"),
        options=options,
    )
    _print_new_layer(ctx, new)
    return 0


def import_layer(ctx: Context) -> int:
    from .streams import open_input

    options = _layer_options(ctx)
    with open_input(ctx, str(ctx.flag("file") or ""), "Importing") as diff:
        new, _ = ctx.store.put_layer(
            id=str(ctx.flag("id") or ""),
            parent=ctx.args[0] if ctx.args else "",
            names=list(ctx.flag("names") or []),
            mount_label=str(ctx.flag("label") or ""),
            writeable=not ctx.flag("readonly"),
            options=options,
            diff=diff,
        )
    _print_new_layer(ctx, new)
    return 0


def create_storage_layer(ctx: Context) -> int:
    """A layer only the driver knows (no record); the parent is passed as given."""
    import secrets

    from ..drivers.api import CreateOpts
    from ..idtools import IDMappings
    from ..records.ids import validate_id
    from .idmapflags import id_mapping_options

    maps = id_mapping_options(ctx)
    layer_id = str(ctx.flag("id") or "") or secrets.token_hex(32)
    opts = CreateOpts(mount_label=str(ctx.flag("label") or ""),
                      id_mappings=IDMappings(maps.uid_map, maps.gid_map))
    parent = ctx.args[0] if ctx.args else None
    driver = ctx.store.driver
    for lid in (layer_id, parent):
        if lid:  # the driver joins both into paths
            validate_id(lid, "layer", driver.layer_id_pattern)
    if ctx.flag("readonly"):
        driver.create(layer_id, parent or None, opts)
    else:
        driver.create_read_write(layer_id, parent or None, opts)
    if ctx.json:
        ctx.console.json(layer_id)
    else:
        ctx.console.out(layer_id + "\n")
    return 0
