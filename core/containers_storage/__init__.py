"""containers-storage: layers, images and containers, compatible with containers/storage.

The names a library user needs are exported here: :func:`get_store` and
:class:`StoreOptions` open a store, :class:`Store` is its API, :class:`Layer`,
:class:`Image` and :class:`Container` are its records, every error class of
:mod:`containers_storage.errors` (and :mod:`containers_storage.imageio`'s) can be caught
from here, and :func:`import_image`/:func:`export_image` move images in and out.

Importing this package is cheap: each name is imported from its module on first use
(module ``__getattr__``), so ``import containers_storage`` loads no store, driver,
archive or pluggy code. Modules not named in the reference are internal.
"""

__version__ = "0.1.0"

TYPE_CHECKING = False  # importing typing costs milliseconds; type checkers treat this as True

if TYPE_CHECKING:
    from .config import (
        StoreOptions,
        complete_store_options,
        load_store_options,
    )
    from .drivers.api import (
        Change,
        ChangeKind,
        Driver,
        DriverInfo,
    )
    from .errors import (
        ArchiveError,
        BigDataUnknown,
        ConfigError,
        ContainerDataIncorrectSize,
        ContainerDataMissing,
        ContainerImageMissing,
        ContainerUnknown,
        CorruptCompression,
        DigestUnknown,
        DriverError,
        DriverLayerUnknown,
        DriverLoadError,
        DriverNotInstalled,
        DriverNotSupported,
        DriverPrerequisites,
        DuplicateDriver,
        DuplicateID,
        DuplicateImageNames,
        DuplicateLayerNames,
        DuplicateName,
        DuplicateTarPath,
        ImageDataIncorrectSize,
        ImageDataMissing,
        ImageLayerMissing,
        ImageUnknown,
        ImageUsedByContainer,
        IncompatibleFS,
        IncompleteOptions,
        InputTooLarge,
        InvalidBigDataName,
        InvalidID,
        InvalidMappings,
        InvalidOption,
        InvalidTarHeader,
        ItemUnknown,
        LayerContentModified,
        LayerDataMissing,
        LayerHasChildren,
        LayerIncorrectContentDigest,
        LayerIncorrectContentSize,
        LayerMissing,
        LayerMountCountInvalid,
        LayerNotMounted,
        LayerParentCycle,
        LayerUnaccounted,
        LayerUnknown,
        LayerUnreferenced,
        LayerUsedByContainer,
        LayerUsedByImage,
        LoadError,
        NoAvailableIDs,
        NoDriverAvailable,
        NotAContainer,
        NotALayer,
        NotAnID,
        NotAnImage,
        NotFoundError,
        NotSupported,
        NotUTF8,
        ParentIsContainer,
        ParentUnknown,
        SizeUnknown,
        StorageError,
        StoreIsReadOnly,
        TarSplitEmpty,
        TarSplitIntegrity,
        TrailingDataTooLarge,
        UnexpectedEOF,
        UnmappableID,
        UnsafeArchive,
        UnsupportedTarEntry,
    )
    from .hookspecs import (
        hookimpl,
    )
    from .imageio import (
        BlobMissing,
        DigestMismatch,
        ExportedImage,
        ImageIOError,
        ImageNotFound,
        InvalidImageSource,
        InvalidReference,
        Platform,
        PlatformNotFound,
        UnsafeArchivePath,
        UnsupportedDigest,
        UnsupportedMediaType,
        export_image,
        import_image,
    )
    from .records.model import (
        Container,
        Image,
        Layer,
    )
    from .store import (
        AdditionalLayerHandle,
        AutoUserNsOptions,
        CheckOptions,
        CheckReport,
        ContainerOptions,
        DiffOptions,
        IDMappingOptions,
        ImageBigData,
        ImageOptions,
        LayerOptions,
        RepairOptions,
        Store,
        get_store,
    )

