"""What small commands import: nothing heavy on the start-up path (issue 15).

Each test starts a fresh interpreter (``-I``, so no site customisation interferes),
runs a command of the tool in-process and prints the modules it ended with; a heavy
module in the list fails the test. This is a test of what is imported, not of time:
``bench/cli_bench.py`` measures the time.

The stand-ins that make this possible are checked here too: ``structs`` against
``dataclasses``, the hand-written scanners against the patterns they replace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from containers_storage import structs

#: modules the start-up path must not load: each costs milliseconds of every run
HEAVY = {
    "dataclasses",
    "inspect",
    "typing",
    "re",
    "json",
    "json.decoder",
    "json.encoder",
    "pluggy",
    "datetime",
    "importlib.metadata",
    "email",
    "zipfile",
    "pathlib",
    "tokenize",
    "ast",
}

#: no storage.conf, whatever the machine has (reading one is a separate cost: tomllib)
RUN = """
import sys
import containers_storage.config as config
config.OVERRIDE_CONFIG = config.SYSTEM_CONFIG = "/nonexistent/storage.conf"
from containers_storage.cli.main import main
sys.argv = ["containers-storage", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("MODULES", " ".join(sorted(sys.modules)))
"""


def loaded(*args: str, cwd: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTAINERS_", "STORAGE_"))}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", RUN, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MODULES ")]
    assert lines, proc.stderr
    return set(lines[-1].split()[1:])


@pytest.fixture
def roots(tmp_path: Path) -> list[str]:
    return ["-g", str(tmp_path / "graph"), "-R", str(tmp_path / "run"), "-s", "vfs"]


@pytest.mark.parametrize(
    "command",
    [["layers"], ["exists", "nothing"], ["version"], ["create-layer"], ["images"], ["containers"]],
    ids=lambda c: c[0],
)
def test_small_commands_import_nothing_heavy(command: list[str], roots: list[str], tmp_path: Path) -> None:
    # the second run is the one measured by the bench: the store exists already
    loaded(*roots, "layers", cwd=tmp_path)
    found = loaded(*roots, *command, cwd=tmp_path) & HEAVY
    assert not found, f"{command[0]} imports {sorted(found)}"


def test_layers_of_a_populated_store_imports_nothing_heavy(roots: list[str], tmp_path: Path) -> None:
    for _ in range(3):
        loaded(*roots, "create-layer", cwd=tmp_path)
    found = loaded(*roots, "layers", cwd=tmp_path) & HEAVY
    assert not found, sorted(found)


def test_the_check_sees_a_heavy_import(tmp_path: Path) -> None:
    """The probe itself works: a command that needs json's encoder loads it."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", "import json, sys; print('MODULES', ' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "json" in proc.stdout.split()


# --- the stand-ins ----------------------------------------------------------------------
@structs.dataclass(frozen=True, slots=True, order=True)
class Point:
    x: int
    y: str = "a"
    tags: dict[str, int] = structs.field(default_factory=dict)


@structs.dataclass
class Mutable:
    a: int
    b: list[int] = structs.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class RealPoint:
    x: int
    y: str = "a"
    tags: dict[str, int] = dataclasses.field(default_factory=dict)


def test_structs_behave_as_dataclasses() -> None:
    p = Point(1)
    assert repr(p) == repr(RealPoint(1)).replace("RealPoint", "Point")
    assert p == Point(1, "a", {}) and p != Point(2) and p != RealPoint(1)
    assert Point(1, "b", {}) < Point(2) and sorted([Point(3), Point(1)]) == [Point(1), Point(3)]
    assert hash(Point(1, "b", ())) == hash(RealPoint(1, "b", ()))  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="cannot assign to field 'x'"):
        p.x = 2  # type: ignore[misc]
    assert not hasattr(p, "__dict__") and Point.__slots__ == ("x", "y", "tags")
    assert Point(1).tags is not Point(1).tags
    from containers_storage.gojson import GoTime
    from containers_storage.store import LayerOptions

    for value in (GoTime(5, 3600), LayerOptions(template_layer="t", flags={"k": 1})):
        assert pickle.loads(pickle.dumps(value)) == value
    m = Mutable(1)
    m.a = 2
    assert m == Mutable(2, []) and Mutable.__hash__ is None
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]


def test_structs_work_with_the_dataclasses_module() -> None:
    """Code outside the package (drivers, tests) may call ``dataclasses.replace``."""
    p = Point(1, "b")
    assert dataclasses.is_dataclass(p)
    assert dataclasses.replace(p, y="c") == Point(1, "c")
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "tags"]
    assert dataclasses.asdict(Point(1, "b", {"k": 2})) == {"x": 1, "y": "b", "tags": {"k": 2}}
    assert structs.replace(p, x=5) == Point(5, "b")
    assert structs.replace(RealPoint(1), x=5) == RealPoint(5)


def test_expand_vars_matches_the_pattern_it_replaces() -> None:
    from containers_storage.config import _expand_vars

    pattern = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
    env = {"A": "x", "HOME": "/h", "_1": "u", "a9": "Q"}
    for _ in range(20000):
        text = "".join(random.choice("$${}A_1a9HOME/ .-") for _ in range(random.randint(0, 12)))
        want = pattern.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)
        assert _expand_vars(text, env) == want, text


