"""The Store: layers, images and containers on one graph driver (upstream's ``Store``).

Open one with :func:`get_store`; use it as a context manager (``with get_store(opts) as
s:``) so the driver is released at the end. Every public method takes the locks it needs
in upstream's order (on-disk.md §7.5) and reloads records only when another process
changed them, so several processes -- ours or upstream's -- can share one store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .gojson import GoTime
from .idtools import IDMaps
from .records.model import Container, Image, Layer

if TYPE_CHECKING:
    from .config import StoreOptions
    from .drivers.api import Change, Driver
    from .locks.api import Lock
    from .plugins import PluginHost

__all__ = [
    "Container",
    "ContainerOptions",
    "DiffOptions",
    "IDMappingOptions",
    "Image",
    "ImageOptions",
    "Layer",
    "LayerOptions",
    "Store",
    "get_store",
]


@dataclass(frozen=True, slots=True)
class IDMappingOptions:
    """How a new layer or container maps IDs (upstream types.IDMappingOptions).

    ``host_*_mapping`` requests the host's IDs; otherwise empty maps inherit the parent
    layer's (or the image's, or the store's default) maps.
    """

    host_uid_mapping: bool = False
    host_gid_mapping: bool = False
    uid_map: IDMaps = ()
    gid_map: IDMaps = ()


@dataclass(frozen=True, slots=True)
class LayerOptions:
    id_mapping: IDMappingOptions = IDMappingOptions()
    #: create the layer as a copy of this layer (its contents, digests, tar-split)
    template_layer: str = ""
    #: digest and size of the compressed blob the caller will apply (recorded as given)
    original_digest: str = ""
    original_size: int | None = None
    uncompressed_digest: str = ""
    flags: Mapping[str, Any] = field(default_factory=dict)
    #: initial layer big data, in order
    big_data: Mapping[str, bytes] = field(default_factory=dict)
    #: record the layer in volatile-layers.json (no fsync)
    volatile: bool = False
    #: per-layer driver options such as ``size``
    storage_opt: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageOptions:
    #: creation time; None means now
    created: GoTime | None = None
    digest: str = ""
    digests: Sequence[str] = ()
    metadata: str = ""
    #: initial big data, in order
    big_data: Mapping[str, bytes] = field(default_factory=dict)
    names_history: Sequence[str] = ()
    flags: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerOptions:
    id_mapping: IDMappingOptions = IDMappingOptions()
    metadata: str = ""
    big_data: Mapping[str, bytes] = field(default_factory=dict)
    #: ``MountLabel``, ``ProcessLabel``, ``MountOpts`` ... (on-disk.md §8)
    flags: Mapping[str, Any] = field(default_factory=dict)
    #: mount options used whenever the container is mounted
    mount_opts: Sequence[str] = ()
    volatile: bool = False
    #: per-layer driver options for the container's layer
    storage_opt: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DiffOptions:
    #: None: the compression recorded for the layer; else 0 none, 1 bzip2, 2 gzip, 3 xz, 4 zstd
    compression: int | None = None


#: computes the digest of a manifest (``sha256:<hex>``) for big data keys ``manifest*``
ManifestDigester = Callable[[bytes], str]


def get_store(options: StoreOptions, *, plugins: PluginHost | None = None) -> Store:
    """Open the store described by ``options`` (creating its directories)."""
    return Store(options, plugins=plugins)


class Store:
    """See the module docstring. Methods accept an ID, a name or an unambiguous ID prefix
    wherever upstream does."""

    def __init__(self, options: StoreOptions, *, plugins: PluginHost | None = None) -> None:
        raise NotImplementedError

    # -- identity and configuration -----------------------------------------------------
    @property
    def run_root(self) -> str:
        raise NotImplementedError

    @property
    def graph_root(self) -> str:
        raise NotImplementedError

    @property
    def image_store(self) -> str:
        raise NotImplementedError

    @property
    def transient_store(self) -> bool:
        raise NotImplementedError

    @property
    def graph_driver_name(self) -> str:
        raise NotImplementedError

    @property
    def graph_options(self) -> list[str]:
        raise NotImplementedError

    @property
    def pull_options(self) -> dict[str, str]:
        raise NotImplementedError

    @property
    def uid_map(self) -> IDMaps:
        raise NotImplementedError

    @property
    def gid_map(self) -> IDMaps:
        raise NotImplementedError

    @property
    def driver(self) -> Driver:
        raise NotImplementedError

    def status(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def version(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def get_digest_lock(self, digest: str) -> Lock:
        raise NotImplementedError

    def close(self) -> None:
        """Release the driver and locks; mounts stay (see :meth:`shutdown`)."""
        raise NotImplementedError

    def shutdown(self, force: bool = False) -> list[str]:
        """Unmount (``force``) and release everything; returns the layers still mounted."""
        raise NotImplementedError

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic by ID ------------------------------------------------------------------
    def exists(self, id: str) -> bool:
        raise NotImplementedError

    def lookup(self, name: str) -> str:
        """The ID of the layer, image or container called ``name`` (ID, name or prefix)."""
        raise NotImplementedError

    def metadata(self, id: str) -> str:
        raise NotImplementedError

    def set_metadata(self, id: str, metadata: str) -> None:
        raise NotImplementedError

    def names(self, id: str) -> list[str]:
        raise NotImplementedError

    def set_names(self, id: str, names: Sequence[str]) -> None:
        raise NotImplementedError

    def add_names(self, id: str, names: Sequence[str]) -> None:
        raise NotImplementedError

    def remove_names(self, id: str, names: Sequence[str]) -> None:
        raise NotImplementedError

    def delete(self, id: str) -> None:
        """Delete a container (with its layer), an image or a layer, without safety checks."""
        raise NotImplementedError

    def wipe(self) -> None:
        raise NotImplementedError

    # -- layers -------------------------------------------------------------------------
    def create_layer(
        self,
        id: str = "",
        parent: str = "",
        names: Sequence[str] = (),
        mount_label: str = "",
        writeable: bool = False,
        options: LayerOptions | None = None,
    ) -> Layer:
        raise NotImplementedError

    def put_layer(
        self,
        id: str = "",
        parent: str = "",
        names: Sequence[str] = (),
        mount_label: str = "",
        writeable: bool = False,
        options: LayerOptions | None = None,
        diff: IO[bytes] | None = None,
    ) -> tuple[Layer, int]:
        """Create a layer and apply ``diff`` (any compression); returns the layer and the
        size the driver reported."""
        raise NotImplementedError

    def layer(self, id: str) -> Layer:
        raise NotImplementedError

    def layers(self) -> list[Layer]:
        raise NotImplementedError

    def layer_size(self, id: str) -> int:
        """The layer's uncompressed diff size, or -1 when not recorded."""
        raise NotImplementedError

    def layers_by_compressed_digest(self, digest: str) -> list[Layer]:
        raise NotImplementedError

    def layers_by_uncompressed_digest(self, digest: str) -> list[Layer]:
        raise NotImplementedError

    def layer_parent_owners(self, id: str) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def list_layer_big_data(self, id: str) -> list[str]:
        raise NotImplementedError

    def layer_big_data(self, id: str, key: str) -> bytes:
        raise NotImplementedError

    def set_layer_big_data(self, id: str, key: str, data: bytes | IO[bytes]) -> None:
        raise NotImplementedError

    def delete_layer(self, id: str) -> None:
        raise NotImplementedError

    def mount(self, id: str, mount_label: str = "") -> str:
        """Mount a layer (or a container's layer) read-write; counted across processes."""
        raise NotImplementedError

    def unmount(self, id: str, force: bool = False) -> bool:
        """Drop one mount reference (all with ``force``); True if still mounted."""
        raise NotImplementedError

    def mounted(self, id: str) -> int:
        raise NotImplementedError

    def mount_image(self, id: str, mount_options: Sequence[str] = (), mount_label: str = "") -> str:
        raise NotImplementedError

    def unmount_image(self, id: str, force: bool = False) -> bool:
        raise NotImplementedError

    def changes(self, from_: str, to: str) -> list[Change]:
        """Changes of layer ``to`` against ``from_`` ("" = its parent)."""
        raise NotImplementedError

    def diff_size(self, from_: str, to: str) -> int:
        raise NotImplementedError

    def diff(self, from_: str, to: str, options: DiffOptions | None = None) -> IO[bytes]:
        """The diff of ``to`` against ``from_`` ("" = its parent) as a tar stream."""
        raise NotImplementedError

    def apply_diff(self, to: str, diff: IO[bytes]) -> int:
        raise NotImplementedError

    # -- images -------------------------------------------------------------------------
    def create_image(
        self,
        id: str = "",
        names: Sequence[str] = (),
        layer: str = "",
        metadata: str = "",
        options: ImageOptions | None = None,
    ) -> Image:
        raise NotImplementedError

    def image(self, id: str) -> Image:
        raise NotImplementedError

    def images(self) -> list[Image]:
        raise NotImplementedError

    def images_by_top_layer(self, id: str) -> list[Image]:
        raise NotImplementedError

    def images_by_digest(self, digest: str) -> list[Image]:
        raise NotImplementedError

    def list_image_big_data(self, id: str) -> list[str]:
        raise NotImplementedError

    def image_big_data(self, id: str, key: str) -> bytes:
        raise NotImplementedError

    def image_big_data_size(self, id: str, key: str) -> int:
        raise NotImplementedError

    def image_big_data_digest(self, id: str, key: str) -> str:
        raise NotImplementedError

    def set_image_big_data(
        self, id: str, key: str, data: bytes, digest_manifest: ManifestDigester | None = None
    ) -> None:
        raise NotImplementedError

    def image_size(self, id: str) -> int:
        raise NotImplementedError

    def image_directory(self, id: str) -> str:
        raise NotImplementedError

    def image_run_directory(self, id: str) -> str:
        raise NotImplementedError

    def delete_image(self, id: str, commit: bool = True) -> list[str]:
        """Delete the image and the layers only it used; returns those layers' IDs.
        ``commit=False`` only reports what would be removed."""
        raise NotImplementedError

    # -- containers ---------------------------------------------------------------------
    def create_container(
        self,
        id: str = "",
        names: Sequence[str] = (),
        image: str = "",
        layer: str = "",
        metadata: str = "",
        options: ContainerOptions | None = None,
    ) -> Container:
        """``layer`` is the ID wanted for the container's new layer ("" = random)."""
        raise NotImplementedError

    def container(self, id: str) -> Container:
        raise NotImplementedError

    def containers(self) -> list[Container]:
        raise NotImplementedError

    def container_by_layer(self, layer_id: str) -> Container:
        raise NotImplementedError

    def list_container_big_data(self, id: str) -> list[str]:
        raise NotImplementedError

    def container_big_data(self, id: str, key: str) -> bytes:
        raise NotImplementedError

    def container_big_data_size(self, id: str, key: str) -> int:
        raise NotImplementedError

    def container_big_data_digest(self, id: str, key: str) -> str:
        raise NotImplementedError

    def set_container_big_data(self, id: str, key: str, data: bytes) -> None:
        raise NotImplementedError

    def container_size(self, id: str) -> int:
        raise NotImplementedError

    def container_directory(self, id: str) -> str:
        raise NotImplementedError

    def container_run_directory(self, id: str) -> str:
        raise NotImplementedError

    def set_container_directory_file(self, id: str, file: str, data: bytes) -> None:
        raise NotImplementedError

    def from_container_directory(self, id: str, file: str) -> bytes:
        raise NotImplementedError

    def set_container_run_directory_file(self, id: str, file: str, data: bytes) -> None:
        raise NotImplementedError

    def from_container_run_directory(self, id: str, file: str) -> bytes:
        raise NotImplementedError

    def container_parent_owners(self, id: str) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def delete_container(self, id: str) -> None:
        raise NotImplementedError
