"""The small pieces: name normalization, platform choice, archive paths, Go JSON."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from containers_storage.imageio import (
    BlobMissing,
    DigestMismatch,
    InvalidReference,
    Platform,
    PlatformNotFound,
    UnsafeArchivePath,
)
from containers_storage.imageio.ahead import AheadChecks
from containers_storage.imageio.dockerwriter import compact, raw_members
from containers_storage.imageio.platforms import choose
from containers_storage.imageio.references import DOCKER_DOMAIN, normalize, repository_and_tag
from containers_storage.imageio.tarindex import TarIndex, clean

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("given", "local", "docker"),
    [
        ("app", "localhost/app:latest", "docker.io/library/app:latest"),
        ("ns/app:2", "localhost/ns/app:2", "docker.io/ns/app:2"),
        ("example.com/ns/app:2", "example.com/ns/app:2", "example.com/ns/app:2"),
        ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
        ("docker.io/app", "docker.io/library/app:latest", "docker.io/library/app:latest"),
        ("index.docker.io/a/b:1", "docker.io/a/b:1", "docker.io/a/b:1"),
        (f"app@{DIGEST}", f"localhost/app@{DIGEST}", f"docker.io/library/app@{DIGEST}"),
        (f"app:1@{DIGEST}", f"localhost/app:1@{DIGEST}", f"docker.io/library/app:1@{DIGEST}"),
        ("app:Tag_1.x", "localhost/app:Tag_1.x", "docker.io/library/app:Tag_1.x"),
    ],
)
def test_normalize(given: str, local: str, docker: str) -> None:
    assert normalize(given) == local
    assert normalize(given, default_domain=DOCKER_DOMAIN) == docker


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("App", "lowercase"),
        ("", "invalid reference"),
        ("a b", "invalid"),
        ("app:", "invalid"),
        ("-app", "invalid"),
        ("a" * 300, "255 characters"),
    ],
)
def test_normalize_refuses(bad: str, match: str) -> None:
    with pytest.raises(InvalidReference, match=match):
        normalize(bad)


def test_repository_and_tag() -> None:
    assert repository_and_tag("localhost:5000/a/b:1") == ("localhost:5000/a/b", "1")
    assert repository_and_tag(f"example.com/a@{DIGEST}") is None


def test_platform_choice() -> None:
    entries = [
        Platform("linux", "arm", "v5"),
        None,
        Platform("linux", "arm64"),
        Platform("linux", "arm", "v7"),
        Platform("windows", "amd64"),
        Platform("linux", "amd64", "v3"),
    ]
    assert choose(entries, Platform("linux", "arm", "v7"), "x") == 3
    assert choose(entries, Platform("linux", "arm", "v6"), "x") == 0  # v5 runs on v6
    assert choose(entries, Platform("linux", "arm64", "v8"), "x") == 2  # an entry without variant
    assert choose(entries, Platform("linux", "amd64"), "x") == 5  # no variant wanted: any
    with pytest.raises(PlatformNotFound, match=r"it has: linux/arm/v5, \(no platform\), linux/arm64, "):
        choose(entries, Platform("linux", "s390x"), "x")
    assert str(Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    with pytest.raises(InvalidReference):
        Platform.parse("linux")


def test_clean_archive_paths() -> None:
    assert clean("./blobs//sha256/../sha256/x", "m") == "blobs/sha256/x"
    for bad in ("/abs", "../x", "a/../../x"):
        with pytest.raises(UnsafeArchivePath):
            clean(bad, "m")


def _tar(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))
    return path


def test_tar_index_follows_links_inside(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "a.tar",
        [
            ("real/dir/file", b"data"),
            ("dirlink", "real/dir"),
            ("filelink", "dirlink/file"),
            ("loop", "loop"),
        ],
    )
    with TarIndex(str(archive)) as index:
        assert index.open("filelink").read() == b"data"
        assert index.open("dirlink/file").read(2) == b"da"
        assert index.size("real/dir/file") == 4
        assert not index.exists("real/none")
        with pytest.raises(UnsafeArchivePath, match="too many levels"):
            index.resolve("loop")


def test_go_raw_json() -> None:
    text = '{ "a" : [1, 2.50, {"x": "<&> \\u00e9 \\" "}],\n "b": null, "a": "last" }'
    assert raw_members(text) == {"a": '"last"', "b": "null"}
    assert compact('{"s": "a b <x>", "n": 1e5}') == '{"s":"a b \\u003cx\\u003e","n":1e5}'


def _blob_jobs(blobs: list[tuple[bytes, str, int]]) -> AheadChecks:
    return AheadChecks(
        [(i, digest, size, lambda d=data: io.BytesIO(d)) for i, (data, digest, size) in enumerate(blobs)]
    )


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_ahead_checks_find_each_bad_blob_in_order() -> None:
    good, other = b"layer one" * 100_000, b"layer two"
    checks = _blob_jobs([
        (good, _sha(good), len(good)),
        (other, _sha(good), len(other)),  # wrong digest
        (good, _sha(good), len(good) - 1),  # longer than its size
        (good, _sha(good), -1),  # size unknown: the digest alone decides
    ])
    checks.start()
    try:
        checks.wait(0)
        checks.wait(3)  # the thread is past every check now
        with pytest.raises(DigestMismatch, match="Digest did not match"):
            checks.raise_failed()  # the first failure, without waiting on its layer
        with pytest.raises(DigestMismatch, match="Digest did not match"):
            checks.wait(1)
        with pytest.raises(DigestMismatch, match="size mismatch: expected 899999 bytes, got more"):
            checks.wait(2)
        checks.discard(1)
        with pytest.raises(DigestMismatch, match="size mismatch"):
            checks.raise_failed()  # a discarded layer's blob fails nothing
        checks.discard(2)
        checks.raise_failed()
        assert 3 in checks and 4 not in checks
    finally:
        checks.close()


def test_ahead_checks_report_an_unreadable_blob() -> None:
    def missing() -> io.BytesIO:
        raise BlobMissing("blobs/sha256/x", message="file does not exist")

    checks = AheadChecks([(0, _sha(b""), 0, missing)])
    checks.start()
    try:
        with pytest.raises(BlobMissing):
            checks.wait(0)
    finally:
        checks.close()
