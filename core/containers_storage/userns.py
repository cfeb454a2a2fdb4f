"""Automatic user namespaces (upstream ``userns=auto``): pick host ID ranges for a new
container from the subordinate IDs of one user, avoiding every range another container
of the store already maps, sized from what the image uses.

ID sets are sorted lists of disjoint half-open intervals ``(start, end)``.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence

from .errors import ConfigError, NoAvailableIDs
from .idtools import IDMap, IDMaps

log = logging.getLogger(__name__)

Intervals = list[tuple[int, int]]

#: whose /etc/subuid and /etc/subgid ranges root's automatic namespaces use by default
ROOT_AUTO_USERNS_USER = "containers"
SUBUID_FILE = "/etc/subuid"
SUBGID_FILE = "/etc/subgid"
#: the overflow ID; images list a "nobody" that must not blow every namespace up to 65536
NOBODY = 65534


def normalize(intervals: Sequence[tuple[int, int]]) -> Intervals:
    out: Intervals = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(a: Intervals, b: Intervals) -> Intervals:
    out: Intervals = []
    for start, end in a:
        for bs, be in b:
            if be <= start or bs >= end:
                continue
            if bs > start:
                out.append((start, bs))
            start = max(start, be)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out


def size(intervals: Intervals) -> int:
    return sum(end - start for start, end in intervals)


def find_available(intervals: Intervals, n: int) -> Intervals:
    """The first ``n`` IDs of ``intervals``."""
    out: Intervals = []
    for start, end in intervals:
        if n <= 0:
            break
        end = min(end, start + n)
        out.append((start, end))
        n -= end - start
    if n > 0:
        raise NoAvailableIDs()
    return out


def zip_maps(host: Intervals, container: Intervals) -> IDMaps:
    """Pair host IDs with container IDs, in order, as ID maps."""
    out: list[IDMap] = []
    hosts, ctrs = list(host), list(container)
    while hosts and ctrs:
        (hs, he), (cs, ce) = hosts[0], ctrs[0]
        n = min(he - hs, ce - cs)
        out.append(IDMap(cs, hs, n))
        hosts[0], ctrs[0] = (hs + n, he), (cs + n, ce)
        if hosts[0][0] >= he:
            hosts.pop(0)
        if ctrs[0][0] >= ce:
            ctrs.pop(0)
    return tuple(out)


def host_ids(maps: Sequence[IDMap]) -> Intervals:
    return normalize([(m.host_id, m.host_id + m.size) for m in maps])


def container_ids(maps: Sequence[IDMap]) -> Intervals:
    return normalize([(m.container_id, m.container_id + m.size) for m in maps])


def available_ids(user: str, rootless: bool) -> tuple[Intervals, Intervals]:
    """Host IDs the namespaces may use: ``user``'s subordinate ranges (as root), or,
    inside a rootless user namespace, IDs 1.. as many as the user was given."""
    from .config import subordinate_ids

    sets: list[Intervals] = []
    for path in (SUBUID_FILE, SUBGID_FILE):
        try:
            sets.append(host_ids(subordinate_ids(user, path)))
        except ConfigError as exc:
            log.error("Cannot find mappings for user %r: %s", user, exc)
            sets.append([])
    uids, gids = sets
    if rootless:
        return [(1, size(uids) + 1)], [(1, size(gids) + 1)]
    return uids, gids


def _open_in_root(root: str, path: str) -> int:
    """Open ``path`` read-only as if ``root`` were ``/``: symlinks cannot lead out."""
    from .archive.rooted import RootedDir

    rooted = RootedDir(root)
    try:
        name = path
        for _ in range(40):
            parts = tuple(p.encode() for p in name.split("/") if p)
            try:
                return rooted.open_file(parts)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                parent = rooted.resolve(parts[:-1])
                target = os.readlink(parts[-1], dir_fd=rooted.fd(parent)).decode()
                name = target if target.startswith("/") else "/".join([*(p.decode() for p in parent), target])
        raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
    finally:
        rooted.close()


def _read_entries(root: str, default: str, override: str) -> list[list[str]]:
    """The colon-separated lines of a passwd/group file (``override`` from the host,
    else ``default`` inside ``root``); none when it cannot be read."""
    try:
        fd = os.open(override, os.O_RDONLY | os.O_CLOEXEC) if override else _open_in_root(root, default)
    except OSError:
        return []
    with open(fd, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]


def max_ids_in_files(root: str, passwd_file: str = "", group_file: str = "") -> int:
    """One more than the largest UID/GID the image's /etc/passwd and /etc/group name
    ("nobody" and "nogroup" aside), 0 when they name none."""
    top = 0
    for fields in _read_entries(root, "/etc/passwd", passwd_file):
        if len(fields) < 4 or fields[0] in ("nobody", "nogroup"):
            continue
        for value in (fields[2], fields[3]):
            if value.isdigit() and int(value) > top and int(value) != NOBODY:
                top = int(value) + 1
    for fields in _read_entries(root, "/etc/group", group_file):
        if len(fields) < 3 or fields[0] in ("nobody", "nogroup"):
            continue
        if fields[2].isdigit() and int(fields[2]) > top and int(fields[2]) != NOBODY:
            top = int(fields[2]) + 1
    return top


def auto_maps(
    wanted: int,
    available_uids: Intervals,
    available_gids: Intervals,
    used_uids: Sequence[IDMap],
    used_gids: Sequence[IDMap],
    additional_uids: Sequence[IDMap] = (),
    additional_gids: Sequence[IDMap] = (),
) -> tuple[IDMaps, IDMaps]:
    """Maps for container IDs ``0..wanted-1`` (minus those ``additional_*`` map
    themselves) onto the first free host IDs; the additional maps are appended."""
    out: list[IDMaps] = []
    for available, used, extra in (
        (available_uids, used_uids, additional_uids),
        (available_gids, used_gids, additional_gids),
    ):
        taken = host_ids([*used, *extra])
        targets = subtract([(0, wanted)], container_ids(extra))
        hosts = find_available(subtract(available, taken), size(targets))
        out.append((*zip_maps(hosts, targets), *extra))
    return out[0], out[1]
