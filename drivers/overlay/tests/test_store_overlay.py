"""The overlay driver under the core's Store: upstream's fixture store (tar-split replay
through the driver's file getter, container mounts) and a store built from the fixture's
inputs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator

import pytest

from containers_storage.config import StoreOptions
from containers_storage.drivers import mounts
from containers_storage.store import DiffOptions, Store, get_store

from .conftest import overlay_unavailable
from .test_fixture_store import BASE_GZ, CHILD, FIXTURES, MOD, PACK

INPUTS = os.path.join(FIXTURES, "go-store-inputs")
CTR = "324191614489a1606e8137aa142b686d7ca4ea4f7fcf4b74f525b7b6674463d1"


def _open(root: str) -> Store:
    return get_store(StoreOptions(graph_root=f"{root}/graph", run_root=f"{root}/run", driver_name="overlay"))


@pytest.fixture
def fixture_store(scratch_dir: str) -> Iterator[Store]:
    reason = overlay_unavailable()
    if reason or not os.path.exists(PACK):
        pytest.skip(reason or f"{PACK} is missing")
    zstd = subprocess.Popen(["zstd", "-dc", PACK], stdout=subprocess.PIPE)
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", scratch_dir],
        stdin=zstd.stdout,
        check=True,
    )
    assert zstd.wait() == 0
    with _open(scratch_dir) as s:
        yield s
        s.shutdown(force=True)


def _sha(stream_owner: Store, from_: str, to: str) -> str:
    with stream_owner.diff(from_, to, DiffOptions(compression=0)) as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_imported_layers_replay_their_tar(fixture_store: Store) -> None:
    """tar-split replay reads file contents through the overlay file getter (own diff,
    then lowers): base-gz gives base.tar and child-whiteouts child.tar, byte for byte."""
    with open(os.path.join(INPUTS, "base.tar"), "rb") as f:
        assert _sha(fixture_store, "", BASE_GZ) == hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(INPUTS, "child.tar"), "rb") as f:
        assert _sha(fixture_store, "", CHILD) == hashlib.sha256(f.read()).hexdigest()


def test_container_mount_counts_and_content(fixture_store: Store) -> None:
    path = fixture_store.mount(CTR)
    try:
        assert mounts.is_mounted(path)
        assert fixture_store.mounted(CTR) == 1
        assert os.path.exists(os.path.join(path, "container-file"))
        assert not os.path.exists(os.path.join(path, "home", "app"))
        assert fixture_store.mount(CTR) == path
        assert fixture_store.mounted(CTR) == 2
        assert fixture_store.unmount(CTR) is True
    finally:
        fixture_store.unmount(CTR, force=True)
    assert not mounts.is_mounted(path)


def test_changes_match_upstream_through_the_store(fixture_store: Store) -> None:
    with open(os.path.join(FIXTURES, "expected-overlay.json"), encoding="utf-8") as f:
        expected = json.load(f)
    for lid in (CHILD, MOD):
        want = json.loads(expected[f"changes --json {lid}"]["stdout"])
        got = fixture_store.changes("", lid)
        assert Counter((c.path, int(c.kind)) for c in got) == Counter((w["Path"], w["Kind"]) for w in want)
    # mod-layer against base-gz is not its direct parent: the generic diff answers
    want = json.loads(expected[f"changes --json {MOD} {BASE_GZ}"]["stdout"])
    got = fixture_store.changes(BASE_GZ, MOD)
    assert Counter((c.path, int(c.kind)) for c in got) == Counter((w["Path"], w["Kind"]) for w in want)


def test_new_store_imports_and_round_trips(scratch_dir: str) -> None:
    reason = overlay_unavailable()
    if reason:
        pytest.skip(reason)
    with _open(os.path.join(scratch_dir, "new")) as s:
        try:
            with open(os.path.join(INPUTS, "base.tar.zst"), "rb") as f:
                base, _ = s.put_layer("", "", ["base"], diff=f)
            with open(os.path.join(INPUTS, "child.tar"), "rb") as f:
                child, _ = s.put_layer("", base.id, ["child"], diff=f)
            with open(os.path.join(INPUTS, "base.tar"), "rb") as f:
                assert _sha(s, "", base.id) == hashlib.sha256(f.read()).hexdigest()
            with open(os.path.join(INPUTS, "child.tar"), "rb") as f:
                assert _sha(s, "", child.id) == hashlib.sha256(f.read()).hexdigest()
            home = os.path.join(scratch_dir, "new", "graph", "overlay")
            # the child's tar whiteouts are kernel whiteouts on disk
            st = os.lstat(os.path.join(home, child.id, "diff", "remove-me"))
            assert st.st_rdev == 0 and (st.st_mode & 0o170000) == 0o020000
            got = sorted((c.path, int(c.kind)) for c in s.changes("", child.id))
            assert ("/opaque-dir", 2) in got and ("/remove-me", 2) in got
        finally:
            s.shutdown(force=True)
