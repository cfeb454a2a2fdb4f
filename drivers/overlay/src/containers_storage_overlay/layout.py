"""Upstream's overlay home layout (on-disk.md §13.1-13.2): layer directories, the ``l/``
short-name links, ``lower`` chains, and the recovery of lost links."""

from __future__ import annotations

import base64
import errno
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from containers_storage.errors import DriverError

log = logging.getLogger(__name__)

LINK_DIR = "l"
LOWER_FILE = "lower"
MAX_DEPTH = 500
ID_LENGTH = 26
#: names in the home that are not layers
RESERVED = frozenset({LINK_DIR, "staging", "backingFsBlockDev", ".has-mount-program"})


def generate_link_id() -> str:
    """26 characters of RFC 4648 base32 from random bytes, as upstream's generateID."""
    return base64.b32encode(secrets.token_bytes(ID_LENGTH)).decode()[:ID_LENGTH]


def diff_name(n: int) -> str:
    return "diff" if n == 0 else f"diff{n}"


def resolve_diff(diff_path: str) -> str:
    """A layer's ``diff`` that is an absolute symlink (additional layer store) is followed;
    a relative one is refused like upstream."""
    try:
        target = os.readlink(diff_path)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return diff_path
        raise
    if not os.path.isabs(target):
        raise DriverError(message=f'linkpath must be absolute (got: "{target}")')
    return target


@dataclass(frozen=True, slots=True)
class LayerDir:
    path: str
    #: found in an additional (read-only) image store
    additional: bool


