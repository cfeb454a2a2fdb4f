"""Exception classes mirroring upstream's error list.

Every error the library raises derives from :class:`StorageError`. Each class carries
upstream's sentinel text as ``default_message`` so that callers who match on text (as
scripts written for the Go tool do) see the same words; ``str(exc)`` adds context in front
of it the way Go's ``fmt.Errorf("...: %w", err)`` does.

Every class survives :mod:`pickle` and :mod:`copy` (``multiprocessing``,
``concurrent.futures`` send errors between processes) with its type, text and attributes.
"""

from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_OS_FIELDS = ("errno", "strerror", "filename", "filename2")


def _restore(
    cls: type[StorageError], args: tuple[Any, ...], os_fields: tuple[Any, ...] | None
) -> StorageError:
    """Rebuild a pickled or copied error without calling ``__init__`` again (which would
    wrap its finished text in the default message once more)."""
    base: Any = OSError if os_fields is not None else Exception  # the C type that lays it out
    exc: StorageError = base.__new__(cls)
    exc.args = args
    for field, value in zip(_OS_FIELDS, os_fields or (), strict=False):
        if value is not None:  # an unset field must stay unset, or str() shows it
            setattr(exc, field, value)
    return exc


class StorageError(Exception):
    """Base class of every error raised by containers-storage."""

    default_message = "storage error"

    def __init__(self, context: str | None = None, *, message: str | None = None) -> None:
        self.context = context
        text = message or self.default_message
        super().__init__(f"{context}: {text}" if context else text)

    def __reduce__(self) -> tuple[Any, ...]:
        os_fields = None
        if isinstance(self, OSError):
            os_fields = tuple(getattr(self, f) for f in _OS_FIELDS)
        return (_restore, (type(self), self.args, os_fields), dict(self.__dict__))


