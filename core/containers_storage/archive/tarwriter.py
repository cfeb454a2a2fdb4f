"""Tar header encoding as Go's ``archive/tar`` writer does it (format negotiation).

Upstream generates diffs with Go's writer and an unspecified format, so the writer picks
USTAR when every field fits (splitting long names into prefix and name), otherwise PAX
(an ``x`` header named ``<dir>/PaxHeaders.0/<base>`` with sorted records).  Go would
fall back to GNU only for modes or device numbers too large for octal, which Linux
never produces; those are refused here.
Matching this byte for byte makes generated diffs hash like upstream's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ArchiveError
from . import tarheader as th
from .paths import go_clean

_NAME, _PREFIX = 100, 155


@dataclass(slots=True)
class Header:
    name: bytes
    typeflag: int
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0  # whole seconds
    linkname: bytes = b""
    uname: bytes = b""
    gname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)


def _is_ascii(s: bytes) -> bool:
    return s.isascii() and b"\x00" not in s


def _to_ascii(s: bytes) -> bytes:
    if _is_ascii(s):
        return s
    text = s.decode("utf-8", "replace")
    return bytes(ord(c) for c in text if 0 < ord(c) < 0x80)


def _fits_octal(n: int, x: int) -> bool:
    return x >= 0 and (n >= 22 or x < 1 << ((n - 1) * 3))


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    length = len(name)
    if length <= _NAME or not _is_ascii(name):
        return None
    if length > _PREFIX + 1:
        length = _PREFIX + 1
    elif name[length - 1 : length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    nlen, plen = len(name) - i - 1, i
    if i <= 0 or nlen > _NAME or nlen == 0 or plen > _PREFIX:
        return None
    return name[:i], name[i + 1 :]


def _put_str(block: bytearray, off: int, size: int, s: bytes) -> None:
    piece = s[:size]
    block[off : off + len(piece)] = piece
    if len(s) < size:
        block[off + len(s)] = 0
    if len(s) > size and block[off + size - 1] == 0x2F:  # Go drops a cut trailing slash
        n = len(s[: size - 1].rstrip(b"/"))
        block[off + n] = 0


def _put_octal(block: bytearray, off: int, size: int, x: int) -> None:
    if not _fits_octal(size, x):
        x = 0
    s = f"{x:o}".encode()
    pad = size - len(s) - 1
    if pad > 0:
        s = b"0" * pad + s
    _put_str(block, off, size, s)


def _finish(block: bytearray) -> bytes:
    block[257:263] = b"ustar\x00"
    block[263:265] = b"00"
    block[148:156] = b"        "
    _put_octal(block, 148, 7, sum(block))
    block[155] = 0x20
    return bytes(block)


def _template(h: Header, name: bytes, ascii_only: bool = False) -> bytearray:
    put = _put_octal
    fix = _to_ascii if ascii_only else (lambda s: s)
    b = bytearray(th.BLOCK)
    b[156] = h.typeflag
    _put_str(b, 0, 100, fix(name))
    _put_str(b, 157, 100, fix(h.linkname))
    put(b, 100, 8, h.mode)
    put(b, 108, 8, h.uid)
    put(b, 116, 8, h.gid)
    put(b, 124, 12, h.size)
    put(b, 136, 12, h.mtime)
    _put_str(b, 265, 32, fix(h.uname))
    _put_str(b, 297, 32, fix(h.gname))
    put(b, 329, 8, h.devmajor)
    put(b, 337, 8, h.devminor)
    return b


def _pax_record(key: bytes, value: bytes) -> bytes:
    size = len(key) + len(value) + 3
    size += len(str(size))
    rec = b"%d %s=%s\n" % (size, key, value)
    if len(rec) != size:
        rec = b"%d %s=%s\n" % (len(rec), key, value)
    return rec


def _pax_name(name: bytes) -> bytes:
    i = name.rfind(b"/")
    directory, base = name[: i + 1], name[i + 1 :]
    parts = [p for p in (directory, b"PaxHeaders.0", base) if p]
    out = _to_ascii(go_clean(b"/".join(parts)))[:_NAME]
    return out.rstrip(b"/")


def encode(h: Header) -> bytes:
    """Header block(s) for ``h``: maybe a PAX extended header, then the main block."""
    ustar = pax = True
    records: dict[bytes, bytes] = {}

    def string(value: bytes, size: int, key: bytes | None, splittable: bool = False) -> None:
        nonlocal ustar
        too_long = len(value) > size
        if not _is_ascii(value) or too_long:
            if not (splittable and _split_ustar(value) is not None):
                ustar = False
            if key is not None:
                records[key] = value

    def number(value: int, size: int, key: bytes | None) -> None:
        nonlocal ustar, pax
        if not _fits_octal(size, value):
            ustar = False
            if key is None:
                pax = False
            else:
                records[key] = str(value).encode()

    string(h.name, 100, b"path", splittable=True)
    string(h.linkname, 100, b"linkpath")
    string(h.uname, 32, b"uname")
    string(h.gname, 32, b"gname")
    number(h.mode, 8, None)
    number(h.uid, 8, b"uid")
    number(h.gid, 8, b"gid")
    number(h.size, 12, b"size")
    number(h.devmajor, 8, None)
    number(h.devminor, 8, None)
    if h.mtime and not _fits_octal(12, h.mtime):
        ustar = False
        records[b"mtime"] = str(h.mtime).encode()
    if h.xattrs:
        for k, v in h.xattrs.items():
            records[b"SCHILY.xattr." + k.encode("utf-8", "surrogateescape")] = v
        ustar = False
    if ustar:
        name, prefix = h.name, b""
        split = _split_ustar(h.name)
        if split is not None:
            prefix, name = split
        block = _template(h, name)
        _put_str(block, 345, 155, prefix)
        return _finish(block)
    if pax:
        out = b""
        if records:
            data = b"".join(_pax_record(k, records[k]) for k in sorted(records))
            xb = bytearray(th.BLOCK)
            xb[156] = th.PAX_LOCAL
            _put_str(xb, 0, 100, _pax_name(h.name))
            for off, size, val in ((100, 8, 0), (108, 8, 0), (116, 8, 0), (124, 12, len(data)), (136, 12, 0)):
                _put_octal(xb, off, size, val)
            out = _finish(xb) + data + bytes((-len(data)) % th.BLOCK)
        return out + _finish(_template(h, h.name, ascii_only=True))
    raise ArchiveError(
        f"{h.name.decode('utf-8', 'replace')!r}", message="no tar format can encode this header"
    )


END_OF_ARCHIVE = bytes(2 * th.BLOCK)


def padding(size: int) -> bytes:
    return bytes((-size) % th.BLOCK)