class Layout:
    """Paths and files of one overlay home plus its read-only additional image stores.

    In split mode (on-disk.md §9.2) a layer of the home keeps only its metadata (``link``,
    ``lower``, ``empty``) in ``<home>/<id>``; its ``diff``, ``work`` and ``merged`` live in
    ``<data_home>/<id>`` (under the graph root) and its ``l/`` link is absolute."""

    def __init__(self, home: str, name: str, image_stores: Sequence[str] = (), data_home: str = "") -> None:
        self.home = home
        #: directory name under each additional store root (the requested driver name)
        self.name = name
        self.image_stores = list(image_stores)
        #: split mode: where the home's layers keep diff/work/merged ("" = the home itself)
        self.data_home = data_home

    @property
    def link_dir(self) -> str:
        return os.path.join(self.home, LINK_DIR)

    def locate(self, id: str) -> LayerDir:
        """The layer directory: the primary home, else the first additional store holding
        it, else the (missing) primary path."""
        primary = os.path.join(self.home, id)
        if os.path.exists(primary):
            return LayerDir(primary, False)
        for store in self.image_stores:
            candidate = os.path.join(store, self.name, id)
            if os.path.exists(candidate):
                return LayerDir(candidate, True)
        return LayerDir(primary, False)

    def dir(self, id: str) -> str:
        return self.locate(id).path

    def data_dir_of(self, where: LayerDir, id: str) -> str:
        """Where the located layer keeps ``diff``, ``work`` and ``merged``: apart from
        its metadata only for layers of a split home; a layer of an additional store
        holds everything in its one directory."""
        if self.data_home and not where.additional:
            return os.path.join(self.data_home, id)
        return where.path

    def data_dir(self, id: str) -> str:
        return self.data_dir_of(self.locate(id), id)

    def diff_path(self, id: str) -> str:
        return resolve_diff(os.path.join(self.data_dir(id), "diff"))

    # -- link and lower files ---------------------------------------------------------
    def read_link(self, layer_dir: str) -> str:
        with open(os.path.join(layer_dir, "link"), encoding="utf-8") as f:
            return f.read().strip()

    def read_lowers(self, layer_dir: str) -> list[str]:
        """Entries of the ``lower`` file (``l/<LINK>``), nearest parent first; [] if none."""
        try:
            with open(os.path.join(layer_dir, LOWER_FILE), encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        return [e for e in text.split(":") if e]

    def link_target(self, id: str) -> str:
        """``l/<LINK>``'s target: ``../<id>/diff``, in split mode the absolute data path."""
        if self.data_home:
            return os.path.join(self.data_home, id, "diff")
        return os.path.join("..", id, "diff")

    def _id_of_target(self, target: str) -> str | None:
        """The layer a ``l/`` link target names, None when it has neither form
        :meth:`link_target` writes (relative links stay valid in a split home that was
        written unsplit)."""
        parts = target.split("/")
        if len(parts) == 3 and parts[0] == ".." and parts[2] == "diff" and parts[1]:
            return parts[1]
        if self.data_home and os.path.dirname(os.path.dirname(target)) == self.data_home:
            name = os.path.basename(os.path.dirname(target))
            if os.path.basename(target) == "diff" and name not in ("", ".", ".."):
                return name
        return None

    def new_link(self, id: str) -> str:
        """Create a fresh ``l/<LINK>`` → :meth:`link_target` and return LINK."""
        while True:
            lid = generate_link_id()
            try:
                os.symlink(self.link_target(id), os.path.join(self.link_dir, lid))
                return lid
            except FileExistsError:
                continue

    def lower_chain_for_child(self, parent: str) -> str:
        """The ``lower`` content of a new child of ``parent``."""
        parent_dir = self.dir(parent)
        os.lstat(parent_dir)
        try:
            link = self.read_link(parent_dir)
        except FileNotFoundError:
            log.warning("can't read parent link %s; recreating the missing links", parent_dir)
            self.recreate_symlinks()
            link = self.read_link(parent_dir)
        lowers = [f"{LINK_DIR}/{link}", *self.read_lowers(parent_dir)]
        return ":".join(lowers)

    # -- resolving lowers ---------------------------------------------------------------
    def resolve_lower(self, entry: str) -> str:
        """``l/<LINK>`` → an existing path (in the home or an additional store); lost links
        are recovered first. The path keeps the short symlink form (short mount data)."""
        primary = os.path.join(self.home, entry)
        if os.path.exists(primary):
            return primary
        for store in self.image_stores:
            candidate = os.path.join(store, self.name, entry)
            if os.path.exists(candidate):
                return candidate
        log.warning("can't stat lower layer %s; recreating the missing symlinks", primary)
        self.recreate_symlinks()
        if not os.path.exists(primary):
            raise FileNotFoundError(errno.ENOENT, f"can't stat lower layer {primary!r}", primary)
        return primary

    def extra_diffs(self, layer_dir: str) -> list[str]:
        """``diff1``, ``diff2``, ... of a layer (ID-map generations), in stacking order."""
        out = []
        n = 1
        while os.path.exists(os.path.join(layer_dir, diff_name(n))):
            out.append(os.path.join(layer_dir, diff_name(n)))
            n += 1
        return out

    def mount_lowers(self, layer_dir: str, data_dir: str) -> list[str]:
        """The lower stack of a mount (on-disk.md §13.4), topmost first; the layer's own
        ``diff`` is not included. ``data_dir`` holds the layer's ``diff1``... ."""
        entries = self.read_lowers(layer_dir)
        if len(entries) > MAX_DEPTH:
            raise DriverError(message="max depth exceeded")
        lowers = self.extra_diffs(data_dir)
        for entry in entries:
            path = self.resolve_lower(entry)
            lowers.append(path)
            # the lower's own extra generations sit below its diff: <link>/../diffN
            n = 1
            while os.path.exists(os.path.join(path, "..", diff_name(n))):
                lowers.append(os.path.join(path, "..", diff_name(n)))
                n += 1
        return lowers

    def lower_layer_dirs(self, layer_dir: str) -> list[str]:
        """Resolved ``diff`` directories of every lower, nearest first (for native diff)."""
        out = []
        for entry in self.read_lowers(layer_dir):
            link = self.resolve_lower(entry)
            target = os.readlink(link) if os.path.islink(link) else link
            path = os.path.normpath(os.path.join(os.path.dirname(link), target))
            out.append(resolve_diff(path))
        return out

    def is_direct_parent(self, id: str, parent: str | None) -> bool:
        """Whether ``parent`` is the layer holding this layer's first lower (driver-api §5)."""
        try:
            lowers = self.read_lowers(self.dir(id))
        except OSError:
            return False
        if not parent:
            return not lowers
        if not lowers:
            return False
        link = self.resolve_lower(lowers[0])
        target = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
        return os.path.dirname(target) == os.path.normpath(self.data_dir(parent))

    # -- enumeration and recovery -------------------------------------------------------
    def list_layers(self) -> list[str]:
        out = []
        with os.scandir(self.home) as it:
            for entry in it:
                name = entry.name
                if name in RESERVED or name.startswith("compat") or "-check" in name:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    out.append(name)
        return out

    def recreate_symlinks(self) -> None:
        """Rebuild ``l/`` from the ``link`` files and ``link`` files from ``l/`` (upstream's
        recovery after a crash lost either)."""
        os.makedirs(self.link_dir, 0o755, exist_ok=True)
        errors: list[str] = []
        for _ in range(10):
            progress = False
            errors = []
            for name in self.list_layers():
                try:
                    link = self.read_link(os.path.join(self.home, name))
                except OSError as e:
                    errors.append(f"reading name of symlink for {name!r}: {e.strerror}")
                    continue
                link_path = os.path.join(self.link_dir, link)
                if not os.path.lexists(link_path):
                    os.symlink(self.link_target(name), link_path)
                    progress = True
            for link in os.listdir(self.link_dir):
                link_path = os.path.join(self.link_dir, link)
                try:
                    target = os.readlink(link_path)
                except OSError as e:
                    errors.append(f"{link_path}: {e.strerror}")
                    continue
                owner = self._id_of_target(target)
                if owner is None:
                    errors.append(f"link target of {link!r} looks weird: {target!r}")
                    os.unlink(link_path)
                    progress = True
                    continue
                link_file = os.path.join(self.home, owner, "link")
                try:
                    with open(link_file, encoding="utf-8") as f:
                        current = f.read()
                except OSError:
                    current = None
                if current != link and os.path.isdir(os.path.join(self.home, owner)):
                    with open(link_file, "w", encoding="utf-8") as f:
                        f.write(link)
                    progress = True
            if not progress:
                break
        if errors:
            raise DriverError(message="recreating the missing symlinks: " + "; ".join(errors))
