"""The btrfs driver's options (config.md §7.3) and per-layer ``size`` option, with
upstream's error texts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from containers_storage.drivers.options import option_value, parse_options, parse_size
from containers_storage.errors import InvalidOption

#: docker/go-units' decimal abbreviations, as upstream prints sizes in its errors
_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


@dataclass(frozen=True, slots=True)
class BtrfsOptions:
    #: smallest allowed per-layer size; non-zero turns quotas on at init
    min_space: int = 0


def parse_driver_options(options: Sequence[str]) -> BtrfsOptions:
    min_space = 0
    for original, (key, value) in zip(options, parse_options(options), strict=True):
        if key == "btrfs.min_space":
            min_space = option_value(key, value, parse_size)
        elif key == "btrfs.mountopt":
            raise InvalidOption(message="btrfs driver does not support mount options")
        else:
            raise InvalidOption(message=f'unknown option {key} ("{original}")')
    return BtrfsOptions(min_space=min_space)


def human_size(size: float) -> str:
    """go-units HumanSize: four significant digits, decimal units (``52.43MB``)."""
    i = 0
    while size >= 1000 and i < len(_DECIMAL_UNITS) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{_DECIMAL_UNITS[i]}"


def _go_map(m: Mapping[str, str]) -> str:
    return "map[" + " ".join(f'"{k}":"{v}"' for k, v in sorted(m.items())) + "]"


def requested_size(storage_opt: Mapping[str, str], min_space: int) -> int | None:
    """The per-layer ``size`` in bytes (None when not asked for), validated before anything
    is created."""
    size: int | None = None
    for key, value in storage_opt.items():
        if key.lower() != "size":
            raise InvalidOption(message=f"unknown option {key.lower()} ({_go_map(storage_opt)})")
        size = parse_size(value)
    if size is None:
        return None
    if size <= 0:
        raise InvalidOption(message=f"btrfs: invalid storage size: {human_size(size)}")
    if min_space > 0 and size < min_space:
        raise InvalidOption(message=f"btrfs: storage size cannot be less than {human_size(min_space)}")
    return size
