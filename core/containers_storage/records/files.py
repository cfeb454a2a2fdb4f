"""Files under the record directories: atomic replacement, JSON array files read with
each element's original text kept, and big-data item files (on-disk.md §6, §7.4)."""

from __future__ import annotations

import os

from ..errors import InvalidBigDataName, LoadError, NotUTF8
from ..gojson import go_quote, loads
from .limits import check_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

#: characters of a big-data key used as its file name unchanged (``[.0-9a-z]+``)
_PLAIN_KEY = frozenset(".0123456789abcdefghijklmnopqrstuvwxyz")


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_atomic(
    path: str,
    data: bytes | IO[bytes],
    *,
    durable: bool = True,
    mode: int = 0o600,
    limit: tuple[int, str] | None = None,
) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix:
    temp file in the same directory, write, fsync, chmod, rename, fsync the directory.
    ``durable=False`` (volatile records) skips both fsyncs. A stream is copied in
    chunks; ``limit`` (bytes, what) refuses one longer than that, leaving ``path`` be."""
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".tmp-{base}{int.from_bytes(os.urandom(4), 'little')}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        if isinstance(data, bytes | bytearray | memoryview):
            _write_all(fd, data)
        else:
            written = 0
            while chunk := data.read(1 << 20):
                written += len(chunk)
                if limit is not None:
                    check_size(written, *limit)
                _write_all(fd, chunk)
        if durable:
            os.fdatasync(fd)
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_json_array(path: str) -> tuple[list[dict[str, Any]], list[str] | None]:
    """The objects of the JSON array in ``path``, decoded in one pass, and -- when the
    file is compact Go output -- each object's exact source text (so unchanged records
    are written back without re-encoding). A missing or empty file is an empty array;
    anything that is not an array of objects raises :class:`LoadError` naming the file.

    Bytes that are not UTF-8 inside strings are kept (as surrogate escapes, written back
    as the same bytes), as upstream's decoder keeps them; nesting is read as deep as
    upstream reads it (:data:`~containers_storage.gojson.MAX_DEPTH`)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        raise LoadError(f"reading {path}", message=exc.strerror or str(exc)) from exc
    if not raw.strip():
        return [], None
    try:
        value = loads(raw.decode("utf-8", "surrogateescape"))
    except ValueError as exc:
        raise LoadError(f"loading {path}", message=f"not a valid record file: {_short(exc)}") from None
    if value is None:
        return [], None
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise LoadError(f"loading {path}", message="not a valid record file: not an array of objects")
    return value, _split_compact(raw, value)


def _short(exc: Exception) -> str:
    """A decoder's message, cut to one short line (it may quote the file)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


_SEP = '},{"id":"'


def _split_compact(raw: bytes, values: list[dict[str, Any]]) -> list[str] | None:
    """Each element's source text of a compact ``[{"id":"...",...},...]`` array, minus
    its leading ``{"id":"`` and trailing ``}`` (see :func:`element_text`).

    ``},{"id":"`` cannot occur inside a JSON string (its quote would be escaped), so
    splitting there finds the element boundaries -- unless an object nests objects whose
    first key is ``id``; the element count and every element's ID are checked, and any
    doubt returns None (the caller then re-encodes)."""
    if not (raw.startswith(b'[{"id":"') and raw.endswith(b"}]")):
        return None
    cores = raw[8:-2].decode("utf-8", "surrogateescape").split(_SEP)
    if len(cores) != len(values):
        return None
    for core, v in zip(cores, values, strict=True):
        rid = v.get("id")
        if rid.__class__ is not str or not core.startswith(rid) or core[len(rid) : len(rid) + 1] != '"':
            return None
    return cores


def element_text(core: str) -> str:
    return '{"id":"' + core + "}"


def element_core(text: str) -> str | None:
    """The inverse of :func:`element_text`, for texts of that shape."""
    return text[7:-1] if text.startswith('{"id":"') and text.endswith("}") else None


def require_utf8(what: str, text: str) -> None:
    """Raise :class:`NotUTF8` naming ``what`` when ``text`` holds surrogate escapes of
    bytes that are not UTF-8 (written, the file would hold them raw)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        import re  # only on this error path: start-up stays without it

        shown = re.sub(r"\\udc([89a-f][0-9a-f])", r"\\x\1", go_quote(text[:200]))
        raise NotUTF8(message=f"{what} {shown} is not valid UTF-8") from None


def big_data_file_name(key: str) -> str:
    """Key -> file name: plain keys stay, others become ``=`` + base64 (on-disk.md §6)."""
    if not key:
        raise InvalidBigDataName(f"can't set empty name for big data item {key!r}")
    if _PLAIN_KEY.issuperset(key):
        return key
    import base64

    return "=" + base64.b64encode(key.encode("utf-8", "surrogateescape")).decode("ascii")


def remove_tree(path: str) -> None:
    """``rm -rf`` that ignores errors (data directories of deleted records)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
