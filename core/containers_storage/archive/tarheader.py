"""Tar header blocks: parsing (ustar, GNU, PAX, base-256 numbers) into logical entries.

Semantics follow Go's ``archive/tar`` reader, which upstream and tar-split use, so that
names, sizes and errors match what upstream records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidTarHeader

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)

REG = ord("0")
REGA = 0
LINK = ord("1")
SYMLINK = ord("2")
CHAR = ord("3")
BLOCKDEV = ord("4")
DIR = ord("5")
FIFO = ord("6")
CONT = ord("7")
PAX_LOCAL = ord("x")
PAX_GLOBAL = ord("g")
GNU_LONGNAME = ord("L")
GNU_LONGLINK = ord("K")
GNU_SPARSE = ord("S")

#: types whose size field does not announce data (Go's isHeaderOnlyType)
HEADER_ONLY = frozenset({LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO})

FORMAT_V7, FORMAT_USTAR, FORMAT_GNU, FORMAT_STAR = range(4)


@dataclass(slots=True)
class Entry:
    """One logical tar entry after PAX and GNU long-name processing."""

    name: bytes
    typeflag: int
    mode: int = 0
    uid: int = 0
    gid: int = 0
    #: logical size (the real size of sparse files), as Go's ``Header.Size``
    size: int = 0
    mtime_ns: int = 0
    atime_ns: int | None = None
    linkname: bytes = b""
    uname: bytes = b""
    gname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    #: bytes of content following the header in the stream (before padding)
    data_size: int = 0
    #: (offset, length) fragments for sparse files; None for ordinary ones
    sparse: list[tuple[int, int]] | None = None


def _cstr(b: bytes) -> bytes:
    i = b.find(0)
    return b if i < 0 else b[:i]


def parse_number(b: bytes) -> int:
    """Octal (space/NUL padded) or GNU base-256 numeric field."""
    if b and b[0] & 0x80:
        inv = 0xFF if b[0] & 0x40 else 0x00
        x = 0
        for i, c in enumerate(b):
            c ^= inv
            if i == 0:
                c &= 0x7F
            x = (x << 8) | c
        if x.bit_length() > 63:
            raise InvalidTarHeader("numeric field overflows")
        return ~x if inv else x
    s = b.strip(b" \x00")
    if not s:
        return 0
    if s.translate(None, b"01234567"):  # Go accepts octal digits only (no sign, no "_")
        s = s.split(b"\x00", 1)[0]
        if s.translate(None, b"01234567"):
            raise InvalidTarHeader(f"invalid numeric field {b!r}")
        if not s:
            return 0
    return int(s, 8)


def _checksum_ok(block: bytes, stored: int) -> bool:
    """Unsigned sum (with the checksum field as spaces), or the signed one old tars used."""
    field = block[148:156]
    unsigned = sum(block) - sum(field) + 8 * 32
    if stored == unsigned:
        return True
    high = bytes(range(128, 256))
    signed = unsigned - 256 * (len(block) - len(block.translate(None, high)))
    signed += 256 * (len(field) - len(field.translate(None, high)))
    return stored == signed


def block_format(block: bytes) -> int:
    """Format of a non-zero header block; raises if the checksum does not match."""
    try:
        stored = parse_number(block[148:156])
    except InvalidTarHeader:
        raise InvalidTarHeader() from None
    if not _checksum_ok(block, stored):
        raise InvalidTarHeader()
    magic = block[257:263]
    version = block[263:265]
    if magic == b"ustar\x00" and version == b"00":
        return FORMAT_STAR if block[508:512] == b"tar\x00" else FORMAT_USTAR
    if magic == b"ustar " and version == b" \x00":
        return FORMAT_GNU
    return FORMAT_V7


def parse_block(block: bytes) -> tuple[Entry, int]:
    """The header fields of one block, and its format."""
    fmt = block_format(block)
    name = _cstr(block[0:100])
    entry = Entry(
        name=name,
        typeflag=block[156],
        mode=parse_number(block[100:108]),
        uid=parse_number(block[108:116]),
        gid=parse_number(block[116:124]),
        size=parse_number(block[124:136]),
        mtime_ns=parse_number(block[136:148]) * 1_000_000_000,
        linkname=_cstr(block[157:257]),
    )
    if fmt != FORMAT_V7:
        entry.uname = _cstr(block[265:297])
        entry.gname = _cstr(block[297:329])
        if entry.typeflag in (CHAR, BLOCKDEV):
            entry.devmajor = parse_number(block[329:337])
            entry.devminor = parse_number(block[337:345])
        if fmt == FORMAT_USTAR:
            prefix = _cstr(block[345:500])
            if prefix:
                entry.name = prefix + b"/" + name
        elif fmt == FORMAT_STAR:
            prefix = _cstr(block[345:476])
            if prefix:
                entry.name = prefix + b"/" + name
        else:
            atime = parse_number(block[345:357])
            if atime:
                entry.atime_ns = atime * 1_000_000_000
    if entry.size < 0:
        raise InvalidTarHeader("negative size")
    return entry, fmt


def parse_old_gnu_sparse(block: bytes, offset: int) -> tuple[list[tuple[int, int]], bool]:
    """Sparse fragments stored at ``offset`` in a header or extension block."""
    out: list[tuple[int, int]] = []
    count = 4 if offset == 386 else 21
    for i in range(count):
        start = offset + 24 * i
        if not block[start : start + 24].strip(b"\x00"):
            break
        out.append((parse_number(block[start : start + 12]), parse_number(block[start + 12 : start + 24])))
    return out, bool(block[offset + 24 * count])


def parse_pax(data: bytes) -> dict[bytes, bytes]:
    """PAX extended header records (``"%d %s=%s\\n"``); later keys win."""
    out: dict[bytes, bytes] = {}
    sparse_map: list[bytes] = []
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:  # trailing NUL padding written by some tools
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise InvalidTarHeader("malformed PAX record")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise InvalidTarHeader("malformed PAX record length") from None
        end = pos + length
        if length < 5 or end > n or data[end - 1] != 0x0A:
            raise InvalidTarHeader("malformed PAX record")
        record = data[sp + 1 : end - 1]
        eq = record.find(b"=")
        if eq <= 0:
            raise InvalidTarHeader("malformed PAX record")
        key, value = record[:eq], record[eq + 1 :]
        if b"\x00" in key or (key in (b"path", b"linkpath", b"uname", b"gname") and b"\x00" in value):
            raise InvalidTarHeader("NUL in PAX record")
        if key in (b"GNU.sparse.offset", b"GNU.sparse.numbytes"):
            sparse_map.append(value)  # sparse format 0.0: repeated keys, kept in order
        else:
            out[key] = value
        pos = end
    if sparse_map:
        out[b"GNU.sparse.map"] = b",".join(sparse_map)
    return out


def _pax_time(v: bytes) -> int:
    try:
        text = v.decode("ascii")
        neg = text.startswith("-")
        whole, _, frac = text.lstrip("-").partition(".")
        ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    except ValueError:
        raise InvalidTarHeader(f"invalid PAX time {v!r}") from None
    return -ns if neg else ns


def _pax_int(v: bytes) -> int:
    try:
        x = int(v)
    except ValueError:
        raise InvalidTarHeader(f"invalid PAX number {v!r}") from None
    if x < 0:
        raise InvalidTarHeader(f"invalid PAX number {v!r}")
    return x


def merge_pax(entry: Entry, pax: dict[bytes, bytes]) -> None:
    """Apply PAX records to ``entry`` (Go's mergePAX)."""
    for key, value in pax.items():
        if key == b"path":
            entry.name = value
        elif key == b"linkpath":
            entry.linkname = value
        elif key == b"uname":
            entry.uname = value
        elif key == b"gname":
            entry.gname = value
        elif key == b"uid":
            entry.uid = _pax_int(value)
        elif key == b"gid":
            entry.gid = _pax_int(value)
        elif key == b"size":
            entry.size = _pax_int(value)
        elif key == b"mtime":
            entry.mtime_ns = _pax_time(value)
        elif key == b"atime":
            entry.atime_ns = _pax_time(value)
        elif key.startswith(b"SCHILY.xattr."):
            entry.xattrs[key[13:].decode("utf-8", "surrogateescape")] = value


def pax_sparse(entry: Entry, pax: dict[bytes, bytes]) -> bool:
    """Set up GNU PAX sparse formats 0.0/0.1 from records; True for format 1.0, whose
    map is at the start of the data and has to be read by the caller."""
    major, minor = pax.get(b"GNU.sparse.major"), pax.get(b"GNU.sparse.minor")
    is_sparse = b"GNU.sparse.map" in pax or major is not None
    if not is_sparse:
        return False
    if b"GNU.sparse.name" in pax:
        entry.name = pax[b"GNU.sparse.name"]
    real = pax.get(b"GNU.sparse.realsize", pax.get(b"GNU.sparse.size"))
    entry.data_size = entry.size
    if real is not None:
        entry.size = _pax_int(real)
    if major == b"1" and minor == b"0":
        entry.sparse = []
        return True
    nums = [_pax_int(x) for x in pax.get(b"GNU.sparse.map", b"").split(b",") if x]
    if len(nums) % 2:
        raise InvalidTarHeader("malformed GNU sparse map")
    entry.sparse = list(zip(nums[::2], nums[1::2], strict=True))
    return False


def parse_sparse_1_0(data: bytes) -> tuple[list[tuple[int, int]], int] | None:
    """The sparse map at the start of a format 1.0 member: fragments and the number of
    bytes (whole blocks) it occupies, or None if ``data`` does not hold all of it yet."""
    lines = data.split(b"\n")
    if len(lines) < 2:
        return None
    try:
        count = int(lines[0])
    except ValueError:
        raise InvalidTarHeader("malformed GNU sparse 1.0 map") from None
    if len(lines) < 2 + 2 * count:
        return None
    nums = [_pax_int(x) for x in lines[1 : 1 + 2 * count]]
    used = sum(len(x) + 1 for x in lines[: 1 + 2 * count])
    used += (-used) % BLOCK
    return list(zip(nums[::2], nums[1::2], strict=True)), used


def validate_sparse(entry: Entry) -> None:
    assert entry.sparse is not None
    pos = 0
    total = 0
    for off, length in entry.sparse:
        if off < pos or length < 0:
            raise InvalidTarHeader("invalid sparse map")
        pos = off + length
        total += length
    if pos > entry.size or total != entry.data_size:
        raise InvalidTarHeader("sparse map does not match the sizes")
