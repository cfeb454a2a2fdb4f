"""Hostile TOCs and blobs: a clear error, nothing written outside the staging
directory, no layer, no staging directory left behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from containers_storage.chunked import toc, writer
from containers_storage.chunked.differ import get_differ
from containers_storage.chunked.errors import ChecksumMismatch, InvalidTOC
from containers_storage.chunked.zstdchunked import read_manifest
from containers_storage.errors import ArchiveError, StorageError
from containers_storage.store import Store

from .conftest import Blob, make_tar, pull, rand


def rewrite(blob: Blob, out: Path, edit: Callable[[list[toc.Entry]], None]) -> Blob:
    """``blob`` with its TOC changed by ``edit`` (file data kept; trailer rebuilt and
    annotations recomputed, so the TOC digest is valid for the hostile TOC)."""
    m = read_manifest(blob.source(), blob.size, blob.annotations)
    entries = toc.parse(m.toc)
    edit(entries)
    data = blob.path.read_bytes()[: m.toc_offset]
    with open(out, "wb") as f:
        f.write(data)
        w = writer._Output(f, 3)
        w.pos = len(data)
        ann = writer._trailer(w, toc.dump(entries), m.tar_split)
    return Blob(out, ann)


@pytest.fixture
def base(write_blob: Callable[[bytes, str], Blob]) -> Blob:
    return write_blob(
        make_tar({"./": None, "./d/": None, "./d/f": rand(150_000, 1), "./g": b"hello world"}), "ours"
    )


def entry(entries: list[toc.Entry], name: str) -> toc.Entry:
    return next(e for e in entries if e.name == name)


def attempt(store: Store, blob: Blob) -> None:
    differ = get_differ(store.pull_options, blob.size, blob.annotations, blob.source())
    store.apply_diff_with_differ("", differ)


def staging_empty(store: Store) -> bool:
    d = os.path.join(store.graph_root, "vfs", "staging")
    return not os.path.exists(d) or os.listdir(d) == []


def hostile_edits(outside: str) -> dict[str, tuple[Callable[[list[toc.Entry]], None], type[Exception], str]]:
    def set_(name: str, **kw: object) -> Callable[[list[toc.Entry]], None]:
        def edit(entries: list[toc.Entry]) -> None:
            for k, v in kw.items():
                setattr(entry(entries, name), k, v)

        return edit

    def add(*new: toc.Entry) -> Callable[[list[toc.Entry]], None]:
        return lambda entries: entries.extend(new)

    def chunk_of(name: str, **kw: object) -> Callable[[list[toc.Entry]], None]:
        def edit(entries: list[toc.Entry]) -> None:
            chunks = [e for e in entries if e.name == name and e.type == toc.CHUNK]
            for k, v in kw.items():
                setattr(chunks[0], k, v)

        return edit

    g_digest = "sha256:" + hashlib.sha256(b"hello world").hexdigest()
    return {
        "offset past the data": (set_("./g", offset=10**9), InvalidTOC, "outside the file data"),
        "end before start": (set_("./g", end_offset=1), InvalidTOC, "outside the file data"),
        "negative offset": (set_("./g", offset=-5), InvalidTOC, "outside the file data"),
        "overlapping files": (
            lambda es: setattr(entry(es, "./g"), "offset", entry(es, "./d/f").offset),
            InvalidTOC,
            "overlaps",
        ),
        "chunk sizes off": (chunk_of("./d/f", chunk_size=1), InvalidTOC, "chunk"),
        "chunk out of place": (chunk_of("./d/f", chunk_offset=7), InvalidTOC, "chunk at"),
        "orphan chunk": (add(toc.Entry(type=toc.CHUNK, name="./zz", offset=5)), InvalidTOC, "chunk"),
        "unknown type": (add(toc.Entry(type="socket", name="./s")), InvalidTOC, "unknown type"),
        "missing digest": (set_("./g", digest=""), InvalidTOC, "digest"),
        "wrong file digest": (
            set_("./g", digest="sha256:" + "0" * 64),
            ChecksumMismatch,
            "checksum mismatch",
        ),
        "wrong chunk digest": (
            chunk_of("./d/f", chunk_digest="sha256:" + "1" * 64),
            ChecksumMismatch,
            "checksum",
        ),
        "wrong size": (set_("./g", size=5), InvalidTOC, ""),
        "name above the root": (
            add(toc.Entry(type=toc.REG, name="../../" + outside + "/escaped", size=0)),
            ArchiveError,
            "outside",
        ),
        "hard link above the root": (
            add(toc.Entry(type=toc.HARDLINK, name="./hl", linkname="../../../../etc/passwd")),
            ArchiveError,
            "",
        ),
        "write through a symlink": (
            add(
                toc.Entry(type=toc.SYMLINK, name="./esc", linkname=outside),
                toc.Entry(type=toc.REG, name="./esc/escaped", size=0),
            ),
            None,  # type: ignore[dict-item]
            "",
        ),
        "content through a symlinked directory": (
            lambda es: (
                es.insert(
                    es.index(entry(es, "./g")), toc.Entry(type=toc.SYMLINK, name="./esc", linkname=outside)
                ),
                setattr(entry(es, "./g"), "name", "./esc/g"),
            ),
            None,  # type: ignore[dict-item]
            "",
        ),
        "content named above the root": (
            lambda es: setattr(entry(es, "./g"), "name", "../../" + outside + "/g"),
            ArchiveError,
            "outside",
        ),
        "content for a symlinked name": (
            add(
                toc.Entry(type=toc.SYMLINK, name="./g2", linkname=outside + "/escaped"),
                toc.Entry(type=toc.REG, name="./g2", size=11, digest=g_digest),
            ),
            InvalidTOC,
            "",
        ),
    }


#: cases whose content the store already holds: the file is taken from the other layer
#: by its (verified) digest, so its chunks' digests are never looked at
LOCAL_CONTENT_WINS = {"wrong chunk digest"}


@pytest.mark.parametrize("local", [False, True], ids=["from-blob", "content-in-store"])
@pytest.mark.parametrize("case", list(hostile_edits("/x")))
def test_hostile_toc(case: str, local: bool, vfs_store: Store, base: Blob, tmp_path: Path) -> None:
    """Each case from the blob, and with the files' content already in another layer
    (so it is copied by the differ's worker threads instead)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    edit, error, text = hostile_edits(str(outside))[case]
    if local:
        pull(vfs_store, base)
        if case in LOCAL_CONTENT_WINS:
            error = None  # type: ignore[assignment]
    blob = rewrite(base, tmp_path / "hostile", edit)
    layers_before = [layer.id for layer in vfs_store.layers()]
    if error is None:
        # confined: the symlink's target is resolved inside the layer, never outside
        attempt(vfs_store, blob)
    else:
        with pytest.raises((error, StorageError)) as info:
            attempt(vfs_store, blob)
        assert isinstance(info.value, error) or case == "content for a symlinked name"
        assert text in str(info.value)
        assert staging_empty(vfs_store)
    assert os.listdir(outside) == []
    assert [layer.id for layer in vfs_store.layers()] == layers_before


def test_truncated_and_corrupt_metadata(vfs_store: Store, base: Blob, tmp_path: Path) -> None:
    data = base.path.read_bytes()
    short = tmp_path / "short"
    short.write_bytes(data[:40])
    no_positions = {k: v for k, v in base.annotations.items() if not k.endswith("position")}
    with pytest.raises(InvalidTOC, match="blob too small"):
        get_differ(vfs_store.pull_options, 40, no_positions, Blob(short, no_positions).source())
    cut = tmp_path / "cut"
    cut.write_bytes(data[:-3])
    with pytest.raises(InvalidTOC, match="invalid magic number"):
        get_differ(vfs_store.pull_options, len(data) - 3, no_positions, Blob(cut, no_positions).source())
    bad = dict(base.annotations)
    bad["io.github.containers.zstd-chunked.manifest-checksum"] = "sha256:" + "2" * 64
    with pytest.raises(ChecksumMismatch):
        get_differ(vfs_store.pull_options, base.size, bad, base.source())
    bad = dict(base.annotations)
    bad["io.github.containers.zstd-chunked.manifest-position"] = "1:2:x:1"
    with pytest.raises(InvalidTOC, match="is not 4 numbers"):
        get_differ(vfs_store.pull_options, base.size, bad, base.source())
    bad = dict(base.annotations)
    off, _clen, ulen, kind = bad["io.github.containers.zstd-chunked.manifest-position"].split(":")
    bad["io.github.containers.zstd-chunked.manifest-position"] = f"{off}:{10**12}:{ulen}:{kind}"
    with pytest.raises(InvalidTOC, match="too big"):
        get_differ(vfs_store.pull_options, base.size, bad, base.source())


def test_corrupt_file_data(vfs_store: Store, base: Blob, tmp_path: Path) -> None:
    m = read_manifest(base.source(), base.size, base.annotations)
    g = entry(toc.parse(m.toc), "./g")
    data = bytearray(base.path.read_bytes())
    data[g.offset + 4] ^= 0xFF
    broken = tmp_path / "broken"
    broken.write_bytes(bytes(data))
    with pytest.raises(InvalidTOC):
        attempt(vfs_store, Blob(broken, base.annotations))
    assert staging_empty(vfs_store) and vfs_store.layers() == []


def test_estargz_footer_checks(vfs_store: Store, tmp_path: Path) -> None:
    from containers_storage.chunked import estargz

    with pytest.raises(InvalidTOC, match="not an eStargz footer"):
        estargz.parse_footer(b"\x00" * 51)
    footer = estargz.footer_bytes(12345)
    assert estargz.parse_footer(footer) == 12345
    blob = tmp_path / "gz"
    blob.write_bytes(b"x" * 100 + estargz.footer_bytes(10**9))
    ann = {"containerd.io/snapshot/stargz/toc.digest": "sha256:" + "3" * 64}
    with pytest.raises(InvalidTOC, match="outside the blob"):
        get_differ(vfs_store.pull_options, 151, ann, Blob(blob, ann).source())


def test_hostile_toc_json(vfs_store: Store, base: Blob, tmp_path: Path) -> None:
    for doc, text in [
        (b"[]", "not a JSON object"),
        (b'{"entries": 5}', "not an array"),
        (b'{"entries": [{"type": "reg", "name": "x", "size": "big"}]}', "not an integer"),
        (b'{"entries": [{"type": "reg", "name": "x", "modtime": "yesterday"}]}', "RFC 3339"),
        (b"{", "parsing the TOC"),
    ]:
        with pytest.raises(InvalidTOC, match=text):
            toc.parse(doc)
