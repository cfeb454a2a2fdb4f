"""Every command of the tool as data: names, argument counts, flags, and where it lives.

Kept import-free (only :mod:`.flags`) so that parsing a command line costs nothing; the
command's module is imported by :func:`Command.load` once the command is known.
"""

from __future__ import annotations

import importlib
import os

from .flags import Flag

TYPE_CHECKING = False  # typing costs ms at start-up; type checkers treat this as True

if TYPE_CHECKING:
    from collections.abc import Callable

    from .context import Context

    Handler = Callable[[Context], int]


def _is_rootless() -> bool:
    """cli.md §2's rule, kept in one place (config); config is imported by every run anyway."""
    from ..config import is_rootless

    return is_rootless(os.environ)


def global_flags() -> list[Flag]:
    """The flags known in both passes (cli.md §2)."""
    return [
        Flag(("-run", "R"), "run_root", "string", "Root of the runtime state tree"),
        Flag(("-graph", "g"), "graph_root", "string", "Root of the storage tree"),
        Flag(("-image-store",), "image_store", "string", "Root of the separate image store"),
        Flag(("-transient-store",), "transient_store", "bool", "Transient store mode"),
        Flag(("-storage-driver", "s"), "driver", "string", "Storage driver to use ($STORAGE_DRIVER)"),
        Flag(("-storage-opt",), "driver_options", "list", "Set storage driver options ($STORAGE_OPTS)"),
        Flag(("-debug", "D"), "debug", "bool", "Print debugging information"),
        Flag(("-unshare", "U"), "unshare", "bool", "Run in a user namespace", _is_rootless()),
    ]


HELP_FLAG = Flag(("#help", "-help"), "help", "bool", "Print usage")

JSON = Flag(("-json", "j"), "json", "bool", "Prefer JSON output")
NAMES = Flag(("-name", "n"), "names", "list", "Name (may be given more than once)")
ID = Flag(("-id", "i"), "id", "string", "ID to use instead of a random one")
LABEL = Flag(("-label", "l"), "label", "string", "Mount label")
READONLY = Flag(("-readonly", "r"), "readonly", "bool", "Create a read-only layer")
FILE_IN = Flag(("-file", "f"), "file", "string", "Read input from file instead of stdin")
FILE_OUT = Flag(("-file", "f"), "file", "string", "Write output to file instead of stdout")
METADATA = Flag(("-metadata", "m"), "metadata", "string", "Metadata")
METADATA_FILE = Flag(("-metadata-file", "f"), "metadata_file", "string", "Read metadata from file")
FORCE = Flag(("-force", "f"), "force", "bool", "Force the operation")
QUIET = Flag(("-quiet", "q"), "quiet", "bool", "Print only IDs / values")

ID_MAP_FLAGS = (
    Flag(("-hostuidmap",), "hostuidmap", "bool", "Force host UID map"),
    Flag(("-hostgidmap",), "hostgidmap", "bool", "Force host GID map"),
    Flag(("-uidmap",), "uidmap", "string", "UID map (container:host:size[:...])"),
    Flag(("-gidmap",), "gidmap", "string", "GID map (container:host:size[:...])"),
    Flag(("-subuidmap",), "subuidmap", "string", "Build the UID map from /etc/subuid ranges of this user"),
    Flag(("-subgidmap",), "subgidmap", "string", "Build the GID map from /etc/subgid ranges of this group"),
)

UNLIMITED = -1


class Command:
    """One command; ``target`` is ``module:function`` under this package, imported only
    when the command runs. Upstream opens the store before every command; our own
    additions may set ``needs_store`` to False."""

    __slots__ = ("description", "flags", "max_args", "min_args", "names", "needs_store", "synopsis", "target")

    def __init__(self, names: tuple[str, ...], synopsis: str, description: str, min_args: int, max_args: int,
                 flags: tuple[Flag, ...], target: str, needs_store: bool = True) -> None:
        self.names = names
        self.synopsis = synopsis
        self.description = description
        self.min_args = min_args
        self.max_args = max_args
        self.flags = flags
        self.target = target
        self.needs_store = needs_store

    def load(self) -> Handler:
        module, _, func = self.target.partition(":")
        handler: Handler = getattr(importlib.import_module(f"{__package__}.{module}"), func)
        return handler


def _c(names: str, synopsis: str, description: str, args: tuple[int, int], flags: tuple[Flag, ...],
       target: str, *, needs_store: bool = True) -> Command:
    return Command(tuple(names.split()), synopsis, description, args[0], args[1], flags, target, needs_store)


