"""The differ: creates a layer's files from a blob's TOC in a directory the driver
provides, taking each file's content from wherever it is cheapest -- an identical file
of another layer (reflink, or a hard link when ``use_hard_links`` is set), the
``ostree_repos`` of ``pull_options``, identical chunks of other files, or the blob's own
byte ranges -- and verifying every chunk and file digest on the way.

Files are created through the confined extraction (``archive.apply.apply_entries``), so
names, links, owners, ID maps, xattrs and whiteouts are handled exactly as for a tar
stream and nothing is ever written outside the directory.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from ..archive import tarheader as th
from ..archive.apply import WHITEOUT_PREFIX, ApplyOptions, ContentPlacer, FileFinisher, apply_entries
from ..archive.paths import layer_parts
from ..archive.rooted import RootedDir
from ..drivers.copy import _Copier, copy_file_content
from ..errors import StorageError
from . import estargz, toc, zstdchunked
from .errors import ChecksumMismatch, InvalidTOC, PartialPullsDisabled
from .fetch import BlobCursor, decode
from .formats import (
    ESTARGZ_TOC_DIGEST_KEY,
    LAYER_DATA_BIG_DATA,
    MANIFEST_CHECKSUM_KEY,
    TOC_BIG_DATA,
    BlobKind,
)
from .layerindex import LayerIndex, Location, hard_link_fingerprint
from .plan import ChunkRef, Item, merge
from .sources import BlobSource, FileSource

_TARTYPES = {
    toc.REG: th.REG,
    toc.HARDLINK: th.LINK,
    toc.SYMLINK: th.SYMLINK,
    toc.CHAR: th.CHAR,
    toc.BLOCK: th.BLOCKDEV,
    toc.DIR: th.DIR,
    toc.FIFO: th.FIFO,
}
_IGNORED_XATTRS = frozenset({"security.selinux"})
_ZEROS = bytes(1 << 20)
#: threads verifying and copying local files (they wait on the disk, not the GIL)
_WORKERS = 2
#: files per batch of copies, and batches queued ahead of the extractor at most
_BATCH = 32
_AHEAD = 8


def _flag(options: dict[str, str], name: str) -> bool:
    return options.get(name, "").lower() == "true"


@dataclass(slots=True)
class PullStats:
    """Where the content came from (for reports and benchmarks)."""

    files: int = 0
    bytes_total: int = 0
    files_reflinked: int = 0
    files_hard_linked: int = 0
    files_from_ostree: int = 0
    chunks_local: int = 0
    bytes_local: int = 0
    bytes_holes: int = 0
    bytes_missing: int = 0
    ranges_fetched: int = 0


@dataclass(slots=True)
class DifferOutput:
    """Upstream's ``DriverWithDifferOutput``: what the store records for the layer."""

    target: str = ""
    size: int = 0
    uids: list[int] = field(default_factory=list)
    gids: list[int] = field(default_factory=list)
    uncompressed_digest: str = ""
    metadata: str = ""
    big_data: dict[str, bytes] = field(default_factory=dict)
    tar_split: bytes = b""
    toc_digest: str = ""
    stats: PullStats = field(default_factory=PullStats)


class LayerFiles(Protocol):
    """The store's other layers, for deduplication."""

    def tocs(self) -> Iterable[tuple[str, bytes]]:
        """(layer ID, TOC) of every layer that recorded one."""
        ...

    def root(self, layer: str) -> str | None:
        """A directory holding the layer's files under their TOC names, or None."""
        ...


class NoLayers:
    def tocs(self) -> Iterable[tuple[str, bytes]]:
        return ()

    def root(self, layer: str) -> str | None:
        return None


# -- sources of content, decided before anything is fetched ---------------------------
@dataclass(frozen=True, slots=True)
class _LocalFile:
    root: str
    name: str
    hard_link: bool


@dataclass(frozen=True, slots=True)
class _LocalChunk:
    root: str
    name: str
    offset: int


