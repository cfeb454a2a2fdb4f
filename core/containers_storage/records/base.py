"""The generic JSON record store under a lock (on-disk.md §2, §3, §7.3, §7.6).

Records of one kind live in one or two JSON array files (stable and volatile) guarded by
one lock file. This class owns the protocol every kind shares:

* **reload only when changed**: the last-writer token of the lock (and, for layers, the
  files' mtimes) is compared on every acquisition; unchanged stores are not re-read;
* **lazy records**: files are decoded in one C-level ``json.loads``; record objects are
  built only when asked for (a name change on a 10,000-image store builds one), and
  unchanged records are written back from their decoded form -- byte-identical for files
  Go wrote -- with their unknown keys; only files holding a changed record are written;
* **indexes**: ID, name and sorted-ID (prefix) indexes, kept up to date in place;
* **atomic, crash-safe writes**: a new token first, then temp file, fsync, rename.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..errors import LoadError, StorageError, StoreIsReadOnly
from ..gojson import dumps
from ..locks.api import Lock
from ..structs import dataclass, replace
from ..typeshim import Generic, Protocol, TypeVar
from .files import element_core, element_text, read_json_array, require_utf8, write_atomic
from .model import RecordFormatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Record(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def names(self) -> tuple[str, ...]: ...

    def to_json(self, *, extra: bool = True) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Record)


@dataclass(frozen=True, slots=True)
class RecordFile:
    path: str
    #: volatile files are written without fsync
    volatile: bool = False


#: \u escapes Go's encoder writes (control characters, ``<>&``, U+2028/U+2029)
#: (the pattern ``\\u(?:00[0-1][0-9a-f]|003c|003e|0026|202[89])`` as a set)
_GO_U_ESCAPES = frozenset(
    [b"\\u00" + bytes([a, b]) for a in b"01" for b in b"0123456789abcdef"]
    + [b"\\u003c", b"\\u003e", b"\\u0026", b"\\u2028", b"\\u2029"]
)


def _not_canonical(raw: bytes) -> bool:
    """Signs of JSON not written by Go's encoder (whitespace between tokens, escapes Go
    never writes): such files may spell a name differently, so they are always decoded."""
    if b'": ' in raw or b'", "' in raw or b"\\/" in raw:
        return True
    i = raw.find(b"\\u")
    while i >= 0:
        if raw[i : i + 6] not in _GO_U_ESCAPES:
            return True
        i = raw.find(b"\\u", i + 2)
    return False


def _require_utf8(rec: _Record, old: _Record | None) -> None:
    """Refuse names, metadata and big-data keys that are not valid UTF-8 (surrogate
    escapes of other bytes) when they are new; what a file already held stays."""
    kept = set(old.names) if old is not None else set()
    fields = [("name", n) for n in rec.names if n not in kept]
    metadata = getattr(rec, "metadata", "")
    if old is None or metadata != getattr(old, "metadata", ""):
        fields.append(("metadata", metadata))
    kept_keys = set(getattr(old, "big_data_names", ())) if old is not None else set()
    fields += [("big data key", k) for k in getattr(rec, "big_data_names", ()) if k not in kept_keys]
    for what, text in fields:
        require_utf8(what, text)


class LazyRecords(Generic[R]):
    """Records in store order, built from their decoded JSON on first access."""

    def __init__(self, parse: Callable[[dict[str, Any], int], R]) -> None:
        self._parse = parse
        #: ID -> index of the file holding the record, in store order
        self.order: dict[str, int] = {}
        #: decoded JSON of records unchanged since the load
        self.raw: dict[str, dict[str, Any]] = {}
        #: built (or newly set) record objects
        self.objs: dict[str, R] = {}
        #: exact JSON text (see ``files.element_text``) of records unchanged since they
        #: were read or last written
        self.text: dict[str, str] = {}

    def __contains__(self, id: object) -> bool:
        return id in self.order

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __getitem__(self, id: str) -> R:
        rec = self.objs.get(id)
        if rec is None:
            rec = self.objs[id] = self._parse(self.raw[id], self.order[id])
        return rec

    def get(self, id: str) -> R | None:
        return self[id] if id in self.order else None

    def values(self) -> list[R]:
        return [self[i] for i in self.order]

    def pop(self, id: str) -> int:
        self.raw.pop(id, None)
        self.text.pop(id, None)
        self.objs.pop(id, None)
        return self.order.pop(id)


class RecordStore(Generic[R]):
    """Records of one kind; subclasses supply parsing and kind-specific indexes."""

    #: "layer", "image" or "container" (for messages)
    kind = "record"

    def __init__(self, lock: Lock, files: Sequence[RecordFile], *, read_only: bool = False) -> None:
        self.lock = lock
        self.files = list(files)
        self.read_only = read_only
        self._mem = threading.RLock()
        self._loaded = False
        self._token: bytes | None = None
        self._mtimes: list[int | None] = [None] * len(self.files)
        self._records: LazyRecords[R] = LazyRecords(self._parse_one)
        self._by_name: dict[str, str] = {}
        self._sorted_ids: list[str] = []
        self._dirty: set[int] = set()
        self._write_depth = 0
        self._swept = False

    # -- kind hooks ----------------------------------------------------------------------
    def parse(self, data: dict[str, Any], file_index: int) -> R:
        raise TypeError("subclasses define parse")

    def check_mtimes(self) -> bool:
        """Whether file mtimes also signal changes (layer stores, §7.3)."""
        return False

    def index_add(self, rec: R) -> None:
        """Add kind-specific index entries for ``rec``."""

    def index_remove(self, rec: R) -> None:
        """Remove kind-specific index entries for ``rec``."""

    def index_clear(self) -> None:
        """Drop every kind-specific index entry (before a reload)."""

    def needs_repair(self) -> bool:
        """After a load: whether the store must be rewritten (read-write stores only);
        kinds extend this (incomplete layers)."""
        return bool(self._dirty)

    def repair(self) -> None:
        """Fix what :meth:`needs_repair` found; runs under the exclusive lock."""

    # -- locking protocol ----------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock shared with up-to-date records; repairs first if needed (§7.6)."""
        for _attempt in range(3):
            self.lock.rlock()
            try:
                self._refresh()
                if self.read_only or not self.needs_repair() or self.lock.locked_for_writing:
                    break
            except BaseException:
                self.lock.unlock()
                raise
            self.lock.unlock()
            with self.writing():
                pass
        else:
            self.lock.rlock()
            try:
                self._refresh()
            except BaseException:
                self.lock.unlock()
                raise
        try:
            yield
        finally:
            self.lock.unlock()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the lock exclusively with up-to-date records; on exit nothing is saved
        implicitly -- callers :meth:`save` after changing records."""
        if self.read_only:
            raise StoreIsReadOnly(f"not allowed to modify the {self.kind} store at {self.files[0].path}")
        self.lock.lock()
        self._write_depth += 1
        try:
            if self._write_depth == 1:
                self._refresh()
                if self.needs_repair():
                    self.repair()
                    self.save()
            yield
        finally:
            self._write_depth -= 1
            if self._write_depth == 0 and self._dirty:
                # a failed operation: forget the unsaved changes, the files are the truth
                self._loaded = False
                self._dirty.clear()
            self.lock.unlock()

    @contextmanager
    def holding(self, ref: str, *, exclusive: bool) -> Iterator[bool]:
        """Take the lock; yield whether a record could be called ``ref`` (ID, name, ID
        prefix). When the files prove it cannot (:meth:`_cannot_hold`), they are not
        decoded at all -- a name change on an image never decodes 20,000 layers. When it
        may, this is :meth:`writing` / :meth:`reading` and the answer is exact."""
        if exclusive and self.read_only:
            raise StoreIsReadOnly(f"not allowed to modify the {self.kind} store at {self.files[0].path}")
        lk = self.lock
        lk.lock() if exclusive else lk.rlock()
        try:
            stale = self._changed_on_disk()
            if stale and self._cannot_hold(ref):
                yield False
                return
        finally:
            lk.unlock()  # reacquired below; nothing was read into memory
        with self.writing() if exclusive else self.reading():
            yield self.resolve(ref) is not None

    def _cannot_hold(self, ref: str) -> bool:
        """True only if no record in the files can be called ``ref``: the files are
        compact JSON as Go and this library write it, and neither ``"<ref>"`` nor
        ``"id":"<ref>`` (an ID prefix) occurs in them. Any other form says False."""
        if not ref:
            return False
        quoted = dumps(ref).encode("utf-8", "surrogateescape")
        prefix = b'"id":' + quoted[:-1]
        for rf in self.files:
            try:
                with open(rf.path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                continue
            if not raw.strip() or raw in (b"[]", b"null"):
                continue
            if not raw.startswith(b'[{"id":"') or _not_canonical(raw):
                return False
            if quoted in raw or prefix in raw:
                return False
        return True

    def _changed_on_disk(self) -> bool:
        if not self._loaded or self.lock.modified_since(self._token or b""):
            return True
        return self.check_mtimes() and self._current_mtimes() != self._mtimes

    def _current_mtimes(self) -> list[int | None]:
        out: list[int | None] = []
        for f in self.files:
            try:
                out.append(os.stat(f.path).st_mtime_ns)
            except FileNotFoundError:
                out.append(None)
        return out

    def _refresh(self) -> None:
        with self._mem:
            if self._changed_on_disk():
                self.load()

    # -- loading -------------------------------------------------------------------------
    def _parse_one(self, data: dict[str, Any], file_index: int) -> R:
        try:
            return self.parse(data, file_index)
        except RecordFormatError as exc:
            rid = data.get("id")
            raise LoadError(
                f"loading {self.files[file_index].path}", message=f"{self.kind} record {rid!r}: {exc}"
            ) from None

    def index_raw(self, id: str, data: dict[str, Any]) -> None:
        """Add kind-specific index entries for a record still in its decoded form."""

    def load(self) -> None:
        """Read all files (the lock must be held). On failure the store stays unloaded
        and nothing is ever written over the files."""
        token = self.lock.last_write()
        mtimes: list[int | None] = [None] * len(self.files)
        if self.check_mtimes():
            mtimes = self._current_mtimes()
        records: LazyRecords[R] = LazyRecords(self._parse_one)
        order, raw, texts = records.order, records.raw, records.text
        for idx, rf in enumerate(self.files):
            values, sources = read_json_array(rf.path)
            for pos, data in enumerate(values):
                rid = data.get("id")
                if rid.__class__ is not str:
                    raise LoadError(f"loading {rf.path}", message=f"{self.kind} record without a string id")
                if rid in order:
                    continue  # the first one read wins (§3)
                order[rid] = idx
                raw[rid] = data
                if sources is not None:
                    texts[rid] = sources[pos]
        self._loaded = False
        self._records = records
        self._dirty = set()
        self.index_clear()
        for rid, data in raw.items():
            self.index_raw(rid, data)
        self._sorted_ids = sorted(i for i in order if " " not in i)
        self._assign_names()
        self._token = token
        self._mtimes = mtimes
        self._loaded = True

    def _assign_names(self) -> None:
        """Build the name index; a name claimed twice stays with the later record (§3)."""
        owner: dict[str, str] = {}
        losers: dict[str, list[str]] = {}
        raw = self._records.raw
        for rid in self._records.order:
            data = raw.get(rid)
            names = data.get("names") if data is not None else self._records[rid].names
            if not names:
                continue
            if names.__class__ is not list and names.__class__ is not tuple:
                self._records[rid]  # raises LoadError naming the file and field
            for name in names:
                prev = owner.get(name)
                if prev is not None and prev != rid:
                    losers.setdefault(prev, []).append(name)
                owner[name] = rid
        self._by_name = owner
        if losers:
            if self.read_only:
                raise self.duplicate_names_error()
            for rid, lost in losers.items():
                rec = self._records[rid]
                self._replace(replace(rec, names=tuple(n for n in rec.names if n not in lost)))  # type: ignore[type-var]

    def duplicate_names_error(self) -> Exception:
        return LoadError(
            message=f"read-only {self.kind} store assigns the same name to multiple {self.kind}s"
        )

    # -- lookups -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def all(self) -> list[R]:
        return self._records.values()

    def by_id(self, id: str) -> R | None:
        return self._records.get(id)

    def resolve(self, ref: str) -> R | None:
        """Exact ID, exact name, unique ID prefix (§3)."""
        rec = self._records.get(ref)
        if rec is not None:
            return rec
        rid = self._by_name.get(ref)
        if rid is not None:
            return self._records[rid]
        return self._by_prefix(ref)

    def _by_prefix(self, prefix: str) -> R | None:
        if not prefix:
            return None
        ids = self._sorted_ids
        i = bisect.bisect_left(ids, prefix)
        if i < len(ids) and ids[i].startswith(prefix):
            if i + 1 < len(ids) and ids[i + 1].startswith(prefix):
                return None  # ambiguous
            return self._records[ids[i]]
        return None

    def name_owner(self, name: str) -> R | None:
        rid = self._by_name.get(name)
        return None if rid is None else self._records[rid]

    def file_index(self, id: str) -> int:
        return self._records.order[id]

    # -- changing (under :meth:`writing`) -------------------------------------------------
    def add(self, rec: R, file_index: int = 0) -> None:
        self._require_writable()
        _require_utf8(rec, None)
        self._records.order[rec.id] = file_index
        self._records.objs[rec.id] = rec
        if " " not in rec.id:
            bisect.insort(self._sorted_ids, rec.id)
        for name in rec.names:
            self._by_name[name] = rec.id
        self.index_add(rec)
        self._dirty.add(file_index)

    def _replace(self, rec: R) -> None:
        old = self._records[rec.id]
        _require_utf8(rec, old)
        self.index_remove(old)
        for name in old.names:
            if self._by_name.get(name) == rec.id:
                del self._by_name[name]
        self._records.objs[rec.id] = rec
        self._records.raw.pop(rec.id, None)
        self._records.text.pop(rec.id, None)
        for name in rec.names:
            self._by_name[name] = rec.id
        self.index_add(rec)
        self._dirty.add(self._records.order[rec.id])

    def update(self, rec: R) -> None:
        """Replace the record with the same ID (names re-indexed)."""
        self._require_writable()
        self._replace(rec)

    def remove(self, id: str) -> R:
        self._require_writable()
        rec = self._records[id]
        idx = self._records.pop(id)
        for name in rec.names:
            if self._by_name.get(name) == id:
                del self._by_name[name]
        i = bisect.bisect_left(self._sorted_ids, id)
        if i < len(self._sorted_ids) and self._sorted_ids[i] == id:
            del self._sorted_ids[i]
        self.index_remove(rec)
        self._dirty.add(idx)
        return rec

    def take_names(self, names: Sequence[str], new_owner: str, update_other: Callable[[R], R]) -> None:
        """Move ``names`` to ``new_owner``: other records lose them (upstream moves names)."""
        for name in names:
            other = self.name_owner(name)
            if other is not None and other.id != new_owner:
                self._replace(update_other(replace(other, names=tuple(n for n in other.names if n != name))))  # type: ignore[type-var]

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreIsReadOnly(f"not allowed to modify the {self.kind} store at {self.files[0].path}")
        if not self.lock.locked_for_writing:
            raise RuntimeError(f"{self.kind} store changed without holding its lock for writing")

    def _sweep_temp_files(self) -> None:
        """Remove temp files a killed writer left next to the record files: every writer
        holds this exclusive lock, so none of them can be in use now."""
        for rf in self.files:
            directory, base = os.path.split(rf.path)
            prefix = f".tmp-{base}"
            try:
                names = [n for n in os.listdir(directory) if n.startswith(prefix)]
            except FileNotFoundError:
                continue
            for name in names:
                try:
                    os.unlink(os.path.join(directory, name))
                except FileNotFoundError:
                    pass
        self._swept = True

    def save(self) -> None:
        """Write the files holding changed records: new token first (§7.3), then each
        file atomically. Unchanged records are written from their cached text."""
        self._require_writable()
        if not self._dirty:
            return
        self._token = self.lock.record_write()
        if not self._swept:
            self._sweep_temp_files()
        parts: list[list[str]] = [[] for _ in self.files]
        raw, objs, text = self._records.raw, self._records.objs, self._records.text
        for rid, idx in self._records.order.items():
            if idx in self._dirty:
                core = text.get(rid)
                if core is not None:
                    parts[idx].append(element_text(core))
                    continue
                data = raw.get(rid)
                full = dumps(data if data is not None else objs[rid].to_json())
                core = element_core(full)
                if core is not None:
                    text[rid] = core
                parts[idx].append(full)
        for idx in sorted(self._dirty):
            rf = self.files[idx]
            encoded = ("[" + ",".join(parts[idx]) + "]").encode("utf-8", "surrogateescape")
            try:
                os.makedirs(os.path.dirname(rf.path), 0o700, exist_ok=True)
                write_atomic(rf.path, encoded, durable=not rf.volatile)
            except OSError as exc:
                # the old file is intact; the caller's writing() drops the unsaved changes
                raise StorageError(f"saving {rf.path}", message=exc.strerror or str(exc)) from exc
        self._dirty.clear()
        if self.check_mtimes():
            self._mtimes = self._current_mtimes()
