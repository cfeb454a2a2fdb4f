"""Overlay-specific behaviour: options, probing, layout files, additional stores, mount
counting, volatile mounts, metadata and status."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from containers_storage.drivers import mounts
from containers_storage.drivers.api import CreateOpts, DriverConfig, MountOpts
from containers_storage.errors import DriverLayerUnknown, IncompatibleFS, InvalidOption
from containers_storage_overlay import options as overlay_options
from containers_storage_overlay.driver import OverlayDriver
from containers_storage_overlay.layout import ID_LENGTH

from .conftest import DriverMaker


# -- options (config.md §7.1) ----------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("overlay.bogus=1", "overlay: Unknown option overlay.bogus"),
        ("noequals", "unable to parse key/value option: noequals"),
        (
            "overlay.imagestore=relative/dir",
            'overlay: image path "relative/dir" is not absolute.  Can not be relative',
        ),
        ("overlay.imagestore=/no/such/dir", "overlay: can't stat imageStore dir /no/such/dir"),
        ("overlay.mount_program=/no/such/prog", 'overlay: can\'t stat program "/no/such/prog"'),
        ("overlay.additionallayerstore=/tmp:ref:ref", 'contains "ref" option twice'),
        ("overlay.additionallayerstore=/tmp:foo", 'contains unknown option "foo"'),
        ("overlay.skip_mount_home=maybe", "invalid syntax"),
        ("overlay.size=lots", "invalid size"),
        ("overlay.inodes=-1", "invalid syntax"),
    ],
)
def test_bad_options_name_the_problem(option: str, message: str) -> None:
    with pytest.raises(InvalidOption) as info:
        overlay_options.parse([option])
    assert message in str(info.value)


def test_options_parse() -> None:
    o = overlay_options.parse(
        [
            "overlay.mountopt=nodev,metacopy=on",
            "overlay2.force_mask=shared",
            ".ignore_chown_errors=true",
            "override_kernel_check=1",
            "overlay.size=1.5G",
            "overlay.inodes=100",
            "overlay.imagestore=",
            "overlay.additionallayerstore=/tmp:ref",
        ]
    )
    assert o.mount_options == "nodev,metacopy=on" and o.force_mask == 0o755 and o.ignore_chown_errors
    assert o.quota_size == int(1.5 * 1024**3) and o.quota_inodes == 100 and o.image_stores == []
    assert o.layer_stores == [overlay_options.LayerStore("/tmp", True)]
    assert overlay_options.parse(["force_mask=private"]).force_mask == 0o700
    assert overlay_options.parse(["force_mask=750"]).force_mask == 0o750


def test_force_mask_needs_mount_program(driver_factory: DriverMaker) -> None:
    with pytest.raises(InvalidOption, match="'force_mask' is supported only with 'mount_program'"):
        driver_factory(("overlay.force_mask=shared",))


# -- probing ---------------------------------------------------------------------------
def test_overlay_over_overlay_is_incompatible(driver_factory: DriverMaker, scratch_dir: str) -> None:
    d = driver_factory()
    d.create("outer", None)
    merged = d.get("outer")
    try:
        cfg = DriverConfig("overlay", os.path.join(merged, "sub", "graph"), os.path.join(scratch_dir, "r2"))
        with pytest.raises(IncompatibleFS) as info:
            OverlayDriver.probe(cfg)
        assert str(info.value) == (
            "'overlay' is not supported over overlayfs, a mount_program is required: "
            "backing file system is unsupported for this graph driver"
        )
        assert not os.path.exists(os.path.join(merged, "sub"))  # probing changed nothing
        # as upstream: without fuse-overlayfs in PATH, init fails the same way ...
        saved = os.environ["PATH"]
        os.environ["PATH"] = "/nonexistent"
        try:
            with pytest.raises(IncompatibleFS, match="not supported over overlayfs"):
                OverlayDriver(cfg)
        finally:
            os.environ["PATH"] = saved
        # ... with it, fuse-overlayfs becomes the mount program
        if shutil.which("fuse-overlayfs"):
            cfg2 = DriverConfig("overlay", os.path.join(merged, "sub", "g2"), os.path.join(scratch_dir, "r3"))
            d2 = OverlayDriver(cfg2)
            assert d2.opts.mount_program == shutil.which("fuse-overlayfs")
            d2.cleanup()
    finally:
        d.put("outer")


def test_probe_passes_and_init_caches_features(driver_factory: DriverMaker, scratch_dir: str) -> None:
    cfg = DriverConfig("overlay", os.path.join(scratch_dir, "g"), os.path.join(scratch_dir, "r"))
    OverlayDriver.probe(cfg)
    assert not os.path.exists(cfg.root)
    d = driver_factory(root=cfg.root, run_root=cfg.run_root)
    status = dict(d.status())
    assert list(dict(d.status())) == [
        "Backing Filesystem",
        "Supports d_type",
        "Native Overlay Diff",
        "Using metacopy",
        "Supports shifting",
        "Supports volatile",
    ]
    assert status["Backing Filesystem"] == "extfs" and status["Supports d_type"] == "true"
    assert status["Native Overlay Diff"] == "true"
    run_home = os.path.join(cfg.run_root, "overlay")
    assert {"overlay-true", "metacopy()-false", "native-diff()-true", "volatile-true"} <= set(
        os.listdir(run_home)
    )
    with open(os.path.join(cfg.root, "overlay", ".has-mount-program")) as f:
        assert f.read() == "false"
    assert not [
        n for n in os.listdir(os.path.join(cfg.root, "overlay")) if n.startswith(("compat", "native"))
    ]


# -- layout (on-disk.md §13) -----------------------------------------------------------
def test_layout_files(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("base", None)
    d.create("child", "base")
    d.create("grandchild", "child")
    home = d.home
    assert stat.S_IMODE(os.stat(os.path.join(home, "l")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(home, "base")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(home, "base", "diff")).st_mode) == 0o555
    assert os.path.isdir(os.path.join(home, "base", "empty"))
    assert not os.path.exists(os.path.join(home, "base", "lower"))
    assert not os.path.exists(os.path.join(home, "child", "empty"))
    links = {}
    for layer in ("base", "child", "grandchild"):
        with open(os.path.join(home, layer, "link")) as f:
            link = f.read()
        assert len(link) == ID_LENGTH and link.isalnum() and link.upper() == link
        assert os.readlink(os.path.join(home, "l", link)) == f"../{layer}/diff"
        links[layer] = link
    with open(os.path.join(home, "grandchild", "lower")) as f:
        assert f.read() == f"l/{links['child']}:l/{links['base']}"
    assert stat.S_IMODE(os.stat(os.path.join(home, "child", "lower")).st_mode) == 0o644
    meta = d.metadata("grandchild")
    assert meta["UpperDir"] == os.path.join(home, "grandchild", "diff")
    assert meta["LowerDir"] == f"{home}/child/diff:{home}/base/diff"
    assert "LowerDir" not in d.metadata("base")
    assert sorted(d.list_layers()) == ["base", "child", "grandchild"]
    d.remove("grandchild")
    assert not os.path.lexists(os.path.join(home, "l", links["grandchild"]))
    d.remove("grandchild")  # missing is fine


def test_create_over_leftover_directory(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("x", None)
    with open(os.path.join(d.home, "x", "link")) as f:
        old = f.read()
    d.create("x", None)
    assert not os.path.lexists(os.path.join(d.home, "l", old))
    assert len(os.listdir(os.path.join(d.home, "l"))) == 1


# -- mounting ---------------------------------------------------------------------------
def test_mount_counting_and_other_instances(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("base", None)
    d.create_read_write("top", "base")
    p1 = d.get("top")
    assert d.get("top") == p1
    d.put("top")
    assert mounts.is_mounted(p1)
    # a second driver on the same home sees the mount and counts it
    d2 = driver_factory(root=os.path.dirname(d.home), run_root=os.path.dirname(d.run_home))
    assert d2.get("top") == p1
    d2.put("top")
    assert mounts.is_mounted(p1)
    d.put("top")
    assert not mounts.is_mounted(p1) and not os.path.exists(p1)
    with pytest.raises(FileNotFoundError):
        d.get("nope")
    with pytest.raises(FileNotFoundError):
        d.put("nope")


@pytest.mark.parametrize(("mountopt", "message"), [
    ("garbage", 'overlay.mountopt: unknown mount option "garbage"'),
    ("metacopy=maybe", 'overlay.mountopt: mount option "metacopy" takes one of off, on, not "maybe"'),
    ("upperdir=/x", 'overlay.mountopt: mount option "upperdir" is set by the driver'),
])
def test_mount_options_are_checked_at_start(mountopt: str, message: str) -> None:
    """Upstream lets these through and every layer mount then fails."""
    with pytest.raises(InvalidOption) as info:
        overlay_options.parse([f"overlay.mountopt={mountopt}"])
    assert str(info.value) == message


def test_mount_program_options_are_its_own() -> None:
    o = overlay_options.parse(["overlay.mountopt=squash_to_root", "overlay.mount_program=/bin/true"])
    assert o.mount_options == "squash_to_root"


def test_mount_options_the_kernel_refuses_stop_the_start(driver_factory: DriverMaker) -> None:
    with pytest.raises(InvalidOption) as info:
        driver_factory(("overlay.mountopt=index=off,nfs_export=on",))
    assert str(info.value) == (
        "overlay.mountopt=index=off,nfs_export=on: the kernel refuses these mount options: invalid argument"
    )


def test_metacopy_the_kernel_refuses_is_dropped_as_upstream(driver_factory: DriverMaker) -> None:
    d = driver_factory(("overlay.mountopt=metacopy=on,redirect_dir=off",))
    assert dict(d.status())["Using metacopy"] == "false"
    d.create("base", None)
    try:
        d.get("base")
    finally:
        d.put("base")


def test_mount_options(driver_factory: DriverMaker) -> None:
    d = driver_factory(("overlay.mountopt=nodev,metacopy=on",))
    assert dict(d.status())["Using metacopy"] == "true"  # metacopy=on is honoured by this kernel
    d.create("base", None)
    p = d.get("base")
    try:
        m = mounts.find_mount(p)
        assert m is not None and "nodev" in m.options.split(",")
        assert "metacopy=on" in m.super_options
    finally:
        d.put("base")
    p = d.get("base", MountOpts(options=("ro", "noexec")))
    try:
        m = mounts.find_mount(p)
        assert m is not None
        assert {"ro", "noexec"} <= set(m.options.split(",")) and "nodev" not in m.options.split(",")
        # per-call options replace mountopt, but a configured metacopy=on is kept
        assert "upperdir" not in m.super_options and "metacopy=on" in m.super_options
    finally:
        d.put("base")


def test_volatile_mount(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("base", None)
    p = d.get("base", MountOpts(volatile=True))
    try:
        m = mounts.find_mount(p)
        assert m is not None and "volatile" in m.super_options
    finally:
        d.put("base")
    # a volatile mount leaves work/work/incompat/volatile, removed before the next mount
    p = d.get("base")
    d.put("base")


def test_storage_opt_on_read_only_create(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    with pytest.raises(InvalidOption, match="--storage-opt size is only supported for ReadWrite Layers"):
        d.create("x", None, CreateOpts(storage_opt={"size": "1G"}))


# -- additional image stores and layer stores ------------------------------------------
def test_additional_image_store(driver_factory: DriverMaker, scratch_dir: str) -> None:
    ro = driver_factory(
        root=os.path.join(scratch_dir, "ro-store"), run_root=os.path.join(scratch_dir, "ro-run")
    )
    ro.create("image", None)
    p = ro.get("image")
    with open(os.path.join(p, "from-ro"), "w") as f:
        f.write("ro")
    ro.put("image")
    d = driver_factory((f"overlay.imagestore={os.path.join(scratch_dir, 'ro-store')}",))
    assert d.additional_image_stores() == [os.path.join(scratch_dir, "ro-store")]
    assert d.exists("image") and "image" not in d.list_layers()
    p = d.get("image")  # layers of an additional store mount read-only
    try:
        with open(os.path.join(p, "from-ro")) as f:
            assert f.read() == "ro"
        with pytest.raises(OSError), open(os.path.join(p, "x"), "w"):
            pass
    finally:
        d.put("image")
    d.create_read_write("ctr", "image")
    p = d.get("ctr")
    try:
        with open(os.path.join(p, "from-ro")) as f:
            assert f.read() == "ro"
        with open(os.path.join(p, "mine"), "w") as f:
            f.write("rw")
    finally:
        d.put("ctr")
    assert os.path.exists(os.path.join(d.home, "ctr", "diff", "mine"))


def test_additional_layer_store(driver_factory: DriverMaker, scratch_dir: str) -> None:
    als = os.path.join(scratch_dir, "als")
    ref = "example.com/image:latest"
    import base64

    digest = "sha256:" + "ab" * 32
    target = os.path.join(als, base64.standard_b64encode(ref.encode()).decode(), digest)
    os.makedirs(os.path.join(target, "diff", "etc"))
    with open(os.path.join(target, "diff", "etc", "hello"), "w") as f:
        f.write("from als")
    with open(os.path.join(target, "info"), "w") as f:
        json.dump({"id": "x", "diff-digest": digest}, f)
    with open(os.path.join(target, "blob"), "wb") as f:
        f.write(b"blob")
    d = driver_factory((f"overlay.additionallayerstore={als}:ref",))
    with pytest.raises(DriverLayerUnknown, match="unknown layer"):
        d.lookup_additional_layer("sha256:" + "cd" * 32, ref)
    layer = d.lookup_additional_layer(digest, ref)
    with layer.info() as f:
        assert json.load(f)["diff-digest"] == digest
    with layer.blob() as f:
        assert f.read() == b"blob"
    layer.create_as("from-als", None)
    assert os.readlink(os.path.join(d.home, "from-als", "diff")) == os.path.join(target, "diff")
    with open(os.path.join(d.home, "from-als", "additionallayer")) as f:
        assert f.read() == target
    d.create_read_write("ctr", "from-als")
    p = d.get("ctr")
    try:
        with open(os.path.join(p, "etc", "hello")) as f:
            assert f.read() == "from als"
    finally:
        d.put("ctr")
    assert [
        (c.path, int(c.kind)) for c in d.changes("from-als", d.config.id_mappings, None, d.config.id_mappings)
    ] == [
        ("/etc", 1),
        ("/etc/hello", 1),
    ]
    layer.release()
    d.remove("ctr")
    d.remove("from-als")
    # release notifications rmdir the (non-empty) layer dir: the store keeps its content
    assert os.path.isdir(target)


def test_remove_while_mounted_forgets_the_mount(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("x", None)
    p = d.get("x")
    d.remove("x")
    assert not mounts.is_mounted(p) and not d.exists("x")
    d.create("x", None)
    p = d.get("x")  # mounted afresh, not taken for still mounted
    try:
        assert mounts.is_mounted(p)
    finally:
        d.put("x")
