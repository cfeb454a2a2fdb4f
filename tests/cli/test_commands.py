"""Every command on a fresh vfs store: output shapes, streams and exit statuses of cli.md §5."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from .conftest import FIXTURES, Store, run_main

BASE_TAR = FIXTURES / "go-store-inputs" / "base.tar"
CHILD_TAR = FIXTURES / "go-store-inputs" / "child.tar"
L1 = "1" * 64
L2 = "2" * 64
IMG = "a" * 64
CTR = "c" * 64


def _base_layer(store: Store, *extra: str) -> None:
    r = store("import-layer", "--id", L1, "-n", "base", "-f", str(BASE_TAR), *extra)
    assert r.status == 0, r.stderr


def test_empty_store_listings(empty_store: Store) -> None:
    assert empty_store("layers", "--json").stdout == "null\n"
    assert empty_store("images", "--json").stdout == "null\n"
    assert empty_store("containers", "--json").stdout == "[]\n"
    for cmd in ("layers", "images", "containers", "version"):
        r = empty_store(cmd)
        assert (r.status, r.stdout) == (0, ""), cmd
    assert empty_store("version", "--json").stdout == "[]\n"


def test_create_layer_text_and_json(empty_store: Store) -> None:
    r = empty_store("create-layer", "--id", L1, "-n", "one", "--name", "uno")
    assert (r.status, r.stdout) == (0, f"{L1}\n\tone\n\tuno\n")
    r = empty_store("createlayer", "-j", "-i", L2, L1)
    record = json.loads(r.stdout)
    assert record["id"] == L2 and record["parent"] == L1 and "names" not in record
    assert r.stdout.endswith("}\n") and ", " not in r.stdout


def test_create_layer_errors(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1, "-n", "one")
    r = empty_store("create-layer", "--id", L1)
    assert r.status == 1 and "that ID is already in use" in r.stderr and r.stderr[-1] == "\n"
    r = empty_store("create-layer", "-n", "one")
    assert r.status == 1 and "that name is already in use" in r.stderr
    r = empty_store("create-layer", "no-such-parent")
    assert (r.status, r.stderr.strip().endswith("layer not known")) == (1, True)
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("flags", "message"), [
    (["--hostuidmap", "--uidmap", "0:100000:65536"], "host uid map specified along with UID mapping\n"),
    (["--hostgidmap", "--gidmap", "0:100000:65536"], "host gid map specified along with GID mapping\n"),
    (["--uidmap", "x"], 'invalid value "x" for flag --uidmap: '
     'initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: ["x"]\n'),
    (["--gidmap", "1:2"], 'invalid value "1:2" for flag --gidmap: '
     'initializing ID mappings: gid setting is malformed expected ["uint32:uint32:uint32"]: ["1:2"]\n'),
])
def test_id_mapping_flag_errors(empty_store: Store, flags: list[str], message: str) -> None:
    r = empty_store("create-layer", *flags)
    assert (r.status, r.stderr) == (1, message)


def test_layer_with_id_maps_text(empty_store: Store) -> None:
    r = empty_store("create-layer", "--id", L1, "--uidmap", "0:100000:65536", "--gidmap", "0:200000:1000")
    assert r.status == 0, r.stderr
    text = empty_store("layer", L1).stdout
    if "UID mapping" in text:  # drivers that shift IDs at mount time record no maps
        assert "UID mapping: (container=0, host=100000, size=65536)\n" in text
        assert "GID mapping: (container=0, host=200000, size=1000)\n" in text


def test_import_layer_and_diff_round_trip(empty_store: Store) -> None:
    _base_layer(empty_store)
    record = json.loads(empty_store("layer", "--json", "base").stdout)[0]
    digest = "sha256:" + hashlib.sha256(BASE_TAR.read_bytes()).hexdigest()
    assert record["diff-digest"] == digest and record["diff-size"] == BASE_TAR.stat().st_size
    r = empty_store("diff", "-u", "base")
    assert r.status == 0 and r.out == BASE_TAR.read_bytes()
    r = empty_store("diff", "--gzip", L1)
    assert gzip.decompress(r.out) == BASE_TAR.read_bytes()
    assert empty_store("diffsize", "base").stdout.strip().isdigit()
    r = empty_store("diff", "-b", L1)
    assert (r.status, r.stderr) == (1, "unsupported compression format tar.bz2\n")


def test_diff_to_file_and_no_progress_off_terminal(empty_store: Store, tmp_path: Path) -> None:
    _base_layer(empty_store)
    out = tmp_path / "diff.tar"
    r = empty_store("diff", "-u", "-f", str(out), L1)
    assert (r.status, r.out, r.err) == (0, b"", b"")
    assert out.read_bytes() == BASE_TAR.read_bytes()


def test_import_layer_from_stdin_and_bad_input(empty_store: Store) -> None:
    r = empty_store("import-layer", "-n", "from-stdin", stdin=BASE_TAR.read_bytes())
    assert r.status == 0 and r.err == b""
    r = empty_store("import-layer", "-n", "junk", stdin=b"this is not a tar stream at all" * 40)
    assert r.status == 1
    assert "unexpected EOF" in r.stderr or "invalid tar header" in r.stderr
    assert "junk" not in empty_store("layers").stdout


def test_import_layer_missing_file(empty_store: Store, tmp_path: Path) -> None:
    r = empty_store("import-layer", "-f", str(tmp_path / "nope.tar"))
    assert (r.status, r.stderr) == (1, f"open {tmp_path / 'nope.tar'}: no such file or directory\n")


def test_applydiff_and_changes(empty_store: Store) -> None:
    _base_layer(empty_store)
    empty_store("create-layer", "--id", L2, L1)
    r = empty_store("applydiff", "-f", str(CHILD_TAR), L2)
    assert (r.status, r.stdout) == (0, ""), r.stderr
    lines = sorted(empty_store("changes", L2).stdout.splitlines())
    assert 'Add "/etc/added-by-child"' in lines and 'Delete "/remove-me"' in lines
    changes = json.loads(empty_store("changes", "--json", L2).stdout)
    assert {"Path": "/remove-me", "Kind": 2} in changes
    r = empty_store("applydiff", L2, stdin=b"\x00garbage")
    assert r.status == 1


def test_layer_lookup_and_flags_after_positionals(empty_store: Store) -> None:
    _base_layer(empty_store)
    r = empty_store("layer", L1, "--json")
    assert r.status == 1  # "--json" is a second (unknown) layer reference
    assert r.stdout == f"ID: {L1}\nName: base\n"
    assert json.loads(empty_store("layer", "-j", L1[:12]).stdout)[0]["id"] == L1
    r = empty_store("layer", "--json", "nope")
    assert (r.status, r.stdout) == (1, "[]\n")


def test_global_flags_after_the_command(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    r = run_main("layers", "--quick", "-g", empty_store.graph, "-R", empty_store.run, "-s", "vfs")
    assert (r.status, r.stdout) == (0, f"{L1}\n"), r.stderr + r.stdout


def test_layers_listing_and_tree(empty_store: Store) -> None:
    _base_layer(empty_store)
    empty_store("create-layer", "--id", L2, "-n", "top", L1)
    empty_store("create-image", "--id", IMG, "-n", "img:1", L2)
    r = empty_store("create-container", "--id", CTR, "-n", "ctr", IMG)
    assert r.status == 0, r.stderr
    ctr_layer = json.loads(empty_store("container", "--json", CTR).stdout)[0]["layer"]
    text = empty_store("layers").stdout
    assert f"{L2}\n\tname: top\n\timage: {IMG}\n\t\tname: img:1\n" in text
    assert f"{ctr_layer}\n\tcontainer: {CTR}\n\t\tname: ctr\n" in text
    assert empty_store("layers", "-q").stdout.splitlines() == [L1, L2, ctr_layer]
    tree = empty_store("layers", "--tree").stdout
    assert tree == (
        f"(base)\n└─{L1}\n  name: base\n  └─{L2}\n    name: top\n    image: {IMG}\n    image name: img:1\n"
        f"    └─{ctr_layer}\n      container: {CTR}\n      container name: ctr\n"
    )


def test_images_and_image_data(empty_store: Store, tmp_path: Path) -> None:
    _base_layer(empty_store)
    r = empty_store("create-image", "--id", IMG, "-n", "example/one:latest", "-m", "meta", L1)
    assert (r.status, r.stdout) == (0, f"{IMG}\n\texample/one:latest\n"), r.stderr
    manifest = b'{"schemaVersion":2}'
    src = tmp_path / "manifest.json"
    src.write_bytes(manifest)
    assert empty_store("set-image-data", "-f", str(src), IMG, "manifest").status == 0
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert empty_store("get-image-data-digest", IMG, "manifest").stdout == f"{digest}\n"
    assert empty_store("get-image-data-size", IMG, "manifest").stdout == f"{len(manifest)}\n"
    assert empty_store("get-image-data", IMG, "manifest").out == manifest
    assert empty_store("list-image-data", IMG).stdout == "manifest\n"
    assert empty_store("images").stdout == (
        f"{IMG}\n\tname: example/one:latest\n\tdigest: {digest}\n\tdata: manifest\n"
    )
    text = empty_store("image", "example/one:latest").stdout
    assert text.startswith(f"ID: {IMG}\nName: example/one:latest\nTop Layer: {L1}\nDigest: {digest}\n"
                           "Data: manifest\nSize: ")
    assert json.loads(empty_store("images-by-digest", "--json", digest).stdout)[0]["id"] == IMG
    assert empty_store("images-by-digest", "-q", digest).stdout == f"{IMG}\n"
    r = empty_store("images-by-digest", "--json", "sha256:" + "0" * 64)
    assert (r.status, r.stdout) == (0, "[]\n")
    r = empty_store("images-by-digest", "not-a-digest")
    assert (r.status, r.stderr) == (1, "invalid checksum digest format\n")
    r = empty_store("get-image-data", IMG, "missing")
    assert r.status == 1 and r.stderr.endswith("file does not exist\n")
    r = empty_store("image", "nope")
    assert (r.status, r.stdout) == (1, "")


def test_image_data_output_file_is_created_first(empty_store: Store, tmp_path: Path) -> None:
    empty_store("create-image", "--id", IMG)
    out = tmp_path / "out"
    r = empty_store("get-image-data", "-f", str(out), IMG, "missing")
    assert r.status == 1 and out.exists() and out.read_bytes() == b""


def test_containers_and_container_data(empty_store: Store) -> None:
    _base_layer(empty_store)
    empty_store("create-image", "--id", IMG, L1)
    r = empty_store("create-container", "--id", CTR, "-n", "one", "-n", "two", IMG)
    assert (r.status, r.stdout) == (0, f"{CTR}\n\tone\ttwo"), r.stderr
    assert empty_store("set-container-data", CTR, "state.json", stdin=b'{"a":1}').status == 0
    assert empty_store("get-container-data", "one", "state.json").out == b'{"a":1}'
    assert empty_store("get-container-data-size", CTR, "state.json").stdout == "7\n"
    assert empty_store("list-container-data", "--json", CTR).stdout == '["state.json"]\n'
    assert empty_store("containers").stdout == f"{CTR}\n\tname: one\n\tname: two\n\tdata: state.json\n"
    text = empty_store("container", "two").stdout
    assert text.startswith(f"ID: {CTR}\nName: one\nName: two\nImage: {IMG}\nSize: ")
    assert text.endswith("Data: state.json\n")
    d = empty_store("get-container-dir", CTR).stdout
    assert d == f"{empty_store.graph}/vfs-containers/{CTR}/userdata\n" and os.path.isdir(d.strip())
    rd = empty_store("get-container-run-dir", CTR).stdout
    assert rd == f"{empty_store.run}/vfs-containers/{CTR}/userdata\n"
    r = empty_store("get-container-dir", "nope")
    assert (r.status, r.stderr) == (1, "container not known\n")
    r = empty_store("create-container", "-n", "one", IMG)
    assert r.status == 1 and r.stderr.endswith("that name is already in use\n")
    r = empty_store("create-container", "nope")
    assert (r.status, r.stderr) == (1, 'locating image with ID "nope": image not known\n')


def test_exists_prints_unfiltered_and_filters_status(empty_store: Store) -> None:
    _base_layer(empty_store)
    r = empty_store("exists", L1, "nope")
    assert r.status == 1
    assert sorted(r.stdout.splitlines()) == sorted([f"{L1}: true", "nope: false"])
    assert empty_store("exists", "-l", "base").status == 0
    r = empty_store("exists", "-i", "base")
    assert (r.status, r.stdout) == (1, "base: true\n")
    r = empty_store("exists", "-q", "--json", "base")
    assert (r.status, r.stdout) == (0, '{"base":true}\n')
    assert empty_store("exists", "-q", "base").stdout == ""


def test_metadata(empty_store: Store, tmp_path: Path) -> None:
    _base_layer(empty_store)
    r = empty_store("set-metadata", L1)
    assert (r.status, r.stderr) == (1, "no new metadata provided\n")
    f = tmp_path / "md"
    f.write_text("from file\n")
    assert empty_store("set-metadata", "-m", "ignored", "-f", str(f), "base").status == 0
    assert empty_store("metadata", "base").stdout == "base: from file\n"
    assert empty_store("metadata", "-q", "base").stdout == "from file\n"
    r = empty_store("metadata", "base", "nope")
    assert (r.status, r.stdout) == (1, "base: from file\nnope: \n")
    assert empty_store("metadata", "--json", "base", "nope").stdout == '{"base":"from file"}\n'
    r = empty_store("set-metadata", "-m", "x", "nope")
    assert (r.status, r.stderr) == (1, "identifier is not a layer, image, or container\n")


def test_names(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1, "-n", "a")
    empty_store("create-layer", "--id", L2, "-n", "b")
    assert empty_store("add-names", "-n", "c", "-n", "c", L1).stdout == ""
    assert empty_store("get-names", L1).stdout == "a\nc\n" or empty_store("get-names", L1).stdout == "c\na\n"
    assert empty_store("set-names", "--json", "-n", "z", L1).stdout == '["z"]\n'
    assert empty_store("remove-names", "--json", "-n", "z", L1).stdout == "null\n"
    assert empty_store("get-names", "--json", L1).stdout == "[]\n"
    r = empty_store("add-names", "-n", "q", "nope")
    assert (r.status, r.stderr) == (1, "layer not known\n")


def test_layer_data(empty_store: Store, tmp_path: Path) -> None:
    empty_store("create-layer", "--id", L1)
    assert empty_store("list-layer-data", "--json", L1).stdout == "null\n"
    assert empty_store("set-layer-data", L1, "notes.txt", stdin=b"hello").status == 0
    assert empty_store("get-layer-data", L1, "notes.txt").out == b"hello"
    out = tmp_path / "o"
    assert empty_store("get-layer-data", "-f", str(out), L1, "notes.txt").status == 0
    assert out.read_bytes() == b"hello"
    assert empty_store("list-layer-data", L1).stdout == "notes.txt\n"
    r = empty_store("get-layer-data", L1, "nope")
    assert r.status == 1 and r.stderr.endswith("file does not exist\n")
    r = empty_store("set-layer-data", L1, "", stdin=b"x")
    assert r.status == 1 and "not a valid name for a big data item" in r.stderr


def test_delete_layer_checks_and_json(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    empty_store("create-layer", "--id", L2, L1)
    r = empty_store("delete-layer", L1)
    assert r.status == 1 and r.stderr.startswith(f"{L1}: ") and r.stderr.endswith("layer has children\n")
    r = empty_store("delete-layer", "--json", L2, "nope")
    assert r.status == 1
    assert json.loads(r.stdout) == {L2: "", "nope": "identifier is not a layer"}
    assert empty_store("deletelayer", L1).status == 0
    assert empty_store("layers").stdout == ""


def test_delete_image_reports_layers_on_stderr(empty_store: Store) -> None:
    _base_layer(empty_store)
    empty_store("create-image", "--id", IMG, L1)
    r = empty_store("delete-image", "--test", IMG)
    assert (r.status, r.stdout, r.stderr) == (0, "", f"{IMG}: {L1}\n")
    assert empty_store("exists", "-i", IMG).status == 0
    r = empty_store("delete-image", "--json", IMG)
    assert json.loads(r.stdout) == {IMG: {"deleted-layers": [L1]}}
    r = empty_store("delete-image", "nope")
    assert (r.status, r.stderr) == (1, "nope: identifier is not an image\n")


def test_delete_container_and_delete(empty_store: Store) -> None:
    _base_layer(empty_store)
    empty_store("create-image", "--id", IMG, L1)
    empty_store("create-container", "--id", CTR, IMG)
    r = empty_store("delete-image", IMG)
    assert r.status == 1 and r.stderr.endswith("image is in use by a container\n")
    assert empty_store("delete-container", CTR).status == 0
    assert not os.path.exists(f"{empty_store.graph}/vfs-containers/{CTR}")
    r = empty_store("delete-container", CTR)
    assert (r.status, r.stderr) == (1, f"{CTR}: identifier is not a container\n")
    assert empty_store("delete", IMG).status == 0
    assert empty_store("delete", L1).status == 0
    assert empty_store("layers", "--json").stdout == "null\n"


def test_mount_unmount_mounted_shutdown(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    r = empty_store("mount", L1)
    assert r.status == 0 and os.path.isdir(r.stdout.strip())
    assert empty_store("mounted", L1).stdout == f"{L1} mounted\n"
    r = empty_store("shutdown")
    assert (r.status, r.stderr) == (1, "shutdown: a layer is mounted: layer is in use by a container\n")
    assert empty_store("shutdown", "--json").stdout == "{}\n"
    assert empty_store("unmount", L1).stdout == f"{L1} mountpoint unmounted\n"
    assert empty_store("mounted", L1).stdout == ""
    r = empty_store("umount", L1)  # not mounted: still succeeds and says so
    assert (r.status, r.stdout) == (0, f"{L1} mountpoint unmounted\n")
    assert empty_store("shutdown", "--json").stdout == '""\n'
    r = empty_store("mount", "--json", "nope")
    assert r.status == 1
    [entry] = json.loads(r.stdout)
    assert entry["id"] == "nope" and entry["mountpoint"] == "" and entry["error"]
    r = empty_store("mount", "nope")
    assert r.status == 1 and r.stdout == "\n" and r.stderr.endswith(" while mounting nope\n")


def test_shutdown_force_unmounts_but_fails(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    empty_store("mount", L1)
    assert empty_store("shutdown", "-f").status == 1
    assert empty_store("mounted", L1).stdout == ""
    assert empty_store("shutdown").status == 0


def test_status_goes_to_stderr(empty_store: Store) -> None:
    r = empty_store("status")
    assert r.status == 0 and r.stdout == ""
    assert r.stderr.startswith(
        f"Root: {empty_store.graph}\nRun Root: {empty_store.run}\nDriver Name: vfs\nDriver Options: []\n"
    )
    pairs = json.loads(empty_store("status", "--json").stdout)
    assert pairs[0] == ["Root", empty_store.graph] and pairs[3] == ["Driver Options", "[]"]


def test_storage_layers_check_and_gc(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    r = empty_store("create-storage-layer", "--id", L2)
    assert (r.status, r.stdout) == (0, f"{L2}\n")
    assert sorted(empty_store("storage-layers").stdout.split()) == sorted([L1, L2])
    assert sorted(json.loads(empty_store("storage-layers", "--json").stdout)) == sorted([L1, L2])
    r = empty_store("check", "--max", "0")
    assert r.status == 1
    assert f"layer {L2}:\n layer {L2}: layer in lower level storage driver not accounted for\n" in r.stdout
    assert f"layer {L1}:\n layer {L1}: layer not referenced by any images or containers\n" in r.stdout
    assert r.stderr == ("2 layer errors, 0 read-only layer errors, 0 image errors, "
                        "0 read-only image errors, 0 container errors\n")
    r = empty_store("check", "-m", "bogus")
    message = 'invalid value "bogus" for flag --max: time: invalid duration "bogus"\n'
    assert (r.status, r.stderr) == (1, message)
    assert empty_store("gc", "--json").stdout == '""\n'
    assert empty_store("storage-layers").stdout.split() == [L1]
    r = empty_store("check", "--json", "--max", "100h")
    empty_report = '{"Layers":{},"ROLayers":{},"Images":{},"ROImages":{},"Containers":{}}\n'
    assert (r.status, r.stdout) == (0, empty_report)


def test_wipe(empty_store: Store) -> None:
    _base_layer(empty_store)
    empty_store("create-image", "--id", IMG, L1)
    empty_store("create-container", "--id", CTR, IMG)
    assert empty_store("wipe").status == 0
    assert empty_store("layers", "--json").stdout == "null\n"
    assert empty_store("containers", "--json").stdout == "[]\n"


def test_copy_into_and_out_of_a_layer(empty_store: Store, tmp_path: Path) -> None:
    empty_store("create-layer", "--id", L1)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("content")
    os.chmod(src / "sub" / "f", 0o640)
    r = empty_store("copy", "--chown", "7:8", str(src), f"{L1}:/dst")
    assert r.status == 0, r.stderr
    out = tmp_path / "back"
    r = empty_store("copy", f"{L1}:/dst/sub/f", str(out) + "/")
    assert r.status == 0, r.stderr
    copied = out / "f"
    assert copied.read_text() == "content"
    st = copied.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (7, 8, 0o640)
    assert empty_store("mounted", L1).stdout == ""
    r = empty_store("copy", "-o", "x", str(src), f"{L1}:/d")
    message = ('invalid value "x" for flag --chown: '
               'error "x" as a numeric UID: strconv.ParseUint: parsing "x": invalid syntax\n')
    assert (r.status, r.stderr) == (1, message)
    r = empty_store("copy", str(src), "nope:/d")
    assert r.status == 1 and r.stderr.startswith('error finding layer "nope": ')


def test_container_parent_owners_and_layer_parent_owners(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    r = empty_store("layer-parent-owners", L1)
    assert (r.status, r.stdout) == (0, f"ID: {L1}\n")
    r = empty_store("layer-parent-owners", "--json", L1, "nope")
    assert (r.status, r.stdout) == (1, f'{{"ID":"{L1}","UIDs":null,"GIDs":null}}\n')


def _tar_with_symlinks(*links: tuple[str, str]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def test_copy_never_writes_outside_the_layer(empty_store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tar = _tar_with_symlinks(("abs", str(outside)), ("rel", "../../../../../../../../" + str(outside)))
    r = empty_store("import-layer", "--id", L1, stdin=tar)
    assert r.status == 0, r.stderr
    payload = tmp_path / "payload"
    payload.write_text("data")
    for link in ("abs", "rel"):
        r = empty_store("copy", str(payload), f"{L1}:/{link}/pwned-{link}")
        assert r.status == 0, r.stderr
        assert not (outside / f"pwned-{link}").exists()
        back = tmp_path / f"back-{link}"
        r = empty_store("copy", f"{L1}:/{link}/pwned-{link}", str(back))
        assert (r.status, back.read_text()) == (0, "data"), r.stderr
    assert list(outside.iterdir()) == []


def test_tree_shows_mount_points(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1, "-n", "base")
    point = empty_store("mount", L1).stdout.strip()
    try:
        assert empty_store("layers", "-t").stdout == f"(base)\n└─{L1}\n  name: base\n  mount: {point}\n"
    finally:
        empty_store("unmount", L1)
    assert "mount:" not in empty_store("layers", "--tree").stdout


def test_check_json_and_repair(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    empty_store("create-storage-layer", "--id", L2)
    r = empty_store("check", "--json", "--max", "0")
    assert r.status == 1
    report = json.loads(r.stdout)
    assert report == {"Layers": {L1: [{}], L2: [{}]}, "ROLayers": {}, "Images": {}, "ROImages": {},
                      "Containers": {}}
    assert list(report) == ["Layers", "ROLayers", "Images", "ROImages", "Containers"]
    r = empty_store("check", "--repair", "--max", "0")
    assert r.status == 0, r.stderr
    assert f"layer {L2}:\n" in r.stdout
    assert empty_store("storage-layers").stdout == ""
    assert empty_store("layers", "--json").stdout == "null\n"
    r = empty_store("check", "--max", "0")
    assert (r.status, r.stdout, r.stderr) == (0, "", "")


def test_check_and_gc_force_unmount_when_done(empty_store: Store) -> None:
    empty_store("create-layer", "--id", L1)
    empty_store("create-image", "--id", IMG, L1)
    for command in ("check", "gc"):
        empty_store("mount", L1)
        r = empty_store(command)
        assert (r.status, r.stderr) == (0, "shutdown: a layer is mounted: layer is in use by a container\n")
        assert empty_store("mounted", L1).stdout == ""


def test_read_only_image_store_items_are_marked(empty_store: Store, tmp_path: Path) -> None:
    lower = Store(str(tmp_path / "lower-graph"), str(tmp_path / "lower-run"), "vfs")
    lower("create-layer", "--id", L1, "-n", "base")
    lower("create-image", "--id", IMG, "-n", "img", L1)
    upper_prefix = [*empty_store.prefix, "--storage-opt", f"vfs.imagestore={lower.graph}"]
    assert run_main(*upper_prefix, "layer", "base").stdout == f"ID: {L1}\nName: base\nRead Only: true\n"
    text = run_main(*upper_prefix, "image", "img").stdout
    assert text.startswith(f"ID: {IMG}\nName: img\nTop Layer: {L1}\n") and text.endswith("Read Only: true\n")
    assert run_main(*upper_prefix, "layers", "-q").stdout == f"{L1}\n"
    r = run_main(*upper_prefix, "create-container", "--id", CTR, "img")
    assert (r.status, r.stdout) == (0, f"{CTR}\n"), r.stderr
    r = run_main(*upper_prefix, "delete-layer", L1)
    assert r.status == 1


def test_transient_store_after_the_command(empty_store: Store) -> None:
    empty_store("create-image", "--id", IMG)
    r = empty_store("create-container", "--transient-store", "--id", CTR, IMG)
    assert r.status == 0, r.stderr
    assert os.path.exists(f"{empty_store.run}/vfs-containers/volatile-containers.json")
    assert empty_store("containers", "--transient-store").stdout == f"{CTR}\n"
    flags = json.loads(empty_store("container", "--json", "--transient-store", CTR).stdout)[0]["flags"]
    assert flags.get("Volatile") is True
