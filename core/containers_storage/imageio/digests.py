"""Digests of blobs: parsing (a digest names a file, so it is checked before use) and
verification of a stream while it is read."""

from __future__ import annotations

import hashlib
import re
from typing import IO, Any

from .errors import DigestMismatch, InvalidImageSource, UnsupportedDigest

_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-f0-9]+)\Z")


def split(digest: object) -> tuple[str, str]:
    """``(algorithm, hex)`` of a well-formed digest of a known algorithm."""
    if not isinstance(digest, str):
        raise InvalidImageSource(message=f"invalid digest {digest!r}: not a string")
    m = _DIGEST.match(digest)
    if m is None:
        raise InvalidImageSource(message=f"invalid digest {digest!r}: invalid checksum digest format")
    algorithm, hexpart = m.groups()
    want = _HEX_LENGTHS.get(algorithm)
    if want is None:
        raise UnsupportedDigest(f"digest {digest!r}")
    if len(hexpart) != want:
        raise InvalidImageSource(message=f"invalid digest {digest!r}: invalid checksum digest length")
    return algorithm, hexpart


def sha256_hex(digest: object, what: str) -> str:
    """The hex part of a ``sha256:`` digest; layer IDs and image IDs are made from these."""
    algorithm, hexpart = split(digest)
    if algorithm != "sha256":
        raise UnsupportedDigest(f"{what} {digest!r}", message="only sha256 is supported here")
    return hexpart


def of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def check(data: bytes, digest: str, size: int | None, what: str) -> None:
    """Raise :class:`DigestMismatch` unless ``data`` has ``digest`` (and ``size``)."""
    algorithm, _ = split(digest)
    got = of(data, algorithm)
    if got != digest:
        raise DigestMismatch(
            f"{what} {digest}", message=f"Digest did not match, expected {digest}, got {got}"
        )
    if size is not None and size >= 0 and len(data) != size:
        raise DigestMismatch(
            f"{what} {digest}", message=f"size mismatch: expected {size} bytes, got {len(data)}"
        )


class Digester:
    """Hash and count of a blob's bytes as they pass, checked against the digest and
    size that name it: more bytes than ``size`` fail at once, the rest at ``verify``."""

    def __init__(self, digest: str, size: int | None, what: str) -> None:
        algorithm, _ = split(digest)
        self.digest = digest
        self.size = size if size is not None and size >= 0 else None
        self.what = what
        self.count = 0
        self._hash = hashlib.new(algorithm)

    def _fail(self, message: str) -> DigestMismatch:
        return DigestMismatch(f"{self.what} {self.digest}", message=message)

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.count += len(data)
        if self.size is not None and self.count > self.size:
            raise self._fail(f"size mismatch: expected {self.size} bytes, got more")

    def verify(self) -> None:
        got = f"{self._hash.name}:{self._hash.hexdigest()}"
        if got != self.digest:
            raise self._fail(f"Digest did not match, expected {self.digest}, got {got}")
        if self.size is not None and self.count != self.size:
            raise self._fail(f"size mismatch: expected {self.size} bytes, got {self.count}")


class VerifyingReader:
    """A binary reader over ``raw`` that hashes what passes and, on reaching the end,
    raises :class:`DigestMismatch` when the digest or size is not the expected one; a
    stream longer than ``size`` fails as soon as it passes it. Whoever consumes the
    stream (the store applying a layer) sees the error before it finishes, so a wrong
    blob never becomes a complete layer."""

    def __init__(
        self, raw: IO[bytes], digest: str, size: int | None, what: str, on_bytes: Any = None
    ) -> None:
        self.raw = raw
        self.verified = False
        self._digester = Digester(digest, size, what)
        self._on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self._digester.update(data)
            if self._on_bytes is not None:
                self._on_bytes(len(data))
            return data
        if not self.verified:
            self._digester.verify()
            self.verified = True
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read to the end (verifying) whatever the consumer left unread."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        self.raw.close()
