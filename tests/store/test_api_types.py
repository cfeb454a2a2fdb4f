"""Wrong argument types are refused at the Store's boundary (#20): a TypeError naming the
parameter, before anything is written, so no call leaves a store later commands cannot
read."""

from __future__ import annotations

import inspect
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from containers_storage.store import (
    AutoUserNsOptions,
    CheckReport,
    ContainerOptions,
    IDMappingOptions,
    ImageBigData,
    ImageOptions,
    LayerOptions,
    Store,
    get_store,
)

from .conftest import options

#: parameters that take objects of the caller's own kind (a differ and its output)
UNCHECKED = {("apply_diff_with_differ", "differ"), ("apply_diff_from_staging_directory", "diff_output")}


def _good(annotation: str) -> Any:
    """A value of the right type for a parameter annotated ``annotation``."""
    if annotation == "CheckReport":
        return CheckReport()
    if annotation.startswith(("Sequence[", "list[")):
        return []
    if annotation == "bool":
        return False
    if annotation.startswith("bytes"):
        return b""
    if annotation in ("str", "StrPath"):
        return "x"
    if annotation.startswith("IO["):
        return b""
    return None


def _public_methods() -> list[tuple[str, inspect.Signature]]:
    out = []
    for name in sorted(dir(Store)):
        fn = getattr(Store, name)
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        sig = inspect.signature(fn)
        if len(sig.parameters) > 1:
            out.append((name, sig))
    return out


CASES = [
    (name, param)
    for name, sig in _public_methods()
    for param in list(sig.parameters)[1:]
    if (name, param) not in UNCHECKED
]


@pytest.mark.parametrize(("method", "param"), CASES, ids=[f"{m}-{p}" for m, p in CASES])
def test_every_parameter_is_checked(store: Store, method: str, param: str) -> None:
    sig = inspect.signature(getattr(Store, method))
    kwargs = {
        p.name: _good(str(p.annotation))
        for p in list(sig.parameters.values())[1:]
        if p.default is inspect.Parameter.empty and p.name != param
    }
    kwargs[param] = object()
    with pytest.raises(TypeError, match=rf"^{param} must be "):
        getattr(store, method)(**kwargs)


def _readable_by_a_new_process(root: Path) -> None:
    code = (
        "import sys\n"
        "from containers_storage.config import StoreOptions\n"
        "from containers_storage.store import get_store\n"
        "with get_store(StoreOptions(graph_root=sys.argv[1] + '/graph', run_root=sys.argv[1] + '/run',"
        " driver_name='vfs')) as s:\n"
        "    s.layers(); s.images(); s.containers()\n"
        "    for i in s.images(): s.metadata(i.id); s.names(i.id)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, timeout=120)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda s, img: s.create_layer(names=[5]), "names"),
        (lambda s, img: s.create_layer(names="abc"), "names"),
        (lambda s, img: s.create_image(names="abc"), "names"),
        (lambda s, img: s.create_container(names=("ok", b"bytes")), "names"),
        (lambda s, img: s.add_names(img, [None]), "names"),
        (lambda s, img: s.add_names(img, [5]), "names"),
        (lambda s, img: s.set_names(img, "abc"), "names"),
        (lambda s, img: s.set_metadata(img, 5), "metadata"),
        (lambda s, img: s.set_image_big_data(img, 5, b"x"), "key"),
        (lambda s, img: s.set_image_big_data(img, "k", "text"), "data"),
        (lambda s, img: s.create_layer(id=5), "id"),
        (lambda s, img: s.mount_image(img, "ro"), "mount_options"),
    ],
)
def test_the_issue_cases_are_refused_and_the_store_stays_readable(
    store: Store, store_root: Path, call: Callable[[Store, str], object], param: str
) -> None:
    image = store.create_image(names=["web"], layer=store.create_layer().id).id
    before = (store.layers(), store.images(), store.containers())
    with pytest.raises(TypeError, match=rf"^{param} must be "):
        call(store, image)
    assert (store.layers(), store.images(), store.containers()) == before
    _readable_by_a_new_process(store_root)


def test_put_layer_takes_bytes_or_a_binary_file_and_says_so_otherwise(store: Store) -> None:
    from .conftest import tar_bytes

    blob = tar_bytes({"f": b"data"})
    from_bytes, _ = store.put_layer(diff=blob)
    from_file, _ = store.put_layer(diff=io.BytesIO(blob))
    assert from_bytes.uncompressed_digest == from_file.uncompressed_digest
    for wrong in ("a str", io.StringIO("text"), 5):
        with pytest.raises(TypeError, match="^diff must be bytes or a binary file open for reading"):
            store.put_layer(diff=wrong)  # type: ignore[arg-type]
    assert len(store.layers()) == 2


def test_get_store_wants_store_options(store_root: Path) -> None:
    with pytest.raises(TypeError, match="^options must be a StoreOptions"):
        get_store(str(store_root))  # type: ignore[arg-type]
    with get_store(options(store_root)):
        pass


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda: ImageOptions(metadata=5), "metadata"),
        (lambda: ImageOptions(digests="sha256:abc"), "digests"),
        (lambda: ImageOptions(names_history=[5]), "names_history"),
        (lambda: ImageOptions(big_data={"k": "text"}), "big_data['k']"),
        (lambda: ImageOptions(big_data=[("k", b"x")]), "big_data"),
        (lambda: ImageBigData(5, b"x"), "key"),
        (lambda: ContainerOptions(mount_opts="ro"), "mount_opts"),
        (lambda: ContainerOptions(metadata=b"m"), "metadata"),
        (lambda: ContainerOptions(flags={5: "x"}), "flags"),
        (lambda: LayerOptions(big_data={5: b""}), "big_data"),
        (lambda: LayerOptions(storage_opt={"size": 5}), "storage_opt['size']"),
        (lambda: LayerOptions(original_size="5"), "original_size"),
        (lambda: LayerOptions(id_mapping=None), "id_mapping"),
        (lambda: IDMappingOptions(uid_map=[(0, 0, 1)]), "uid_map"),
        (lambda: AutoUserNsOptions(size="5"), "size"),
    ],
)
def test_options_objects_refuse_wrong_field_types_when_made(make: Callable[[], object], param: str) -> None:
    import re

    with pytest.raises(TypeError, match=rf"^{re.escape(param)} must "):
        make()


def test_image_options_metadata_never_reaches_a_record(store: Store, store_root: Path) -> None:
    with pytest.raises(TypeError):
        store.create_image(options=ImageOptions(metadata=5))  # type: ignore[arg-type]
    assert store.images() == []
    _readable_by_a_new_process(store_root)
