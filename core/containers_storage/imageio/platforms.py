"""Which image of a multi-platform index to import.

The wanted platform is the host's (as Go names it) unless the caller names one
(``os/arch[/variant]``). As containers/image does: a matching variant is preferred,
compatible older variants next (arm v7 runs v6 and v5 images), then an entry without a
variant; other operating systems and architectures never match.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidReference, PlatformNotFound

_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i686": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8l": "arm",
    "armv7l": "arm",
    "armv6l": "arm",
    "armv5tel": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "loongarch64": "loong64",
}
_ARM_VARIANTS = ("v8", "v7", "v6", "v5")


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidReference(f"platform {text!r}", message="expected OS/ARCH[/VARIANT]")
        return cls(*parts)

    @classmethod
    def from_json(cls, value: object) -> Platform | None:
        if not isinstance(value, dict):
            return None
        os_, arch, variant = value.get("os"), value.get("architecture"), value.get("variant", "")
        if not isinstance(os_, str) or not isinstance(arch, str) or not isinstance(variant, str):
            return None
        return cls(os_, arch, variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host() -> Platform:
    machine = _platform.machine().lower()
    arch = _GO_ARCH.get(machine, machine)
    variant = ""
    if arch == "arm64":
        variant = "v8"
    elif arch == "arm":
        variant = "v" + machine[4] if machine.startswith("armv") and machine[4:5].isdigit() else "v7"
    return Platform("linux", arch, variant)


def _variants(wanted: Platform) -> list[str]:
    """Variants acceptable for ``wanted``, best first; "" (no variant given) last."""
    if not wanted.variant:
        return [""]
    out = [wanted.variant]
    if wanted.architecture == "arm" and wanted.variant in _ARM_VARIANTS:
        out.extend(v for v in _ARM_VARIANTS[_ARM_VARIANTS.index(wanted.variant) + 1 :] if v != "v8")
    out.append("")
    return out


def choose(candidates: Sequence[Platform | None], wanted: Platform, where: str) -> int:
    """The index of the best entry for ``wanted``; :class:`PlatformNotFound` listing
    what the index offers otherwise."""
    for variant in _variants(wanted):
        for i, p in enumerate(candidates):
            if (
                p is not None
                and p.os == wanted.os
                and p.architecture == wanted.architecture
                and (p.variant == variant or (not wanted.variant and not variant))
            ):
                return i
    offered = ", ".join(str(p) if p is not None else "(no platform)" for p in candidates) or "nothing"
    raise PlatformNotFound(message=f"no image for {wanted} in {where}; it has: {offered}")