class ChunkedDiffer:
    """A partial pull of one blob (upstream ``chunkedDiffer``); get one with
    :func:`get_differ`, use it once through ``Store.apply_diff_with_differ``."""

    def __init__(
        self,
        source: BlobSource,
        blob_size: int,
        annotations: dict[str, str],
        pull_options: dict[str, str],
    ) -> None:
        self.source = source
        self.blob_size = blob_size
        self.pull_options = dict(pull_options)
        self.convert = False
        self.skip_validation = False
        if MANIFEST_CHECKSUM_KEY in annotations:
            self.kind = BlobKind.ZSTD_CHUNKED
            self.manifest = zstdchunked.read_manifest(source, blob_size, annotations)
        elif ESTARGZ_TOC_DIGEST_KEY in annotations:
            self.kind = BlobKind.ESTARGZ
            self.manifest = estargz.read_manifest(source, blob_size, annotations)
        else:
            if not _flag(self.pull_options, "convert_images"):
                raise PartialPullsDisabled(message="convert_images not configured")
            self.kind = BlobKind.ZSTD_CHUNKED
            self.convert = True

    def apply_diff(self, dest: str, options: ApplyOptions, layers: LayerFiles | None = None) -> DifferOutput:
        """Create the layer's files in ``dest`` (an empty directory), written as
        ``options`` say (the driver's whiteout format, the layer's ID maps)."""
        layers = layers or NoLayers()
        if not _flag(self.pull_options, "enable_partial_images"):
            raise PartialPullsDisabled(message="enable_partial_images not configured")
        source, diff_id, tmp_fd = self.source, "", -1
        try:
            if self.convert:
                tmp_fd, diff_id, source = self._convert(dest)
            manifest = self.manifest
            entries = toc.parse(manifest.toc)
            items = merge(entries, self.kind, manifest.toc_offset)
            out = DifferOutput(
                tar_split=manifest.tar_split,
                big_data={
                    TOC_BIG_DATA: manifest.toc,
                    LAYER_DATA_BIG_DATA: b'{"format":0}',
                },
                # a converted blob was hashed whole: its DiffID is known, its TOC is ours
                uncompressed_digest=diff_id,
                toc_digest="" if self.convert else manifest.toc_digest,
            )
            out.size = sum(item.entry.size for item in items)
            owners = [
                it.entry for it in items if not os.path.basename(it.entry.name.rstrip("/")).startswith(".wh.")
            ]
            out.uids = sorted({e.uid for e in owners})
            out.gids = sorted({e.gid for e in owners})
            wanted = {it.entry.digest for it in items if it.chunks}
            wanted.update(c.digest for it in items for c in it.chunks if c.digest)
            index = LayerIndex.build(layers.tocs(), wanted, _flag(self.pull_options, "use_hard_links"))
            run = _Run(self, source, items, options, index, layers, out.stats)
            run.apply(dest)
            return out
        finally:
            if tmp_fd >= 0:
                os.close(tmp_fd)

    def _convert(self, dest: str) -> tuple[int, str, BlobSource]:
        """A blob without a TOC, rewritten as zstd:chunked in an unnamed file in
        ``dest``; its digest is then the DiffID, and its files need no verifying."""
        from ..archive.compression import decompressed_chunks
        from ..archive.ingest import IterReader
        from . import writer

        parts = iter(self.source.get_blob_at([(0, self.blob_size)]))
        blob = next(parts)
        diff_hash = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for chunk in decompressed_chunks(blob)[1]:
                diff_hash.update(chunk)
                yield chunk

        fd = os.open(dest, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            with open(os.dup(fd), "wb") as out:
                annotations = writer.compress(IterReader(hashed()), out, level=1)  # type: ignore[arg-type]
            source = FileSource(f"/proc/self/fd/{fd}")
            self.manifest = zstdchunked.read_manifest(source, source.size, annotations)
        except BaseException:
            os.close(fd)
            raise
        self.skip_validation = True
        return fd, "sha256:" + diff_hash.hexdigest(), source


def get_differ(
    pull_options: dict[str, str], blob_size: int, annotations: dict[str, str], source: BlobSource
) -> ChunkedDiffer:
    """Upstream ``GetDiffer``: reads and verifies the blob's TOC (a few small ranges)."""
    return ChunkedDiffer(source, blob_size, annotations, pull_options)


# -- one application ------------------------------------------------------------------
class _Run:
    def __init__(
        self,
        differ: ChunkedDiffer,
        source: BlobSource,
        items: list[Item],
        options: ApplyOptions,
        index: LayerIndex,
        layers: LayerFiles,
        stats: PullStats,
    ) -> None:
        self.differ = differ
        self.kind = differ.kind
        self.source = source
        self.items = items
        self.options = options
        self.index = index
        self.layers = layers
        self.stats = stats
        self.verify = not differ.skip_validation
        self.hard_links = _flag(differ.pull_options, "use_hard_links")
        self.ostree = [r for r in differ.pull_options.get("ostree_repos", "").split(":") if r]
        #: layer -> its directory (resolved by the main thread: mounting is not threaded)
        self._layer_roots: dict[str, str | None] = {}
        #: each thread's confined directories, by root path (RootedDir is not thread-safe)
        self._tls = threading.local()
        self._trees: list[tuple[str, RootedDir]] = []
        self._trees_lock = threading.Lock()
        self.cursor: BlobCursor | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._finish: FileFinisher | None = None
        self._dest = ""
        self._batch: list[tuple[th.Entry, _LocalFile]] = []
        self._jobs: deque[Future[None]] = deque()
        self._pending_names: set[tuple[bytes, ...]] = set()

    # -- looking for content we already have -------------------------------------------
    def _resolve_root(self, layer: str) -> str | None:
        if layer not in self._layer_roots:
            self._layer_roots[layer] = self.layers.root(layer)
        return self._layer_roots[layer]

    def _tree(self, root: str) -> RootedDir:
        trees: dict[str, RootedDir] | None = getattr(self._tls, "trees", None)
        if trees is None:
            trees = self._tls.trees = {}
        tree = trees.get(root)
        if tree is None:
            tree = trees[root] = RootedDir(root)
            with self._trees_lock:
                self._trees.append((root, tree))
        return tree

    def _open_in(self, loc: Location) -> tuple[int, str] | None:
        root = self._layer_roots.get(loc.layer)
        if root is None:
            return None
        try:
            fd = self._tree(root).open_file(layer_parts(os.fsencode(loc.name)))
        except (OSError, StorageError):
            return None
        return fd, root

    @staticmethod
    def _content_is(fd: int, offset: int, size: int, digest: str, whole: bool) -> bool:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (whole and st.st_size != size) or st.st_size < offset + size:
            return False
        h = hashlib.sha256()
        pos, left = offset, size
        while left:
            data = os.pread(fd, min(left, 1 << 20), pos)
            if not data:
                return False
            h.update(data)
            pos += len(data)
            left -= len(data)
        return "sha256:" + h.hexdigest() == digest

    def _candidates(self, e: toc.Entry) -> list[tuple[Location, bool]]:
        """Files of other layers that may be ``e``, their layers' roots resolved."""
        candidates: list[tuple[Location, bool]] = []
        if self.hard_links and (loc := self.index.fingerprints.get(hard_link_fingerprint(e))):
            candidates.append((loc, True))
        if loc := self.index.files.get(e.digest):
            candidates.append((loc, False))
        for loc, _link in candidates:
            self._resolve_root(loc.layer)
        return candidates

    def _find_file(self, e: toc.Entry, candidates: list[tuple[Location, bool]]) -> _LocalFile | None:
        """The first candidate (or ostree object) whose bytes hash to ``e``'s digest;
        runs in worker threads."""
        for loc, link in candidates:
            opened = self._open_in(loc)
            if opened is None:
                continue
            fd, root = opened
            try:
                if self._content_is(fd, 0, e.size, e.digest, whole=True):
                    return _LocalFile(root, loc.name, link)
            finally:
                os.close(fd)
        return self._find_in_ostree(e)

    def _find_in_ostree(self, e: toc.Entry) -> _LocalFile | None:
        hexdigest = e.digest.partition(":")[2]
        link = hexdigest + ".payload-link"
        for repo in self.ostree:
            path = os.path.join(repo, "objects", link[:2], link[2:])
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not self._content_is(fd, 0, e.size, e.digest, whole=True):
                    continue
                same_meta = (
                    st.st_uid == e.uid
                    and st.st_gid == e.gid
                    and stat.S_IMODE(st.st_mode) == e.mode & 0o7777
                    and _xattrs_of(fd) == e.xattrs
                )
                return _LocalFile(
                    os.path.dirname(path), os.path.basename(path), self.hard_links and same_meta
                )
            finally:
                os.close(fd)
        return None

    def _find_chunk(self, c: ChunkRef) -> _LocalChunk | None:
        loc = self.index.chunks.get(c.digest) if c.digest else None
        if loc is None:
            return None
        self._resolve_root(loc.layer)
        opened = self._open_in(loc)
        if opened is None:
            return None
        fd, root = opened
        try:
            if self._content_is(fd, loc.offset, c.size, c.digest, whole=False):
                return _LocalChunk(root, loc.name, loc.offset)
        finally:
            os.close(fd)
        return None

    # -- the plan -------------------------------------------------------------------------
    def apply(self, dest: str) -> None:
        plans: dict[int, ContentPlacer] = {}
        remote: list[tuple[int, int]] = []
        stats = self.stats
        deferred: dict[int, _LocalFile] = {}
        pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="differ")
        self._pool = pool
        self._dest = dest
        try:
            regular = []
            for n, item in enumerate(self.items):
                e = item.entry
                if e.type != toc.REG:
                    continue
                stats.files += 1
                stats.bytes_total += e.size
                if item.chunks:
                    regular.append((n, item, self._candidates(e)))

            # verifying the candidates reads their bytes: in threads (hashing drops the GIL)
            def find(part: list[tuple[int, Item, list[tuple[Location, bool]]]]) -> list[_LocalFile | None]:
                return [self._find_file(item.entry, cands) for _n, item, cands in part]

            parts_of = [regular[i : i + _BATCH] for i in range(0, len(regular), _BATCH)]
            found_all = [f for part in pool.map(find, parts_of) for f in part]
            for (n, item, _cands), found in zip(regular, found_all, strict=True):
                if found is not None:
                    if found.hard_link:
                        stats.files_hard_linked += 1
                    elif found.root.endswith("objects") or "/objects/" in found.root:
                        stats.files_from_ostree += 1
                    else:
                        stats.files_reflinked += 1
                    plans[n] = self._place_local(found)
                    if not found.hard_link:
                        deferred[n] = found
                    continue
                parts: list[ChunkRef | _LocalChunk | None] = []
                for c in item.chunks:
                    if c.zeros:
                        stats.bytes_holes += c.size
                        parts.append(None)
                        continue
                    local = self._find_chunk(c) if len(item.chunks) > 1 else None
                    if local is not None:
                        stats.chunks_local += 1
                        stats.bytes_local += c.size
                        parts.append(local)
                    else:
                        stats.bytes_missing += c.size
                        remote.append((c.start, c.end - c.start))
                        parts.append(c)
                plans[n] = self._place_chunks(item, parts)
            if remote:
                self.cursor = BlobCursor(self.source, remote)
                stats.ranges_fetched = len(remote)
            apply_entries(self._feed(plans, deferred), dest, self.options, self._started)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._batch.clear()
            self._jobs.clear()
            for _root, tree in self._trees:
                tree.close()
            self._trees.clear()

    def _feed(
        self, plans: dict[int, ContentPlacer], deferred: dict[int, _LocalFile]
    ) -> Iterator[tuple[th.Entry, ContentPlacer | None]]:
        """The entries in TOC order. Files copied from other layers are created by the
        worker threads (a deferred placer), except where the order matters: before a
        hard link, a whiteout, a name met before, or a path through a file still being
        created, every pending copy is finished first; and all are before the extractor
        sets the directories' times at the end."""
        seen: set[tuple[bytes, ...]] = set()
        for n, item in enumerate(self.items):
            entry = _tar_entry(item.entry)
            parts = layer_parts(entry.name)
            clash = parts in seen or any(parts[:k] in self._pending_names for k in range(1, len(parts)))
            seen.add(parts)
            if self._pending_names and (
                clash or entry.typeflag == th.LINK or (parts and parts[-1].startswith(WHITEOUT_PREFIX))
            ):
                self._drain()
            found = deferred.get(n)
            if found is not None and not clash and self._finish is not None:
                self._pending_names.add(parts)
                yield entry, self._place_deferred(found)
            else:
                yield entry, plans.get(n)
        self._drain()

    def _started(self, finish: FileFinisher) -> None:
        self._finish = finish

    # -- placing content ------------------------------------------------------------------
    def _open_at(self, root: str, name: str) -> int:
        """Open ``name`` confined to ``root`` (directory descriptors cached per root)."""
        return self._tree(root).open_file(layer_parts(os.fsencode(name)))

    # Copies from other layers run in batches on the worker threads, a bounded number
    # of batches ahead of the extractor; a worker finds the parent directory the
    # extractor made through its own confined view of the layer root.
    def _place_deferred(self, found: _LocalFile) -> ContentPlacer:
        def place(pfd: int, base: bytes, entry: th.Entry) -> int | None:
            self._batch.append((entry, found))
            if len(self._batch) >= _BATCH:
                self._flush()
            return None  # the worker applies the metadata

        return place

    def _flush(self) -> None:
        if self._batch:
            assert self._pool is not None
            batch, self._batch = self._batch, []
            self._jobs.append(self._pool.submit(self._run_batch, batch))
        while len(self._jobs) > _AHEAD:
            self._jobs.popleft().result()

    def _drain(self) -> None:
        self._flush()
        while self._jobs:
            self._jobs.popleft().result()
        self._pending_names.clear()
        # the workers are idle: what they resolved in the layer may be replaced next
        for root, tree in self._trees:
            if root == self._dest:
                tree.forget()

    def _run_batch(self, batch: list[tuple[th.Entry, _LocalFile]]) -> None:
        finish = self._finish
        assert finish is not None
        dest = self._tree(self._dest)
        copier = self._copier()
        for entry, found in batch:
            parts = layer_parts(entry.name)
            src = self._open_at(found.root, found.name)
            try:
                fd = _create(dest.fd(dest.resolve(parts[:-1])), parts[-1])
                try:
                    copier(src, fd, entry.size)
                    finish(fd, entry)
                finally:
                    os.close(fd)
            finally:
                os.close(src)

    def _copier(self) -> Callable[[int, int, int], None]:
        """This thread's copy helper (it remembers that reflinks fail here)."""
        copier: _Copier | None = getattr(self._tls, "copier", None)
        if copier is None:
            copier = self._tls.copier = _Copier(privileged=False)
        return copier._copy_fd

    def _place_local(self, found: _LocalFile) -> ContentPlacer:
        def place(pfd: int, base: bytes, entry: th.Entry) -> int | None:
            src = self._open_at(found.root, found.name)
            try:
                if found.hard_link:
                    try:
                        os.link(f"/proc/self/fd/{src}", base, dst_dir_fd=pfd, follow_symlinks=True)
                        return None
                    except OSError as exc:
                        if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOENT):
                            raise
                fd = _create(pfd, base)
                try:
                    copy_file_content(src, fd, entry.size)
                except BaseException:
                    os.close(fd)
                    raise
                return fd
            finally:
                os.close(src)

        return place

    def _place_chunks(self, item: Item, parts: list[ChunkRef | _LocalChunk | None]) -> ContentPlacer:
        def place(pfd: int, base: bytes, entry: th.Entry) -> int | None:
            fd = _create(pfd, base)
            try:
                self._write_chunks(fd, item, parts)
            except BaseException:
                os.close(fd)
                raise
            return fd

        return place

    def _write_chunks(self, fd: int, item: Item, parts: list[ChunkRef | _LocalChunk | None]) -> None:
        e = item.entry
        whole = hashlib.sha256() if self.verify else None
        for c, part in zip(item.chunks, parts, strict=True):
            check = hashlib.sha256() if self.verify and c.digest and len(item.chunks) > 1 else None
            if part is None:
                os.lseek(fd, c.size, os.SEEK_CUR)
                os.ftruncate(fd, c.file_offset + c.size)
                if whole is not None:
                    left = c.size
                    while left:
                        piece = _ZEROS[: min(left, len(_ZEROS))]
                        whole.update(piece)
                        if check is not None:
                            check.update(piece)
                        left -= len(piece)
            else:
                for data in self._chunk_bytes(c, part):
                    _write_all(fd, data)
                    if whole is not None:
                        whole.update(data)
                    if check is not None:
                        check.update(data)
            if check is not None and "sha256:" + check.hexdigest() != c.digest:
                raise ChecksumMismatch(
                    f"{e.name!r}", message=f"checksum mismatch for the chunk at {c.file_offset}"
                )
        if whole is not None and "sha256:" + whole.hexdigest() != e.digest:
            raise ChecksumMismatch(
                message=f"checksum mismatch for {e.name!r} "
                f'(got "sha256:{whole.hexdigest()}" instead of {e.digest!r})'
            )

    def _chunk_bytes(self, c: ChunkRef, part: ChunkRef | _LocalChunk) -> Iterator[bytes]:
        if isinstance(part, _LocalChunk):
            src = self._open_at(part.root, part.name)
            try:
                pos, left = part.offset, c.size
                while left:
                    data = os.pread(src, min(left, 1 << 20), pos)
                    if not data:
                        raise InvalidTOC(message="a local chunk shrank while it was copied")
                    pos += len(data)
                    left -= len(data)
                    yield data
            finally:
                os.close(src)
            return
        assert self.cursor is not None
        yield from decode(self.kind, self.cursor.raw(c.start, c.end), c.size)


