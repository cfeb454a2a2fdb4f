"""Tar name cleaning (Go's ``filepath.Clean``) and confinement checks."""

from __future__ import annotations

from ..errors import UnsafeArchive


def go_clean(name: bytes) -> bytes:
    """Lexical cleaning exactly as Go's ``path.Clean``."""
    if not name:
        return b"."
    rooted = name.startswith(b"/")
    out: list[bytes] = []
    for part in name.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if out and out[-1] != b"..":
                out.pop()
            elif not rooted:
                out.append(part)
            continue
        out.append(part)
    joined = b"/".join(out)
    if rooted:
        return b"/" + joined
    return joined or b"."


def layer_parts(name: bytes) -> tuple[bytes, ...]:
    """Components of a tar name inside the layer root (``()`` is the root itself).

    Absolute names are taken relative to the root, as upstream joins them onto it;
    names that climb above the root are refused.
    """
    if b"\x00" in name:
        raise UnsafeArchive(f"{name!r}", message="NUL byte in entry name")
    plain = name.rstrip(b"/")
    if plain and not plain.startswith((b"/", b".")) and b"//" not in plain and b"/." not in plain:
        return tuple(plain.split(b"/"))  # already clean: the common case
    cleaned = go_clean(name)
    if cleaned == b".." or cleaned.startswith(b"../"):
        raise UnsafeArchive(f"{name.decode('utf-8', 'replace')!r} is outside of the layer root")
    cleaned = cleaned.lstrip(b"/")
    if cleaned in (b"", b"."):
        return ()
    return tuple(cleaned.split(b"/"))
