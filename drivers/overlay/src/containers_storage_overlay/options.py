"""The overlay driver's options (config.md §7.1), validated with upstream's wording."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from containers_storage.drivers.options import (
    check_mount_options,
    option_value,
    parse_bool,
    parse_options,
    parse_size,
    strip_prefix,
)
from containers_storage.errors import InvalidOption


@dataclass(frozen=True, slots=True)
class LayerStore:
    """One additional layer store (on-disk.md §14)."""

    path: str
    with_reference: bool = False


@dataclass(slots=True)
class OverlayOptions:
    mount_options: str = ""
    mount_program: str = ""
    skip_mount_home: bool = False
    ignore_chown_errors: bool = False
    force_mask: int | None = None
    quota_size: int = 0
    quota_inodes: int = 0
    image_stores: list[str] = field(default_factory=list)
    layer_stores: list[LayerStore] = field(default_factory=list)


def _store_dirs(value: str, what: str) -> list[str]:
    out = []
    for raw in value.split(","):
        store = os.path.normpath(raw) if raw else "."
        if not os.path.isabs(store):
            raise InvalidOption(message=f'overlay: {what} "{store}" is not absolute.  Can not be relative')
        try:
            st = os.stat(store)
        except OSError as e:
            label = "imageStore dir" if what == "image path" else "additionallayerstore dir:"
            raise InvalidOption(message=f"overlay: can't stat {label} {store}: {e.strerror}") from None
        import stat as stat_mod

        if not stat_mod.S_ISDIR(st.st_mode):
            raise InvalidOption(message=f'overlay: {what} "{store}" must be a directory')
        out.append(store)
    return out


def parse_mask(value: str) -> int:
    if value == "shared":
        return 0o755
    if value == "private":
        return 0o700
    try:
        return int(value, 8)
    except ValueError:
        raise InvalidOption(message=f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def parse_uint(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise InvalidOption(message=f'strconv.ParseUint: parsing "{value}": invalid syntax')
    return int(value)


#: what the kernel's overlay takes in ``mountopt`` besides the generic mount flags
#: (fs/overlayfs/params.c): name -> allowed values, None for a bare word
KERNEL_MOUNT_WORDS: dict[str, tuple[str, ...] | None] = {
    "default_permissions": None,
    "userxattr": None,
    "volatile": None,
    "redirect_dir": ("on", "off", "follow", "nofollow"),
    "index": ("on", "off"),
    "uuid": ("on", "off", "null", "auto"),
    "nfs_export": ("on", "off"),
    "xino": ("on", "off", "auto"),
    "metacopy": ("on", "off"),
    "verity": ("on", "off", "require"),
}
#: the layer directories: every mount sets them itself
_LAYER_DIR_WORDS = ("lowerdir", "lowerdir+", "upperdir", "workdir", "datadir+")


def parse(options: Iterable[str]) -> OverlayOptions:
    """Parse ``key=value`` driver options; unknown keys and values that do not parse are
    errors naming the option. Without a mount program, every ``mountopt`` word must be one
    the kernel's overlay knows (with one, the program's own options are its business)."""
    o = OverlayOptions()
    mountopt_key = ""
    for key, value in parse_options(options):
        k = strip_prefix(strip_prefix(strip_prefix(key, "overlay."), "overlay2."), ".")
        if k == "override_kernel_check":
            continue
        if k == "mountopt":
            o.mount_options, mountopt_key = value, key
        elif k == "size":
            o.quota_size = option_value(key, value, parse_size)
        elif k == "inodes":
            o.quota_inodes = option_value(key, value, parse_uint)
        elif k in ("imagestore", "additionalimagestore"):
            if value:
                o.image_stores.extend(_store_dirs(value, "image path"))
        elif k == "additionallayerstore":
            if value:
                o.layer_stores.extend(_layer_stores(value))
        elif k == "mount_program":
            if value:
                try:
                    os.stat(value)
                except OSError as e:
                    raise InvalidOption(
                        message=f'overlay: can\'t stat program "{value}": {e.strerror}'
                    ) from None
            o.mount_program = value
        elif k == "skip_mount_home":
            o.skip_mount_home = option_value(key, value, parse_bool)
        elif k == "ignore_chown_errors":
            o.ignore_chown_errors = option_value(key, value, parse_bool)
        elif k == "force_mask":
            o.force_mask = option_value(key, value, parse_mask)
        else:
            raise InvalidOption(message=f"overlay: Unknown option {key}")
    if o.mount_options and not o.mount_program:
        check_mount_options(mountopt_key, o.mount_options, KERNEL_MOUNT_WORDS, _LAYER_DIR_WORDS)
    return o


def _layer_stores(value: str) -> list[LayerStore]:
    out = []
    for spec in value.split(","):
        path, *flags = spec.split(":")
        path = os.path.normpath(path) if path else "."
        if not os.path.isabs(path):
            raise InvalidOption(
                message=f'overlay: additionallayerstore path "{path}" is not absolute.  Can not be relative'
            )
        if not os.path.isdir(path):
            if not os.path.exists(path):
                raise InvalidOption(message=f"overlay: can't stat additionallayerstore dir: {path}")
            raise InvalidOption(message=f'overlay: additionallayerstore path "{path}" must be a directory')
        with_ref = False
        for flag in flags:
            if flag != "ref":
                raise InvalidOption(
                    message=f'overlay: additionallayerstore config "{path}" contains unknown option "{flag}"'
                )
            if with_ref:
                raise InvalidOption(
                    message=f'overlay: additionallayerstore config of "{path}" contains "ref" option twice'
                )
            with_ref = True
        out.append(LayerStore(path, with_ref))
    return out


def parse_storage_opt(storage_opt: dict[str, str] | Iterable[tuple[str, str]]) -> tuple[int, int]:
    """Per-layer ``size``/``inodes`` (create options) → (bytes, inodes)."""
    items = storage_opt.items() if isinstance(storage_opt, dict) else storage_opt
    size = inodes = 0
    for key, value in items:
        k = key.lower()
        if k == "size":
            size = option_value(k, value, parse_size)
        elif k == "inodes":
            inodes = option_value(k, value, parse_uint)
        else:
            raise InvalidOption(message=f"unknown option {k}")
    return size, inodes
