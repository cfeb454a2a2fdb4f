"""``info``: the store at a glance, as ``podman info``'s ``store`` section (not in upstream's
tool): roots, driver and its status pairs, backing filesystem, record counts, disk use and
how much of it layers share, lock kind, installed drivers and plugins.

YAML by default (pyyaml is imported here only, when the command runs), ``--format json``
for scripts. ``--layers`` adds the layer tree with each layer's own and shared size.

A layer's *size* is its diff size: the uncompressed size recorded when its diff was
applied, else what the driver computes against its parent. A layer is *shared* when more
than one image or container builds on it (an image's top layer, its mapped copies and a
container's layer each count as one user of every layer below them).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .context import Context
from .flags import value_error

if TYPE_CHECKING:
    from ..records.model import Container, Image, Layer
    from ..store import Store

FORMATS = ("yaml", "json")
#: mounts below the graph root that only show other layers' files (not counted as usage)
_UNION_FS = ("overlay", "fuse.fuse-overlayfs", "fuse-overlayfs", "aufs")


def info(ctx: Context) -> int:
    fmt = str(ctx.flag("format") or "yaml")
    if fmt not in FORMATS:
        ctx.console.err(value_error("format", fmt, "want yaml or json") + "\n")
        return 1
    store = ctx.store
    layers = store.layers()
    images = store.images()
    containers = store.containers()
    sizes = {layer.id: _own_size(store, layer) for layer in layers}
    users = layer_users(layers, images, containers)
    report: dict[str, Any] = {
        "store": _store_section(ctx, store, layers, images, containers, sizes, users),
        "plugins": _plugins_section(ctx),
    }
    if ctx.flag("layers"):
        report["layers"] = layer_tree(layers, sizes, users)
    if fmt == "json":
        import json

        ctx.console.out(json.dumps(report, indent=2) + "\n")
    else:
        import yaml

        ctx.console.out(yaml.safe_dump(report, sort_keys=False, default_flow_style=False, allow_unicode=True))
    return 0


def _store_section(
    ctx: Context,
    store: Store,
    layers: list[Layer],
    images: list[Image],
    containers: list[Container],
    sizes: Mapping[str, int | None],
    users: Mapping[str, int],
) -> dict[str, Any]:
    from ..config import default_config_file

    status = store.status()
    fs = os.statvfs(store.graph_root)
    backing = dict(status).get("Backing Filesystem") or _backing_fs(store.graph_root)
    known = [size for size in sizes.values() if size is not None]
    shared = [size for lid, size in sizes.items() if size is not None and users.get(lid, 0) > 1]
    roots = [store.graph_root] + ([store.image_store] if store.image_store else [])
    section: dict[str, Any] = {
        "configFile": default_config_file(),
        "containerStore": {"number": len(containers)},
        "graphDriverName": store.graph_driver_name,
        "graphOptions": _options_map(store.graph_options),
        "graphRoot": store.graph_root,
        "graphRootAllocated": fs.f_blocks * fs.f_frsize,
        "graphRootUsed": (fs.f_blocks - fs.f_bfree) * fs.f_frsize,
        "graphStatus": {key: value for key, value in status},
        "backingFilesystem": backing,
        "imageStore": {"number": len(images)},
        "layerStore": {"number": len(layers)},
        "runRoot": store.run_root,
        "transientStore": store.transient_store,
        "lockKind": ctx.options.lock_kind,
        "diskUsage": {
            "store": sum(allocated_bytes(root) for root in roots),
            "layers": sum(known),
            "shared": sum(shared),
            "sharedLayers": len(shared),
        },
    }
    if store.image_store:
        section["imageStoreRoot"] = store.image_store
    return section


def _plugins_section(ctx: Context) -> dict[str, list[dict[str, str]]]:
    from .plugincmds import installed

    drivers: list[dict[str, str]] = []
    plugins: list[dict[str, str]] = []
    for row in installed(ctx):
        entry = {
            "name": row["name"],
            "distribution": row["distribution"],
            "version": row["version"],
        }
        if row["kind"] == "driver":
            drivers.append({**entry, "status": row["probe"]})
        else:
            plugin = {**entry, "kind": row["kind"]}
            if row["probe"]:
                plugin["error"] = row["probe"]
            plugins.append(plugin)
    return {"drivers": drivers, "plugins": plugins}


def _options_map(options: Iterable[str]) -> dict[str, str]:
    """``driver.key=value`` options as podman shows them (a map)."""
    out: dict[str, str] = {}
    for option in options:
        key, _, value = option.partition("=")
        out[key] = value
    return out


def _backing_fs(graph_root: str) -> str:
    from ..drivers.fsutil import backing_fs_name

    try:
        return backing_fs_name(os.path.join(graph_root, "x"))  # the graph root's own filesystem
    except OSError as exc:
        return f"<unknown: {exc.strerror}>"


def _own_size(store: Store, layer: Layer) -> int | None:
    if layer.size is not None:
        return layer.size
    try:
        return store.diff_size(layer.parent, layer.id)
    except Exception:  # an incomplete or damaged layer: reported with no size (check says why)
        return None


def layer_users(
    layers: Iterable[Layer], images: Iterable[Image], containers: Iterable[Container]
) -> dict[str, int]:
    """How many images and containers build on each layer (through its descendants too)."""
    parent = {layer.id: layer.parent for layer in layers}
    users = dict.fromkeys(parent, 0)
    tops: list[str] = []
    for image in images:
        tops.extend(top for top in (image.top_layer, *image.mapped_top_layers) if top)
    tops.extend(c.layer_id for c in containers if c.layer_id)
    for top in tops:
        seen: set[str] = set()
        lid = top
        while lid in parent and lid not in seen:  # a cycle in damaged records ends the walk
            seen.add(lid)
            users[lid] += 1
            lid = parent[lid]
    return users


def layer_tree(
    layers: Iterable[Layer], sizes: Mapping[str, int | None], users: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Every layer under its parent (layers whose parent is unknown are roots), with its own
    size, the part of it that is shared, and the size of its whole chain."""
    by_id = {layer.id: layer for layer in layers}
    children: dict[str, list[Layer]] = {}
    roots: list[Layer] = []
    for layer in by_id.values():
        if layer.parent in by_id and layer.parent != layer.id:
            children.setdefault(layer.parent, []).append(layer)
        else:
            roots.append(layer)

    def node(layer: Layer, below: int | None, path: frozenset[str]) -> dict[str, Any]:
        size = sizes.get(layer.id)
        chain = None if size is None or below is None else below + size
        shared = users.get(layer.id, 0) > 1
        out: dict[str, Any] = {
            "id": layer.id,
            "names": list(layer.names),
            "size": size,
            "sharedSize": (size if shared else 0) if size is not None else None,
            "chainSize": chain,
            "users": users.get(layer.id, 0),
        }
        kids = [k for k in children.get(layer.id, []) if k.id not in path]
        if kids:
            out["children"] = [node(k, chain, path | {k.id}) for k in _ordered(kids)]
        return out

    return [node(root, 0, frozenset({root.id})) for root in _ordered(roots)]


def _ordered(layers: list[Layer]) -> list[Layer]:
    return sorted(layers, key=lambda layer: (layer.created.rfc3339nano(), layer.id))


def allocated_bytes(root: str) -> int:
    """Disk blocks below ``root``, each inode once, skipping union mounts (their files are
    other layers', counted there)."""
    from ..drivers.fsutil import mountpoints_below
    from ..drivers.mounts import mountinfo

    try:
        union = {m.mount_point for m in mountinfo() if m.fstype in _UNION_FS}
    except OSError:
        union = set()
    skip = union & set(mountpoints_below(root))
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, onerror=_ignore):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for name in (*dirnames, *filenames):
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:  # removed while we walk: another process is working on the store
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total


def _ignore(exc: OSError) -> None:
    """A directory that vanished or cannot be read is not counted."""