def _create(pfd: int, base: bytes) -> int:
    return os.open(
        base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _xattrs_of(fd: int) -> dict[str, str]:
    out = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return {}
    for name in names:
        if name in _IGNORED_XATTRS:
            continue
        try:
            out[name] = base64.b64encode(os.getxattr(fd, name)).decode()
        except OSError:
            continue
    return out


def _tar_entry(e: toc.Entry) -> th.Entry:
    """The tar header a TOC entry stands for."""
    typeflag = _TARTYPES.get(e.type)
    if typeflag is None:
        raise InvalidTOC(f"{e.name!r}", message=f"unknown type {e.type!r}")
    atime = e.accesstime.unix_ns if e.accesstime is not None and not e.accesstime.is_zero else None
    return th.Entry(
        name=e.name.encode("utf-8", "surrogateescape"),
        typeflag=typeflag,
        mode=e.mode,
        uid=e.uid,
        gid=e.gid,
        size=e.size if e.type == toc.REG else 0,
        mtime_ns=e.modtime.unix_ns if e.modtime is not None and not e.modtime.is_zero else 0,
        atime_ns=atime,
        linkname=e.linkname.encode("utf-8", "surrogateescape"),
        devmajor=e.devmajor,
        devminor=e.devminor,
        xattrs=e.xattr_values(),
    )
