"""``copy``: files into, out of and between layers, like ``cp -a`` (cli.md §5.5).

As upstream, the copy goes through a tar stream: the source is archived (owners mapped
from the host into the source layer's namespace), then extracted by the archive code's
confined extractor (owners mapped out through the destination layer's maps), so nothing
is ever written outside a destination layer, whatever symlinks it holds. Paths inside a
layer are resolved with the layer's mount point acting as ``/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..idtools import IDMappings
from ..structs import dataclass
from .context import Context
from .errtext import CommandError, error_text
from .gofmt import go_quote

TYPE_CHECKING = False  # typing costs ms at start-up; type checkers treat this as True

if TYPE_CHECKING:
    from ..archive.export import TarBuilder


@dataclass
class _Location:
    arg: str
    #: the directory that acts as ``/`` (a layer's mount point, or the host's ``/``)
    root: str
    #: path below ``root``
    inner: str
    maps: IDMappings = IDMappings()


def _parse_chown(text: str) -> tuple[int, int] | None:
    """``UID[:GID]``, each an unsigned 32-bit number as upstream's parser takes."""
    from ..config import parse_uint32
    from .flags import value_error

    if not text:
        return None
    user, sep, group = text.partition(":")
    ids = []
    for value, what in ((user, "UID"), (group if sep else user, "GID")):
        try:
            ids.append(parse_uint32(value))
            if ids[-1] == _UNCHANGED:
                # upstream passes it on: chown(2) reads it as -1 and changes nothing
                raise ValueError(f"{_UNCHANGED} is -1 to chown(2), which leaves the owner as it is")
        except ValueError as exc:
            reason = f"error {go_quote(value)} as a numeric {what}: {exc}"
            raise CommandError(value_error("chown", text, reason)) from None
    return ids[0], ids[1]


#: ``(uid_t)-1``
_UNCHANGED = (1 << 32) - 1


class _Mounts:
    """Layers mounted for the copy, unmounted at the end whatever happened."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.mounted: dict[str, str] = {}

    def locate(self, arg: str) -> _Location:
        if ":" not in arg:
            return _Location(arg, "/", os.path.abspath(arg))
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
        return _Location(arg, self.mounted[layer.id], inner, IDMappings(layer.uid_map, layer.gid_map))

    def release(self) -> None:
        for layer_id in self.mounted:
            try:
                self.ctx.store.unmount(layer_id)
            except Exception as exc:
                self.ctx.console.err(f"error unmounting layer {go_quote(layer_id)}: {error_text(exc)}\n")


def _parts(inner: str) -> tuple[bytes, ...]:
    return tuple(p for p in os.fsencode(inner).split(b"/") if p not in (b"", b"."))


def _is_dir(tree: object, parts: tuple[bytes, ...]) -> bool:
    from ..archive.rooted import RootedDir

    assert isinstance(tree, RootedDir)
    try:
        tree.resolve(parts)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _chown_below(dir_path: str, owner: tuple[int, int]) -> None:
    """``--chown``: every extracted entry below ``dir_path`` (not following symlinks)."""
    for here, dirs, files in os.walk(dir_path):
        for name in dirs + files:
            os.lchown(os.path.join(here, name), *owner)


def _single(builder: TarBuilder, parent_fd: int, base: bytes, stored: bytes) -> Iterator[bytes]:
    """A one-entry archive of ``base`` (in ``parent_fd``) stored under the name ``stored``."""
    from ..archive.tarwriter import END_OF_ARCHIVE

    yield from builder.entry(parent_fd, base, stored)
    yield END_OF_ARCHIVE


def _copy_one(src: _Location, dst: _Location, chown: tuple[int, int] | None) -> None:
    from ..archive.apply import ApplyOptions, apply_tar
    from ..archive.export import TarBuilder, as_stream, tar_tree
    from ..archive.rooted import RootedDir
    from ..drivers.api import WhiteoutFormat
    from ..idtools import to_host

    src_tree, dst_tree = RootedDir(src.root), RootedDir(dst.root)
    try:
        builder = TarBuilder(id_mappings=src.maps)
        src_parts, dst_parts = _parts(src.inner), _parts(dst.inner)
        name: bytes | None = None
        chunks: Iterator[bytes]
        if _is_dir(src_tree, src_parts):
            chunks = tar_tree(f"/proc/self/fd/{src_tree.fd(src_tree.resolve(src_parts))}", builder)
            target = dst_parts
        else:
            if not src_parts:
                raise IsADirectoryError(src.inner)
            if dst.arg.endswith("/") or _is_dir(dst_tree, dst_parts):
                target, name = dst_parts, src_parts[-1]
            else:
                target, name = dst_parts[:-1], dst_parts[-1]
            chunks = _single(builder, src_tree.fd(src_tree.resolve(src_parts[:-1])), src_parts[-1], name)
        target_fd = dst_tree.fd(dst_tree.resolve(target, create=True))
        target_dir = f"/proc/self/fd/{target_fd}"
        options = ApplyOptions(whiteout_format=WhiteoutFormat.AUFS, id_mappings=dst.maps)
        apply_tar(as_stream(chunks), target_dir, options)
        owner = None
        if chown is not None:
            uid, gid = to_host(chown[0], dst.maps.uids), to_host(chown[1], dst.maps.gids)
            owner = (chown[0] if uid is None else uid, chown[1] if gid is None else gid)
        if name is None:
            os.chown(target_dir, *(owner or dst.maps.root_pair()))
            if owner is not None:
                _chown_below(target_dir, owner)
        elif owner is not None:
            os.chown(name, *owner, dir_fd=target_fd, follow_symlinks=False)
    finally:
        src_tree.close()
        dst_tree.close()


def copy(ctx: Context) -> int:
    chown = _parse_chown(str(ctx.flag("chown") or ""))
    mounts = _Mounts(ctx)
    try:
        dst = mounts.locate(ctx.args[-1])
        for arg in ctx.args[:-1]:
            src = mounts.locate(arg)
            try:
                _copy_one(src, dst, chown)
            except Exception as exc:
                raise CommandError(
                    f"error copying {go_quote(src.arg)} to {go_quote(dst.arg)}: {error_text(exc)}"
                ) from None
    finally:
        mounts.release()
    return 0