class NotFoundError(StorageError, LookupError):
    """Base of the "not known" errors: ``id`` or ``name`` is what was looked up (None where
    the raiser did not know it). Also a :class:`LookupError`, as ``KeyError`` is."""

    default_message = "not known"

    def __init__(
        self,
        context: str | None = None,
        *,
        message: str | None = None,
        id: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(context, message=message)
        self.id = id
        self.name = name


# --- store-level sentinels (upstream types/errors.go) --------------------------------
class ContainerUnknown(NotFoundError):
    default_message = "container not known"


class ImageUnknown(NotFoundError):
    default_message = "image not known"


class LayerUnknown(NotFoundError):
    default_message = "layer not known"


class ParentUnknown(NotFoundError):
    default_message = "parent of layer not known"


class ItemUnknown(NotFoundError):
    """Base of the errors about a named item (big data, its size or digest) of a layer,
    image or container that exists: ``id`` is its owner's, ``key`` the item's name."""

    default_message = "item not known"

    def __init__(
        self,
        context: str | None = None,
        *,
        message: str | None = None,
        id: str | None = None,
        name: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(context, message=message, id=id, name=name)
        self.key = key


class BigDataUnknown(ItemUnknown, FileNotFoundError):
    """A named big-data item is missing. Upstream wraps ``os.ErrNotExist`` here, so this
    is also a :class:`FileNotFoundError` (``errno`` ENOENT)."""

    default_message = "file does not exist"

    def __init__(
        self,
        context: str | None = None,
        *,
        message: str | None = None,
        id: str | None = None,
        name: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(context, message=message, id=id, name=name, key=key)
        self.errno = _errno.ENOENT


class DigestUnknown(ItemUnknown):
    """No digest is recorded for the item (upstream's ErrDigestUnknown, which does not
    wrap ``os.ErrNotExist``: not a FileNotFoundError)."""

    default_message = "could not compute digest of item"


class DuplicateID(StorageError):
    default_message = "that ID is already in use"


class DuplicateName(StorageError):
    default_message = "that name is already in use"


class DuplicateImageNames(StorageError):
    default_message = "read-only image store assigns the same name to multiple images"


class DuplicateLayerNames(StorageError):
    default_message = "read-only layer store assigns the same name to multiple layers"


class ImageUsedByContainer(StorageError):
    default_message = "image is in use by a container"


class IncompleteOptions(StorageError):
    default_message = "missing necessary StoreOptions"


class InvalidBigDataName(StorageError, ValueError):
    default_message = "not a valid name for a big data item"


class NotUTF8(StorageError, ValueError):
    """A name, metadata or big-data key that is not valid UTF-8 (a surrogate-escaped
    argument, say): refused before it is written, as no record file could hold it for
    every reader (upstream writes U+FFFD in its place; an addition)."""

    default_message = "not valid UTF-8"


class InvalidID(StorageError, ValueError):
    """An ID that cannot name one directory entry of the store (an addition: upstream
    accepts such IDs and joins them into paths)."""

    default_message = "not a valid ID"


class LayerHasChildren(StorageError):
    default_message = "layer has children"


class LayerNotMounted(StorageError):
    default_message = "layer is not mounted"


class LayerUsedByContainer(StorageError):
    default_message = "layer is in use by a container"


class LayerUsedByImage(StorageError):
    default_message = "layer is in use by an image"


class LoadError(StorageError):
    default_message = "error loading storage metadata"


# raised when the item to delete does not exist: not-found errors, as lookups raise
class NotAContainer(NotFoundError):
    default_message = "identifier is not a container"


class NotALayer(NotFoundError):
    default_message = "identifier is not a layer"


class NotAnID(NotFoundError):
    default_message = "identifier is not a layer, image, or container"


class NotAnImage(NotFoundError):
    default_message = "identifier is not an image"


class ParentIsContainer(StorageError):
    default_message = "would-be parent layer is a container"


class SizeUnknown(ItemUnknown):
    default_message = "size is not known"


class StoreIsReadOnly(StorageError, PermissionError):
    default_message = "called a write method on a read-only store"


class NotSupported(StorageError):
    default_message = "not supported"


class InvalidMappings(StorageError, ValueError):
    default_message = "invalid mappings specified"


class NoAvailableIDs(StorageError):
    default_message = "not enough unused IDs in user namespace"


# --- check/repair findings (upstream types/errors.go) --------------------------------
class LayerUnaccounted(StorageError):
    default_message = "layer in lower level storage driver not accounted for"


class LayerUnreferenced(StorageError):
    default_message = "layer not referenced by any images or containers"


class LayerIncorrectContentDigest(StorageError):
    default_message = "layer content incorrect digest"


class LayerIncorrectContentSize(StorageError):
    default_message = "layer content incorrect size"


class LayerContentModified(StorageError):
    default_message = "layer content modified"


class LayerDataMissing(StorageError):
    default_message = "layer data item is missing"


class LayerMissing(StorageError):
    default_message = "layer is missing"


class LayerParentCycle(StorageError):
    """A layer's parent chain comes back to a layer already on it (a record someone else
    wrote; an addition: upstream's walks never end on such a chain)."""

    default_message = "layer's parent chain loops"


class LayerMountCountInvalid(StorageError):
    """A mount record's count is negative or beyond any count mounting could reach (an
    addition: upstream takes it as it is); the count is clamped, not trusted."""

    default_message = "layer mount count is not valid"


class ImageLayerMissing(StorageError):
    default_message = "image layer is missing"


class ImageDataMissing(StorageError):
    default_message = "image data item is missing"


class ImageDataIncorrectSize(StorageError):
    default_message = "image data item has incorrect size"


class ContainerImageMissing(StorageError):
    default_message = "image missing"


class ContainerDataMissing(StorageError):
    default_message = "container data item is missing"


class ContainerDataIncorrectSize(StorageError):
    default_message = "container data item has incorrect size"


# --- graph-driver sentinels (upstream drivers/driver.go) ------------------------------
class DriverError(StorageError):
    """Base of errors raised by graph drivers and driver selection."""

    default_message = "graph driver error"


class DriverNotSupported(DriverError):
    """The kernel or build lacks what the driver needs; probing moves on."""

    default_message = "driver not supported"


class DriverPrerequisites(DriverError):
    """The driver cannot run here (wrong filesystem, missing tool); probing moves on."""

    default_message = "prerequisites for driver not satisfied (wrong filesystem?)"


class IncompatibleFS(DriverError):
    """The backing filesystem cannot host this driver; probing moves on."""

    default_message = "backing file system is unsupported for this graph driver"


class DriverNotInstalled(DriverError):
    """A driver was named but no installed distribution offers it."""

    default_message = "storage driver is not installed"


class DriverLoadError(DriverError):
    """An installed driver's entry point, plugin or class cannot be loaded or contradicts
    itself (a name that is not the entry point's); the message names the driver and the
    distribution it comes from."""

    default_message = "storage driver cannot be loaded"


class DuplicateDriver(DriverError):
    """Two sources offer one driver name (upstream refuses a second registration); the
    message names both."""

    default_message = "name already registered"


class NoDriverAvailable(DriverError):
    default_message = "no supported storage backend found"


class DriverLayerUnknown(DriverError, NotFoundError):
    """Driver-level 'unknown layer' (upstream's ErrLayerUnknown in drivers/)."""

    default_message = "unknown layer"


class InvalidOption(DriverError, ValueError):
    """A driver or store option is malformed or unknown; the message names it."""

    default_message = "invalid option"


class ConfigError(StorageError):
    """storage.conf or the environment could not be turned into store options."""

    default_message = "invalid storage configuration"


#: Errors that make automatic driver probing try the next driver (config.md §5).
PROBE_SKIPPABLE: tuple[type[StorageError], ...] = (
    DriverNotSupported,
    DriverPrerequisites,
    IncompatibleFS,
)


# --- layer diffs (tar streams, compression, tar-split) --------------------------------
class ArchiveError(StorageError):
    """A layer diff (tar stream) could not be read, written or reproduced."""

    default_message = "invalid layer archive"


class InvalidTarHeader(ArchiveError):
    default_message = "archive/tar: invalid tar header"


class UnexpectedEOF(ArchiveError):
    """The stream ended inside a header, a file's content or a compressed frame."""

    default_message = "unexpected EOF"


class CorruptCompression(ArchiveError):
    default_message = "corrupt compressed data"


class UnsafeArchive(ArchiveError):
    """An entry would be written (or linked) outside the layer's root."""

    default_message = "archive entry escapes the layer root"


class UnsupportedTarEntry(ArchiveError):
    default_message = "unhandled tar header type"


class DuplicateTarPath(ArchiveError):
    default_message = "duplicates of file paths not supported"


class TarSplitIntegrity(ArchiveError):
    """Content read back for a tar-split replay does not match the recorded checksum."""

    default_message = "file integrity checksum failed"


class TarSplitEmpty(ArchiveError):
    """A layer's tar-split file is zero bytes long (not even the gzip stream that an
    empty layer's has): no tar stream can be reproduced from it."""

    default_message = "tar-split metadata is empty"


class InputTooLarge(StorageError, ValueError):
    """An input that has to be held (metadata, a big-data item, the data after a tar's
    end-of-archive marker) is over its documented limit -- or endless, like /dev/zero."""

    default_message = "input is too large"


class TrailingDataTooLarge(InputTooLarge, ArchiveError):
    """More than 16 MiB (``archive.tarsplit.MAX_TRAILING``, an internal module) follow
    the end-of-archive marker of a layer's tar stream."""

    default_message = "too much data after the end of the tar archive"


class UnmappableID(StorageError):
    """A file owner has no counterpart in the ID mappings being applied."""

    default_message = "ID cannot be mapped"