def test_utc_fast_path_matches_the_pattern_it_replaces() -> None:
    from containers_storage.gojson import GoTime, _parse_utc

    pattern = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z\Z")
    base = "2023-11-05T10:20:30.123456789Z"
    for _ in range(20000):
        chars = list(base[: random.randint(15, 32)])
        for _ in range(random.randint(0, 3)):
            if chars:
                chars[random.randrange(len(chars))] = random.choice("0123456789-T:.Zz+ x")
        text = "".join(chars)
        if pattern.match(text) is None:
            assert _parse_utc(text) is None, text
        elif _parse_utc(text) is not None:
            assert GoTime(_parse_utc(text) or 0) == GoTime.parse(text)
    for _ in range(20000):
        t = GoTime(random.randint(-62135596800 * 10**9, 253402300799 * 10**9))
        assert GoTime.parse(t.rfc3339nano()) == t


def test_time_formatting_matches_datetime() -> None:
    from datetime import datetime, timedelta

    from containers_storage.gojson import GoTime

    for _ in range(20000):
        ns = random.randint(-62135596800 * 10**9, 253402300799 * 10**9)
        offset = random.choice([0, 3600, -7200, 19800, -34200])
        seconds, nanos = divmod(ns, 10**9)
        try:
            local = datetime(1970, 1, 1) + timedelta(seconds=seconds + offset)
        except OverflowError:
            continue
        t = GoTime(ns, offset)
        frac = f".{nanos:09d}".rstrip("0") if nanos else ""
        zone = t._zone(True)
        assert t.rfc3339nano() == f"{local.year:04d}-{local:%m-%dT%H:%M:%S}{frac}{zone}"


@pytest.mark.parametrize(
    "doc",
    ['{"a":1}', ' [1, 2.5, "x\\u00e9", null, true] ', "[1] x", "", '{"a":', "NaN", "[Infinity]",
     '"\\ud800"', '{"a":1}{}', "  ", "[1e400]", '{"k": [[[]]]}', "\ufeff[1]"],
)
def test_loads_is_json_loads(doc: str) -> None:
    from containers_storage.gojson import loads

    for value in (doc, doc.encode("utf-8"), doc.encode("utf-16")):
        try:
            want: object = ("ok", json.loads(value))
        except ValueError as exc:
            want = (type(exc).__name__, str(exc))
        try:
            got: object = ("ok", loads(value))
        except ValueError as exc:
            got = (type(exc).__name__, str(exc))
        assert repr(got) == repr(want)


def test_dumps_is_the_json_encoder() -> None:
    from containers_storage.gojson import dumps, go_escape

    plain = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    ordered = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)
    values = [{"b": 1, "a": [1.5, "é<>&\u2028", None, True]}, "x<y", 3, 1e100, [float("nan")], {1: 2},
              {"a": object()}, [{"z": {"y": 1, "x": 2}}]]
    for value in values:
        for encoder, sort_keys in ((plain, False), (ordered, True)):
            try:
                want = go_escape(encoder.encode(value))
            except (TypeError, ValueError) as exc:
                want = f"{type(exc).__name__}: {exc}"
            try:
                got = dumps(value, sort_keys=sort_keys)
            except (TypeError, ValueError) as exc:
                got = f"{type(exc).__name__}: {exc}"
            assert got == want


def test_structs_bind_arguments_as_dataclasses_before_and_after_compiling() -> None:
    """The first calls bind arguments generically, later ones through the compiled
    ``__init__``; both accept and refuse the same calls, with the same messages."""

    @structs.dataclass(frozen=True, slots=True)
    class Ours:
        a: int
        b: str = "x"
        c: dict[str, int] = structs.field(default_factory=dict)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Ours_:  # named so that the messages match
        a: int
        b: str = "x"
        c: dict[str, int] = dataclasses.field(default_factory=dict)

    calls = ["K()", "K(1, 2, 3, 4)", "K(1, a=2)", "K(1, z=3)", "K(1)", "K(a=1, c={'q': 1})", "K(1, 'y')"]
    for _ in range(2):
        for call in calls:
            outcome = []
            for cls in (Ours, Ours_):
                try:
                    value = eval(call, {"K": cls})
                    outcome.append(repr(value).replace("Ours_(", "Ours("))
                except TypeError as exc:
                    outcome.append(str(exc).replace("Ours_.", "Ours."))
            assert outcome[0] == outcome[1], call
        for i in range(100):  # past the compile threshold
            assert Ours(i).a == i


class _Upper:
    """A data descriptor used as a field default (what config's path fields are)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = "_" + name

    def __get__(self, obj: object | None, owner: object = None) -> str:
        return "dflt" if obj is None else str(getattr(obj, self.attr))

    def __set__(self, obj: object, value: str) -> None:
        setattr(obj, self.attr, value.upper())


def test_structs_call_post_init_and_keep_data_descriptors_as_dataclasses_do() -> None:
    """``__post_init__`` runs after the fields are set (generic and compiled binders),
    and a data-descriptor default stays on the class, its class-level value the default."""
    seen: list[object] = []

    def make(module: object) -> type:
        @module.dataclass  # type: ignore[attr-defined,misc]
        class K:
            p: _Upper = _Upper()
            n: int = 0

            def __post_init__(self) -> None:
                seen.append((self.p, self.n))

        return K  # type: ignore[no-any-return]

    for module in (structs, dataclasses):
        seen.clear()
        K = make(module)
        for i in range(70):  # past the compile threshold
            K(n=i)
        assert seen[0] == ("DFLT", 0) and seen[-1] == ("DFLT", 69)
        assert K("abc").p == "ABC"
