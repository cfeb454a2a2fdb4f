"""``copy``: files into, out of and between layers, like ``cp -a`` (cli.md §5.5).

Ownership travels as upstream's does: host IDs of the source are mapped into the source
layer's namespace, replaced by ``--chown`` if given, then mapped out through the
destination layer's maps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..idtools import IDMaps
from .context import Context
from .errtext import CommandError, error_text
from .gofmt import go_quote


@dataclass
class _Location:
    arg: str
    path: str
    uid_map: IDMaps = ()
    gid_map: IDMaps = ()


def _parse_chown(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    user, _, group = text.partition(":")
    ids = []
    for value, what in ((user, "UID"), (group or user, "GID")):
        try:
            ids.append(int(value, 10))
        except ValueError:
            raise CommandError(
                f"error {go_quote(value)} as a numeric {what}: strconv.Atoi: parsing {go_quote(value)}: "
                "invalid syntax"
            ) from None
    return ids[0], ids[1]


class _Mounts:
    """Layers mounted for the copy, unmounted at the end whatever happened."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.mounted: dict[str, str] = {}

    def locate(self, arg: str) -> _Location:
        if ":" not in arg:
            return _Location(arg, arg)
        ref, _, inner = arg.partition(":")
        try:
            layer = self.ctx.store.layer(ref)
        except Exception as exc:
            raise CommandError(f"error finding layer {go_quote(ref)}: {error_text(exc)}") from None
        if layer.id not in self.mounted:
            try:
                self.mounted[layer.id] = self.ctx.store.mount(layer.id)
            except Exception as exc:
                raise CommandError(f"error mounting layer {go_quote(layer.id)}: {error_text(exc)}") from None
        root = self.mounted[layer.id]
        return _Location(arg, os.path.join(root, inner.lstrip("/")), layer.uid_map, layer.gid_map)

    def release(self) -> None:
        for layer_id in self.mounted:
            try:
                self.ctx.store.unmount(layer_id)
            except Exception as exc:
                self.ctx.console.err(f"error unmounting layer {go_quote(layer_id)}: {error_text(exc)}\n")


def _known(value: int | None) -> int:
    from ..idtools import OVERFLOW_ID

    return OVERFLOW_ID if value is None else value


def _owner(st: os.stat_result, src: _Location, dst: _Location,
           chown: tuple[int, int] | None) -> tuple[int, int]:
    from ..idtools import to_container, to_host

    if chown is not None:
        uid, gid = chown
    else:
        uid = _known(to_container(st.st_uid, src.uid_map))
        gid = _known(to_container(st.st_gid, src.gid_map))
    return _known(to_host(uid, dst.uid_map)), _known(to_host(gid, dst.gid_map))


def _copy_one(src: _Location, dst: _Location, chown: tuple[int, int] | None) -> None:
    import shutil

    from ..drivers.copy import copy_tree

    st = os.lstat(src.path)
    identity = chown is None and not (src.uid_map or src.gid_map or dst.uid_map or dst.gid_map)
    if os.path.isdir(src.path) and not os.path.islink(src.path):
        os.makedirs(dst.path, exist_ok=True)
        copy_tree(src.path, dst.path)
        from ..idtools import root_pair

        os.lchown(dst.path, *(chown if chown is not None else root_pair(dst.uid_map, dst.gid_map)))
        if identity:
            return
        for here, dirs, files in os.walk(src.path):
            rel = os.path.relpath(here, src.path)
            for name in dirs + files:
                s_path = os.path.join(here, name)
                d_path = os.path.normpath(os.path.join(dst.path, rel, name))
                os.lchown(d_path, *_owner(os.lstat(s_path), src, dst, chown))
        return
    target = dst.path
    if dst.arg.endswith("/") or os.path.isdir(target):
        target = os.path.join(target, os.path.basename(src.path))
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    shutil.copy2(src.path, target, follow_symlinks=False)
    os.lchown(target, *_owner(st, src, dst, chown))


def copy(ctx: Context) -> int:
    chown = _parse_chown(str(ctx.flag("chown") or ""))
    mounts = _Mounts(ctx)
    try:
        dst = mounts.locate(ctx.args[-1])
        for arg in ctx.args[:-1]:
            src = mounts.locate(arg)
            try:
                _copy_one(src, dst, chown)
            except OSError as exc:
                raise CommandError(
                    f"error copying {go_quote(src.arg)} to {go_quote(dst.arg)}: {error_text(exc)}"
                ) from None
    finally:
        mounts.release()
    return 0
