"""Generated diffs: Go-compatible header encoding, tree/change-list export, round trips."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from containers_storage.archive import tarheader as th
from containers_storage.archive.apply import apply_tar
from containers_storage.archive.compression import Compression
from containers_storage.archive.export import TarBuilder, compress_chunks, tar_tree, whiteout_header
from containers_storage.archive.tarwriter import Header, encode
from containers_storage.errors import InvalidTarHeader
from containers_storage.idtools import IDMap, IDMappings

from .conftest import make_tar, member, needs_root, snapshot


def test_ustar_block_layout() -> None:
    block = encode(
        Header(
            name=b"etc/config",
            typeflag=th.REG,
            mode=0o100644,
            size=10,
            mtime=1700000600,
            uname=b"root",
            gname=b"root",
        )
    )
    assert len(block) == 512
    assert block[100:108] == b"0100644\x00" and block[124:136] == b"00000000012\x00"
    assert block[136:148] == b"14524771530\x00" and block[257:265] == b"ustar\x0000"
    assert block[329:345] == b"0000000\x000000000\x00"
    assert block[148:156] == b"%06o\x00 " % (sum(block[:148]) + 256 + sum(block[156:]))
    entry, _ = th.parse_block(block)
    assert (entry.name, entry.size, entry.uname) == (b"etc/config", 10, b"root")


def test_long_ascii_name_uses_ustar_prefix() -> None:
    name = b"/".join([b"d" * 60, b"e" * 60, b"file"])
    block = encode(Header(name=name, typeflag=th.REG))
    assert len(block) == 512 and block[345:466].rstrip(b"\x00") == b"d" * 60 + b"/" + b"e" * 60
    assert th.parse_block(block)[0].name == name


def test_non_ascii_and_xattrs_use_pax() -> None:
    out = encode(
        Header(name="dir/ünï.txt".encode(), typeflag=th.REG, xattrs={"user.b": b"2", "user.a": b"1"})
    )
    assert len(out) == 3 * 512
    assert out[:100].rstrip(b"\x00") == b"dir/PaxHeaders.0/n.txt"
    assert out[156] == ord("x")
    records = out[512:1024].rstrip(b"\x00")
    assert records == "25 SCHILY.xattr.user.a=1\n25 SCHILY.xattr.user.b=2\n22 path=dir/ünï.txt\n".encode()
    assert out[1024:1124].rstrip(b"\x00") == b"dir/n.txt"


def test_whiteout_header() -> None:
    block = whiteout_header(b"home/app", now=1700000000.6)
    entry, _ = th.parse_block(block)
    assert (entry.name, entry.typeflag, entry.mode, entry.size, entry.mtime_ns) == (
        b"home/.wh.app",
        th.REG,
        0,
        0,
        1700000001 * 10**9,
    )


@needs_root
def test_tree_round_trip(tmp_path: Path) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    back.mkdir()
    apply_tar(
        io.BytesIO(
            make_tar(
                [
                    member("bin/", type=tarfile.DIRTYPE, mode=0o755),
                    member("bin/a", b"x" * 3000, mode=0o4755),
                    member("bin/b", type=tarfile.LNKTYPE, linkname="bin/a"),
                    member("bin/s", type=tarfile.SYMTYPE, linkname="a"),
                    member("dev/", type=tarfile.DIRTYPE),
                    member("dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
                    member("dev/p", type=tarfile.FIFOTYPE),
                    member("x", b"y", pax={"SCHILY.xattr.user.k": "v"}, uid=1000, gid=1000),
                    member("long/", type=tarfile.DIRTYPE),
                    member("long/" + "n" * 150, b"deep"),
                ]
            )
        ),
        str(src),
    )
    data = b"".join(tar_tree(str(src)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert [m.name for m in tf][:4] == ["bin", "bin/a", "bin/b", "bin/s"]
        assert tf.getmember("bin/b").islnk()
    apply_tar(io.BytesIO(data), str(back))
    assert snapshot(src) == snapshot(back)


@needs_root
def test_owner_mapping_and_overlay_whiteouts(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "f").write_text("f")
    os.chown(layer / "f", 101000, 101005)
    os.mknod(layer / "deleted", stat.S_IFCHR | 0o600, 0)
    (layer / "opq").mkdir()
    os.setxattr(layer / "opq", "trusted.overlay.opaque", b"y")
    os.chown(layer / "opq", 100000, 100000)
    os.chown(layer / "deleted", 100000, 100000)
    maps = IDMappings(uids=(IDMap(0, 100000, 65536),), gids=(IDMap(0, 100000, 65536),))
    data = b"".join(tar_tree(str(layer), TarBuilder(maps, overlay_whiteouts=True)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert [m.name for m in tf] == [".wh.deleted", "f", "opq", "opq/.wh..wh..opq"]
        f = tf.getmember("f")
        assert (f.uid, f.gid) == (1000, 1005)
        assert tf.getmember(".wh.deleted").isreg() and tf.getmember(".wh.deleted").size == 0


@pytest.mark.parametrize("kind", [Compression.NONE, Compression.GZIP, Compression.ZSTD])
def test_compressed_output(kind: Compression) -> None:
    chunks = [os.urandom(1000), b"a" * 100_000, b""]
    blob = b"".join(compress_chunks(iter(chunks), kind))
    plain = b"".join(chunks)
    if kind == Compression.GZIP:
        blob = gzip.decompress(blob)
    elif kind == Compression.ZSTD:
        blob = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    assert blob == plain


def test_signed_checksum_accepted() -> None:
    """Old tars summed the header as signed bytes; Go accepts both, and so do we."""
    block = bytearray(encode(Header(name=b"ax", typeflag=th.REG)))
    block[0] = 0xE9
    block[148:156] = b"        "
    signed = sum(x - 256 if x > 127 else x for x in block)
    block[148:156] = b"%06o\x00 " % signed
    assert th.parse_block(bytes(block))[0].name == b"\xe9x"
    block[148:156] = b"%06o\x00 " % (signed + 1)
    with pytest.raises(InvalidTarHeader):
        th.parse_block(bytes(block))
