"""Writing an OCI image layout: blobs under ``blobs/<algorithm>/``, the image's entry in
``index.json`` (an existing layout keeps its other images; an entry with the same
reference name is replaced), ``oci-layout``; and an OCI archive, a tar of such a layout.

Every file appears whole or not at all (temporary file, rename), so an interrupted
export never leaves a blob whose content does not match its name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..archive import tarwriter
from ..records.files import write_atomic
from . import digests, manifests
from . import mediatypes as mt
from .errors import InvalidImageSource

#: what containers/image writes, byte for byte
OCI_LAYOUT_FILE = b'{"imageLayoutVersion": "1.0.0"}'


class LayoutWriter:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), 0o755, exist_ok=True)

    def path(self, digest: str) -> str:
        algorithm, hexpart = digests.split(digest)
        return os.path.join(self.root, "blobs", algorithm, hexpart)

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def put_bytes(self, data: bytes) -> str:
        digest = digests.of(data)
        if not self.has(digest):
            write_atomic(self.path(digest), data, mode=0o644)
        return digest

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int, bool]:
        """Store a blob whose digest is known only once it is written; also says
        whether the blob is new (the layout did not have it)."""
        directory = os.path.join(self.root, "blobs", "sha256")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-blob-", dir=directory)
        sha = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                f.flush()
                os.fdatasync(f.fileno())
            os.chmod(tmp, 0o644)
            digest = "sha256:" + sha.hexdigest()
            new = not self.has(digest)
            os.rename(tmp, self.path(digest))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return digest, size, new

    def add_to_index(self, entry: dict[str, Any]) -> None:
        """Put the image into ``index.json``, replacing an entry of the same name (or,
        without a name, the same unnamed image), and write ``oci-layout``."""
        path = os.path.join(self.root, "index.json")
        existing: list[dict[str, Any]] = []
        if os.path.exists(path):
            with open(path, "rb") as f:
                existing = manifests.parse_index(f.read(), path)
        name = entry.get("annotations", {}).get(mt.REF_NAME_ANNOTATION, "")

        def replaced(old: dict[str, Any]) -> bool:
            old_name = (old.get("annotations") or {}).get(mt.REF_NAME_ANNOTATION, "")
            return old_name == name if name else (not old_name and old["digest"] == entry["digest"])

        kept = [e for e in existing if not replaced(e)]
        write_atomic(path, manifests.encode(manifests.oci_index([*kept, entry])), mode=0o644)
        layout = os.path.join(self.root, "oci-layout")
        if not os.path.exists(layout):
            write_atomic(layout, OCI_LAYOUT_FILE, mode=0o644)


def check_layout_dir(root: str) -> None:
    """An existing destination must be an OCI layout (or an empty directory)."""
    if not os.path.exists(root):
        return
    if not os.path.isdir(root):
        raise InvalidImageSource(root, message="destination exists and is not a directory")
    if not os.listdir(root):
        return
    try:
        with open(os.path.join(root, "oci-layout"), "rb") as f:
            version = json.loads(f.read()).get("imageLayoutVersion")
    except (OSError, ValueError, AttributeError):
        version = None
    if version != mt.OCI_LAYOUT_VERSION:
        raise InvalidImageSource(root, message="destination is a directory that is not an OCI layout")


def _tree(root: str) -> Iterator[tuple[str, str]]:
    """(archive name, path) of the layout's directories and files, in lexical order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            yield rel.replace(os.sep, "/") + "/", dirpath
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            yield os.path.relpath(full, root).replace(os.sep, "/"), full


def tar_layout(root: str, out: IO[bytes]) -> None:
    """Write the layout at ``root`` as an (uncompressed) OCI archive: entries in lexical
    order, owned by root, time zero, so that the same image gives the same archive."""
    for name, path in sorted(_tree(root)):
        if name.endswith("/"):
            out.write(tarwriter.encode(tarwriter.Header(name.encode(), ord("5"), mode=0o755)))
            continue
        size = os.path.getsize(path)
        out.write(tarwriter.encode(tarwriter.Header(name.encode(), ord("0"), mode=0o644, size=size)))
        with open(path, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
        out.write(tarwriter.padding(size))
    out.write(tarwriter.END_OF_ARCHIVE)