#: where the exported names live (modules relative to this package), as text: a dict of
#: a hundred entries would cost more to compile than the rest of the file
_HOMES = {
    # the store and its option and report types
    ".store": (
        "get_store Store AdditionalLayerHandle AutoUserNsOptions CheckOptions CheckReport "
        "ContainerOptions DiffOptions IDMappingOptions ImageBigData ImageOptions LayerOptions "
        "RepairOptions"
    ),
    # options
    ".config": "StoreOptions load_store_options complete_store_options",
    # records
    ".records.model": "Layer Image Container",
    # for driver authors
    ".drivers.api": "Driver DriverInfo Change ChangeKind",
    # for plugin authors
    ".hookspecs": "hookimpl",
    # images in and out
    ".imageio": (
        "import_image export_image ExportedImage Platform ImageIOError InvalidImageSource "
        "InvalidReference ImageNotFound BlobMissing DigestMismatch UnsupportedMediaType "
        "UnsupportedDigest PlatformNotFound UnsafeArchivePath"
    ),
    # errors
    ".errors": (
        "StorageError NotFoundError ContainerUnknown ImageUnknown LayerUnknown ParentUnknown ItemUnknown "
        "BigDataUnknown DigestUnknown DuplicateID DuplicateName DuplicateImageNames "
        "DuplicateLayerNames ImageUsedByContainer IncompleteOptions InvalidBigDataName InvalidID "
        "LayerHasChildren LayerNotMounted LayerUsedByContainer LayerUsedByImage LoadError "
        "NotAContainer NotALayer NotAnID NotAnImage ParentIsContainer SizeUnknown "
        "StoreIsReadOnly NotSupported InvalidMappings NoAvailableIDs LayerUnaccounted "
        "LayerUnreferenced LayerIncorrectContentDigest LayerIncorrectContentSize "
        "LayerContentModified LayerDataMissing LayerMissing ImageLayerMissing ImageDataMissing "
        "ImageDataIncorrectSize ContainerImageMissing ContainerDataMissing "
        "ContainerDataIncorrectSize DriverError DriverNotSupported DriverPrerequisites "
        "IncompatibleFS DriverNotInstalled DriverLoadError DuplicateDriver NoDriverAvailable "
        "DriverLayerUnknown InvalidOption ConfigError ArchiveError InvalidTarHeader "
        "UnexpectedEOF CorruptCompression UnsafeArchive UnsupportedTarEntry DuplicateTarPath "
        "TarSplitIntegrity UnmappableID InputTooLarge TrailingDataTooLarge TarSplitEmpty NotUTF8 "
        "LayerParentCycle LayerMountCountInvalid"
    ),
}

__all__ = [
    "AdditionalLayerHandle",
    "ArchiveError",
    "AutoUserNsOptions",
    "BigDataUnknown",
    "BlobMissing",
    "Change",
    "ChangeKind",
    "CheckOptions",
    "CheckReport",
    "ConfigError",
    "Container",
    "ContainerDataIncorrectSize",
    "ContainerDataMissing",
    "ContainerImageMissing",
    "ContainerOptions",
    "ContainerUnknown",
    "CorruptCompression",
    "DiffOptions",
    "DigestMismatch",
    "DigestUnknown",
    "Driver",
    "DriverError",
    "DriverInfo",
    "DriverLayerUnknown",
    "DriverLoadError",
    "DriverNotInstalled",
    "DriverNotSupported",
    "DriverPrerequisites",
    "DuplicateDriver",
    "DuplicateID",
    "DuplicateImageNames",
    "DuplicateLayerNames",
    "DuplicateName",
    "DuplicateTarPath",
    "ExportedImage",
    "IDMappingOptions",
    "Image",
    "ImageBigData",
    "ImageDataIncorrectSize",
    "ImageDataMissing",
    "ImageIOError",
    "ImageLayerMissing",
    "ImageNotFound",
    "ImageOptions",
    "ImageUnknown",
    "ImageUsedByContainer",
    "IncompatibleFS",
    "IncompleteOptions",
    "InputTooLarge",
    "InvalidBigDataName",
    "InvalidID",
    "InvalidImageSource",
    "InvalidMappings",
    "InvalidOption",
    "InvalidReference",
    "InvalidTarHeader",
    "ItemUnknown",
    "Layer",
    "LayerContentModified",
    "LayerDataMissing",
    "LayerHasChildren",
    "LayerIncorrectContentDigest",
    "LayerIncorrectContentSize",
    "LayerMissing",
    "LayerMountCountInvalid",
    "LayerNotMounted",
    "LayerOptions",
    "LayerParentCycle",
    "LayerUnaccounted",
    "LayerUnknown",
    "LayerUnreferenced",
    "LayerUsedByContainer",
    "LayerUsedByImage",
    "LoadError",
    "NoAvailableIDs",
    "NoDriverAvailable",
    "NotAContainer",
    "NotALayer",
    "NotAnID",
    "NotAnImage",
    "NotFoundError",
    "NotSupported",
    "NotUTF8",
    "ParentIsContainer",
    "ParentUnknown",
    "Platform",
    "PlatformNotFound",
    "RepairOptions",
    "SizeUnknown",
    "StorageError",
    "Store",
    "StoreIsReadOnly",
    "StoreOptions",
    "TarSplitEmpty",
    "TarSplitIntegrity",
    "TrailingDataTooLarge",
    "UnexpectedEOF",
    "UnmappableID",
    "UnsafeArchive",
    "UnsafeArchivePath",
    "UnsupportedDigest",
    "UnsupportedMediaType",
    "UnsupportedTarEntry",
    "complete_store_options",
    "export_image",
    "get_store",
    "hookimpl",
    "import_image",
    "load_store_options",
]


if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name

    _EXPORTS: dict[str, str] = {}  # name -> module, made on first use

    def __getattr__(name: str) -> object:
        if not _EXPORTS:
            _EXPORTS.update((n, module) for module, names in _HOMES.items() for n in names.split())
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(module, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