_U = UNLIMITED
_CREATE_LAYER_FLAGS = (LABEL, NAMES, ID, READONLY, JSON, *ID_MAP_FLAGS)

COMMANDS: tuple[Command, ...] = (
    _c("check", "", "Check storage consistency", (0, 0), (
        JSON,
        Flag(("-max", "m"), "max", "string", "Ignore unreferenced layers younger than this", "24h"),
        Flag(("-repair", "r"), "repair", "bool", "Remove damaged images and layers"),
        Flag(("-force", "f"), "force", "bool", "Remove damaged containers too (implies --repair)"),
        Flag(("-quick", "q"), "quick", "bool", "Skip comparing layer contents"),
    ), "maintenance:check"),
    _c("container", "[options [...]] containerNameOrID [...]", "Examine a container", (1, _U), (JSON,),
       "containers:container"),
    _c("list-container-data listcontainerdata", "[options [...]] containerNameOrID",
       "List data items that are attached to a container", (1, 1), (JSON,), "bigdata:list_container_data"),
    _c("get-container-data getcontainerdata", "[options [...]] containerNameOrID dataName",
       "Get data that is attached to a container", (2, 2), (FILE_OUT,), "bigdata:get_container_data"),
    _c("get-container-data-size getcontainerdatasize", "[options [...]] containerNameOrID dataName",
       "Get size of data that is attached to a container", (2, 2), (), "bigdata:get_container_data_size"),
    _c("get-container-data-digest getcontainerdatadigest", "[options [...]] containerNameOrID dataName",
       "Get digest of data that is attached to a container", (2, 2), (),
       "bigdata:get_container_data_digest"),
    _c("set-container-data setcontainerdata", "[options [...]] containerNameOrID dataName",
       "Set data that is attached to a container", (2, 2), (FILE_IN,), "bigdata:set_container_data"),
    _c("get-container-dir getcontainerdir", "[options [...]] containerNameOrID",
       "Find the container's associated data directory", (1, 1), (), "containers:get_container_dir"),
    _c("get-container-run-dir getcontainerrundir", "[options [...]] containerNameOrID",
       "Find the container's associated runtime directory", (1, 1), (), "containers:get_container_run_dir"),
    _c("container-parent-owners", "[options [...]] containerNameOrID [...]",
       "Compute the set of unmapped parent UIDs and GIDs of the container", (1, _U), (JSON,),
       "owners:container_parent_owners"),
    _c("containers", "[options [...]]", "List containers", (0, 0), (JSON,), "containers:containers"),
    _c("copy", "[options [...]] [layerNameOrID:]sourcePath [...] [layerNameOrID:]destinationPath",
       "Copy files or directories into or out of layers, defaulting to the host", (2, _U), (
           Flag(("-chown", "o"), "chown", "string", "Set owner on new copies (UID[:GID])"),
           JSON,
       ), "copy:copy"),
    _c("create-storage-layer", "[options [...]] [parentLayerID]", "Create a layer in the driver only",
       (0, 1), (LABEL, ID, READONLY, JSON, *ID_MAP_FLAGS), "layers:create_storage_layer"),
    _c("create-layer createlayer", "[options [...]] [parentLayerNameOrID]", "Create a new layer",
       (0, 1), _CREATE_LAYER_FLAGS, "layers:create_layer"),
    _c("import-layer importlayer", "[options [...]] [parentLayerNameOrID]",
       "Import a new layer from a tar stream", (0, 1), (*_CREATE_LAYER_FLAGS, FILE_IN),
       "layers:import_layer"),
    _c("create-image createimage", "[options [...]] topLayerNameOrID", "Create a new image using layers",
       (0, 1), (NAMES, ID, Flag(("-digest", "d"), "digest", "string", "Digest of the image's manifest"),
                METADATA, METADATA_FILE, JSON), "images:create_image"),
    _c("create-container createcontainer", "[options [...]] parentImageNameOrID",
       "Create a new container from an image", (1, 1), (
           NAMES, ID, METADATA, METADATA_FILE,
           Flag(("-volatile",), "volatile", "bool", "Mark the container as volatile"),
           JSON, *ID_MAP_FLAGS,
       ), "containers:create_container"),
    _c("delete", "[options [...]] layerOrImageOrContainerNameOrID [...]",
       "Delete a layer or image or container, with no safety checks", (1, _U), (JSON,), "delete:delete"),
    _c("delete-layer deletelayer", "[options [...]] layerNameOrID [...]",
       "Delete a layer, with safety checks", (1, _U), (JSON,), "delete:delete_layer"),
    _c("delete-image deleteimage", "[options [...]] imageNameOrID [...]",
       "Delete an image, with safety checks", (1, _U),
       (Flag(("-test", "t"), "test", "bool", "Only list the layers that would be deleted"), JSON),
       "delete:delete_image"),
    _c("delete-container deletecontainer", "[options [...]] containerNameOrID [...]",
       "Delete a container, with safety checks", (1, _U), (JSON,), "delete:delete_container"),
    _c("changes", "[options [...]] layerNameOrID [referenceLayerNameOrID]",
       "Compare two layers", (1, 2), (JSON,), "diffs:changes"),
    _c("diffsize diff-size", "[options [...]] layerNameOrID [referenceLayerNameOrID]",
       "Compare two layers", (1, 2), (), "diffs:diffsize"),
    _c("diff", "[options [...]] layerNameOrID [referenceLayerNameOrID]", "Compare two layers", (1, 2), (
        FILE_OUT,
        Flag(("-uncompressed", "u"), "uncompressed", "bool", "Use no compression"),
        Flag(("-gzip", "c"), "gzip", "bool", "Compress using gzip"),
        Flag(("-bzip2", "-bz2", "b"), "bzip2", "bool", "Compress using bzip2"),
        Flag(("-xz", "x"), "xz", "bool", "Compress using xz"),
    ), "diffs:diff"),
    _c("applydiff apply-diff", "[options [...]] layerNameOrID [referenceLayerNameOrID]",
       "Apply a diff to a layer", (1, 1), (FILE_IN,), "diffs:applydiff"),
    _c("exists", "[LayerOrImageOrContainerNameOrID [...]]", "Check if a layer or image or container exists",
       (1, _U), (
           QUIET,
           Flag(("-layer", "l"), "layer", "bool", "Only succeed if the match is a layer"),
           Flag(("-image", "i"), "image", "bool", "Only succeed if the match is an image"),
           Flag(("-container", "c"), "container", "bool", "Only succeed if the match is a container"),
           JSON,
       ), "objects:exists"),
    _c("gc", "", "Perform garbage collection", (0, 0), (JSON,), "maintenance:gc"),
    _c("image", "[options [...]] imageNameOrID [...]", "Examine an image", (1, _U), (JSON,), "images:image"),
    _c("list-image-data listimagedata", "[options [...]] imageNameOrID",
       "List data items that are attached to an image", (1, 1), (JSON,), "bigdata:list_image_data"),
    _c("get-image-data getimagedata", "[options [...]] imageNameOrID dataName",
       "Get data that is attached to an image", (2, 2), (FILE_OUT,), "bigdata:get_image_data"),
    _c("get-image-data-size getimagedatasize", "[options [...]] imageNameOrID dataName",
       "Get size of data that is attached to an image", (2, 2), (), "bigdata:get_image_data_size"),
    _c("get-image-data-digest getimagedatadigest", "[options [...]] imageNameOrID dataName",
       "Get digest of data that is attached to an image", (2, 2), (), "bigdata:get_image_data_digest"),
    _c("set-image-data setimagedata", "[options [...]] imageNameOrID dataName",
       "Set data that is attached to an image", (2, 2), (FILE_IN,), "bigdata:set_image_data"),
    _c("images", "[options [...]]", "List images", (0, 0), (JSON, QUIET), "images:images"),
    _c("images-by-digest", "[options [...]] DIGEST", "List images by digest", (1, 1), (JSON, QUIET),
       "images:images_by_digest"),
    _c("layer", "[options [...]] layerNameOrID [...]", "Examine a layer", (1, _U), (JSON,), "layers:layer"),
    _c("layer-parent-owners", "[options [...]] layerNameOrID [...]",
       "Compute the set of unmapped parent UIDs and GIDs of the layer", (1, _U), (JSON,),
       "owners:layer_parent_owners"),
    _c("list-layer-data listlayerdata", "[options [...]] layerNameOrID",
       "List data items that are attached to a layer", (1, 1), (JSON,), "bigdata:list_layer_data"),
    _c("get-layer-data getlayerdata", "[options [...]] layerNameOrID dataName",
       "Get data that is attached to a layer", (2, 2), (FILE_OUT,), "bigdata:get_layer_data"),
    _c("set-layer-data setlayerdata", "[options [...]] layerNameOrID dataName",
       "Set data that is attached to a layer", (2, 2), (FILE_IN,), "bigdata:set_layer_data"),
    _c("layers", "[options [...]]", "List layers", (0, 0), (
        JSON,
        Flag(("-tree", "t"), "tree", "bool", "Use a tree"),
        Flag(("-quick", "q"), "quick", "bool", "Print only layer IDs"),
    ), "layers:layers"),
    _c("storage-layers", "[options [...]]", "List layers known to the storage driver", (0, 0), (JSON,),
       "layers:storage_layers"),
    _c("metadata", "[options [...]] layerOrImageOrContainerNameOrID [...]",
       "Retrieve layer, image, or container metadata", (1, _U), (QUIET, JSON), "objects:metadata"),
    _c("set-metadata setmetadata", "[options [...]] layerOrImageOrContainerNameOrID",
       "Set layer, image, or container metadata", (1, 1), (METADATA, METADATA_FILE), "objects:set_metadata"),
    _c("mount", "[options [...]] LayerOrContainerNameOrID [...]", "Mount a layer or container", (1, _U), (
        Flag(("-opt", "o"), "opt", "string", "Mount options (ignored)"),
        LABEL,
        Flag(("-read-only", "-ro", "r"), "read_only", "bool", "Mount an image's top layer read-only"),
        JSON,
    ), "mounts:mount"),
    _c("unmount umount", "LayerOrContainerNameOrID [...]", "Unmount a layer or container", (1, _U),
       (JSON, Flag(("-force", "f"), "force", "bool", "Unmount however many times it was mounted")),
       "mounts:unmount"),
    _c("mounted", "LayerOrContainerNameOrID [...]", "Check if a layer or container is mounted", (1, _U),
       (JSON,), "mounts:mounted"),
    _c("get-names getnames", "[options [...]] layerOrImageOrContainerNameOrID",
       "Get layer, image, or container name or names", (1, 1), (JSON,), "objects:get_names"),
    _c("add-names addnames", "[options [...]] imageOrContainerNameOrID",
       "Add layer, image, or container name or names", (1, _U), (NAMES, JSON), "objects:add_names"),
    _c("remove-names removenames", "[options [...]] imageOrContainerNameOrID",
       "Remove layer, image, or container name or names", (1, _U), (NAMES, JSON), "objects:remove_names"),
    _c("set-names setnames", "[options [...]] imageOrContainerNameOrID",
       "Set layer, image, or container name or names", (1, _U), (NAMES, JSON), "objects:set_names"),
    _c("shutdown", "", "Shut down layer storage", (0, 0), (JSON, FORCE), "maintenance:shutdown"),
    _c("status", "", "Check on graph driver status", (0, 0), (JSON,), "maintenance:status"),
    _c("unshare", "", "Run a command in a user namespace", (0, _U), (), "unshare:unshare_command"),
    _c("version", "", "Return containers-storage version information", (0, 0), (JSON,),
       "maintenance:version"),
    _c("wipe", "", "Wipe all layers, images, and containers", (0, 0), (JSON,), "maintenance:wipe"),
    _c("drivers", "[options [...]]", "List installed storage drivers and plugins (not in upstream)",
       (0, 0), (JSON,), "plugincmds:drivers", needs_store=False),
    _c("info", "[options [...]]",
       "Show the store: roots, driver, counts, disk use, plugins (not in upstream)", (0, 0), (
           Flag(("-format",), "format", "string", "Output format: yaml or json", "yaml"),
           Flag(("-layers",), "layers", "bool", "Add the layer tree with each layer's own and shared size"),
       ), "info:info"),
    _c("import-image", "[options [...]] [oci:|oci-archive:|docker-archive:]source[:reference]",
       "Import an image from an OCI layout or archive or a docker archive (not in upstream)", (1, 1), (
           NAMES,
           Flag(("-platform",), "platform", "string", "Platform to pick (os/arch[/variant])"),
           JSON,
       ), "imagecmds:import_image"),
    _c("export-image", "[options [...]] imageNameOrID [oci:|oci-archive:|docker-archive:]dest[:reference]",
       "Export an image to an OCI layout or archive or a docker archive (not in upstream)", (2, 2), (
           Flag(("-format",), "format", "string", "Format of a bare path: oci, oci-archive, docker-archive"),
           Flag(("-compress",), "compress", "string", "Compress layers: gzip or zstd (OCI; default: none)"),
           JSON,
       ), "imagecmds:export_image"),
)


def find(word: str) -> Command | None:
    for command in COMMANDS:
        if word in command.names:
            return command
    return None
