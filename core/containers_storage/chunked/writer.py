"""Our zstd:chunked writer (upstream's ``compressor``): converts an uncompressed tar
stream into a blob whose file contents are separately addressable zstd frames, cut
where upstream cuts them (:mod:`.rollsum`), followed by the TOC, the tar-split and the
footer. Returns the layer annotations a client puts in the image manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from typing import IO

import zstandard

from ..archive import tarheader as th
from ..archive.ingest import IterReader
from ..archive.tarreader import Source, TarReader
from ..archive.tarsplit import OwnerSets, TarSplitWriter, disassemble
from ..errors import UnsupportedTarEntry
from ..gojson import GoTime
from . import toc
from .formats import (
    MANIFEST_CHECKSUM_KEY,
    MANIFEST_POSITION_KEY,
    TARSPLIT_CHECKSUM_KEY,
    TARSPLIT_POSITION_KEY,
)
from .rollsum import Chunk, Chunker
from .zstdchunked import MANIFEST_TYPE_CRFS, SKIPPABLE_HEADER, Footer, skippable_frame

DEFAULT_LEVEL = 3
_TYPES = {
    th.REG: toc.REG,
    th.REGA: toc.REG,
    th.LINK: toc.HARDLINK,
    th.SYMLINK: toc.SYMLINK,
    th.CHAR: toc.CHAR,
    th.BLOCKDEV: toc.BLOCK,
    th.DIR: toc.DIR,
    th.FIFO: toc.FIFO,
}


class _Output:
    """The blob being written, with its length so far."""

    def __init__(self, out: IO[bytes], level: int) -> None:
        self.out = out
        self.pos = 0
        self.cctx = zstandard.ZstdCompressor(level=level)

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.pos += len(data)

    def frame(self, data: bytes) -> None:
        self.write(self.cctx.compress(data))


class _FileFrames:
    """One file's content, written chunk by chunk, each chunk its own zstd frame."""

    def __init__(self, out: _Output) -> None:
        self.out = out
        self.chunker = Chunker()
        self.buf = bytearray()
        self.base = 0  # file offset of buf[0]
        self.frame: zstandard.ZstdCompressionObj | None = None
        self.frame_start = 0
        self.chunk_hash = hashlib.sha256()
        self.file_hash = hashlib.sha256()
        #: (chunk, blob offset of its frame, sha256 digest)
        self.done: list[tuple[Chunk, int, str]] = []

    def feed(self, data: bytes) -> None:
        self.buf += data
        self.file_hash.update(data)
        self.chunker.feed(data)
        self._drain(self.chunker.take())

    def finish(self) -> None:
        self._drain(self.chunker.finish())

    def _emit(self, upto: int) -> None:
        n = upto - self.base
        if n <= 0:
            return
        data = bytes(self.buf[:n])
        del self.buf[:n]
        self.base = upto
        if self.frame is None:
            self.frame = self.out.cctx.compressobj()
            self.frame_start = self.out.pos
        self.chunk_hash.update(data)
        self.out.write(self.frame.compress(data))

    def _drain(self, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            self._emit(chunk.offset + chunk.size)
            assert self.frame is not None
            self.out.write(self.frame.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
            self.done.append((chunk, self.frame_start, "sha256:" + self.chunk_hash.hexdigest()))
            self.frame = None
            self.chunk_hash = hashlib.sha256()
        self._emit(self.chunker.settled())


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _time(ns: int | None) -> GoTime:
    return GoTime.zero() if ns is None else GoTime(ns)


def compress(stream: IO[bytes], out: IO[bytes], level: int = DEFAULT_LEVEL) -> dict[str, str]:
    """Write ``stream`` (an uncompressed tar) to ``out`` as zstd:chunked; returns the
    annotations (TOC and tar-split positions and checksums)."""
    ts_gz = io.BytesIO()
    recorder = TarSplitWriter(ts_gz)
    raw = IterReader(disassemble(stream, recorder, OwnerSets()))
    pending: list[bytes] = []
    reader = TarReader(Source(raw, tap=pending.append))  # type: ignore[arg-type]
    blob = _Output(out, level)
    entries: list[toc.Entry] = []
    meta: list[bytes] = []
    while (entry := reader.next()) is not None:
        meta.extend(pending)
        pending.clear()
        kind = _TYPES.get(entry.typeflag)
        if kind is None:
            raise UnsupportedTarEntry(
                f"{_name(entry.name)!r}", message=f"unknown tarball type: {entry.typeflag}"
            )
        item = toc.Entry(
            type=kind,
            name=_name(entry.name),
            linkname=_name(entry.linkname),
            mode=entry.mode,
            size=entry.size,
            uid=entry.uid,
            gid=entry.gid,
            modtime=GoTime(entry.mtime_ns),
            accesstime=_time(entry.atime_ns),
            changetime=GoTime.zero(),
            devmajor=entry.devmajor,
            devminor=entry.devminor,
            xattrs=_b64(entry.xattrs),
        )
        entries.append(item)
        if kind != toc.REG or entry.size == 0:
            reader.skip_content()
            pending.clear()
            continue
        if meta:
            blob.frame(b"".join(meta))
            meta.clear()
        frames = _FileFrames(blob)
        while data := reader.read():
            pending.clear()
            frames.feed(data)
        frames.finish()
        item.digest = "sha256:" + frames.file_hash.hexdigest()
        done = frames.done
        item.offset = done[0][1]
        item.end_offset = blob.pos
        if len(done) > 1:
            for i, (chunk, start, digest) in enumerate(done):
                target = (
                    item if i == 0 else toc.Entry(type=toc.CHUNK, name=item.name, chunk_offset=chunk.offset)
                )
                target.chunk_size = chunk.size
                target.offset = start
                target.chunk_digest = digest
                target.chunk_type = toc.CHUNK_ZEROS if chunk.zeros else toc.CHUNK_DATA
                if i:
                    entries.append(target)
    rest = b"".join([*meta, *pending, *raw_rest(raw)])
    if rest:
        blob.frame(rest)
    recorder.close()
    tar_split = gzip.decompress(ts_gz.getvalue())
    return _trailer(blob, toc.dump(entries), tar_split)


def raw_rest(raw: IterReader) -> list[bytes]:
    out = []
    while data := raw.read(1 << 20):
        out.append(data)
    return out


def _b64(xattrs: dict[str, bytes]) -> dict[str, str]:
    import base64

    return {k: base64.b64encode(v).decode() for k, v in xattrs.items()}


def _trailer(blob: _Output, manifest: bytes, tar_split: bytes) -> dict[str, str]:
    """The TOC, tar-split and footer frames; the annotations that locate them."""
    comp_manifest = blob.cctx.compress(manifest)
    comp_ts = blob.cctx.compress(tar_split)
    manifest_off = blob.pos + SKIPPABLE_HEADER
    blob.write(skippable_frame(comp_manifest))
    ts_off = blob.pos + SKIPPABLE_HEADER
    blob.write(skippable_frame(comp_ts))
    footer = Footer(
        manifest_off,
        len(comp_manifest),
        len(manifest),
        MANIFEST_TYPE_CRFS,
        ts_off,
        len(comp_ts),
        len(tar_split),
    )
    blob.write(skippable_frame(footer.to_bytes()))
    return {
        MANIFEST_CHECKSUM_KEY: "sha256:" + hashlib.sha256(comp_manifest).hexdigest(),
        MANIFEST_POSITION_KEY: f"{manifest_off}:{len(comp_manifest)}:{len(manifest)}:{MANIFEST_TYPE_CRFS}",
        TARSPLIT_CHECKSUM_KEY: "sha256:" + hashlib.sha256(comp_ts).hexdigest(),
        TARSPLIT_POSITION_KEY: f"{ts_off}:{len(comp_ts)}:{len(tar_split)}",
    }
