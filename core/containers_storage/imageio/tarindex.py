"""Files of an image archive (an OCI archive or a ``docker save`` tarball), read in
place without extracting anything.

The archive is indexed once; a member is then read straight from its offset. Member
names are paths inside the archive: an absolute name, a ``..`` that climbs out, or a
link leading out of it makes the archive unusable (:class:`UnsafeArchivePath`) -- such
an archive was not written by an image tool. A compressed archive is first decompressed
into an unnamed temporary file, as is one that cannot seek (a pipe).
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from ..archive.compression import Compression, decompressed_chunks, detect
from ..errors import StorageError
from .errors import BlobMissing, InvalidImageSource, UnsafeArchivePath

_MAX_LINKS = 40


@dataclass(frozen=True, slots=True)
class Member:
    offset: int
    size: int
    #: symlink or hard-link target (archive path), "" for regular files
    link: str = ""
    symlink: bool = False


def clean(name: str, what: str) -> str:
    """A member name as an archive-relative path, or :class:`UnsafeArchivePath`."""
    if name.startswith("/"):
        raise UnsafeArchivePath(f"{what} {name!r}", message="absolute path in image archive")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeArchivePath(f"{what} {name!r}", message="path leaves the image archive")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


class _Window(io.RawIOBase):
    """``size`` bytes of a file from ``offset``, read with ``pread`` (no shared position,
    so several windows of one file can be read at once)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        super().__init__()
        self._fd = fd
        self._pos = offset
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buf).cast("B")
        want = min(len(view), self._left)
        data = os.pread(self._fd, want, self._pos)
        if not data:
            raise InvalidImageSource(message="image archive is truncated")
        view[: len(data)] = data
        self._pos += len(data)
        self._left -= len(data)
        return len(data)

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._left
        buf = bytearray(min(n, max(self._left, 0)))
        got = self.readinto(buf) if buf else 0
        return bytes(buf[:got])


class TarIndex:
    """The regular files, symlinks and hard links of an archive by cleaned path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = self._open_plain(path)
        self._fd = self._file.fileno()
        self.members: dict[str, Member] = {}
        try:
            self._index()
        except BaseException:
            self._file.close()
            raise

    @staticmethod
    def _open_plain(path: str) -> IO[bytes]:
        try:
            f: IO[bytes] = open(path, "rb")  # noqa: SIM115 -- kept open for the index's life
        except OSError as exc:
            raise InvalidImageSource(
                f"opening image archive {path!r}", message=exc.strerror or str(exc)
            ) from None
        if f.seekable() and detect(os.pread(f.fileno(), 10240, 0)) == Compression.NONE:
            return f
        spool = tempfile.TemporaryFile(prefix="cs-image-archive-")  # noqa: SIM115 -- returned open
        try:
            _, chunks = decompressed_chunks(f)
            for chunk in chunks:
                spool.write(chunk)
            spool.flush()
        except StorageError as exc:
            spool.close()
            raise InvalidImageSource(f"decompressing image archive {path!r}", message=str(exc)) from None
        except BaseException:
            spool.close()
            raise
        finally:
            f.close()
        return spool

    def _index(self) -> None:
        self._file.seek(0)
        try:
            with tarfile.open(fileobj=self._file, mode="r:") as tf:
                for info in tf:
                    name = clean(info.name, "archive member")
                    if not name:
                        continue
                    if info.isreg():
                        self.members[name] = Member(info.offset_data, info.size)
                    elif info.issym():
                        target = info.linkname
                        if target.startswith("/"):
                            raise UnsafeArchivePath(
                                f"symbolic link {info.name!r} -> {target!r}",
                                message="absolute link target in image archive",
                            )
                        joined = posixpath.join(posixpath.dirname(name), target)
                        self.members[name] = Member(0, 0, clean(joined, f"symbolic link {info.name!r}"), True)
                    elif info.islnk():
                        self.members[name] = Member(0, 0, clean(info.linkname, f"hard link {info.name!r}"))
                    elif info.isdir():
                        continue
                    else:
                        raise UnsafeArchivePath(
                            f"archive member {info.name!r}", message="not a regular file, directory or link"
                        )
        except tarfile.TarError as exc:
            raise InvalidImageSource(f"reading image archive {self.path!r}", message=str(exc)) from None

    def resolve(self, name: str) -> Member:
        """The regular file ``name`` leads to, following links (of the file or of a
        directory on its way) inside the archive."""
        path = clean(name, "archive path")
        for _ in range(_MAX_LINKS):
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                member = self.members.get("/".join(parts[:i]))
                if member is not None and member.link:
                    path = "/".join([member.link, *parts[i:]])
                    break
                if i == len(parts):
                    if member is None:
                        raise BlobMissing(
                            f"{name!r} in image archive {self.path!r}", message="file does not exist"
                        )
                    return member
        raise UnsafeArchivePath(
            f"{name!r} in image archive {self.path!r}", message="too many levels of links"
        )

    def exists(self, name: str) -> bool:
        try:
            self.resolve(name)
        except (BlobMissing, UnsafeArchivePath):
            return False
        return True

    def open(self, name: str) -> IO[bytes]:
        m = self.resolve(name)
        return _Window(self._fd, m.offset, m.size)  # type: ignore[return-value]

    def size(self, name: str) -> int:
        return self.resolve(name).size

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TarIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
