"""The artifact store and artifact types, on real folders and fsspec's in-memory filesystem."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_clean_error, kiln
from kiln.artifacts import (
    MANIFEST,
    Artifact,
    ArtifactStore,
    Metrics,
    Report,
    Table,
    artifact_class,
    check_uri,
    fingerprint,
)
from kiln.errors import ArtifactError, ArtifactStoreError, KilnError, UnsafePathError

UNSAFE = [
    "",
    "/etc/passwd",
    "../x",
    "a/../../b",
    "a/..",
    "..",
    ".",
    "a/./b",
    "./a",
    "a//b",
    "a/",
    "/",
    "C:\\x",
    "C:/x",
    "a\\b",
    "s3://x",
    "file:///etc/passwd",
    "a\x00b",
]


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------- unsafe paths


@pytest.mark.parametrize("uri", UNSAFE)
def test_check_uri_refuses_unsafe_paths(uri: str) -> None:
    with pytest.raises(UnsafePathError, match="not a plain relative path"):
        check_uri(uri)


@pytest.mark.parametrize("uri", UNSAFE)
def test_store_refuses_unsafe_paths_everywhere(tmp_path: Path, uri: str) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    staged = store.staging_dir()
    (staged / "f").write_text("x")
    for call in (store.path_of, store.exists, store.delete, lambda u: store.publish(staged, u)):
        with pytest.raises(UnsafePathError):
            call(uri)
    assert staged.is_dir(), "a refused publish must leave the staged folder alone"


@pytest.mark.parametrize("uri", ["Table/abc", "Model/3f2a/part", "a", "a.b/c-d_e"])
def test_check_uri_accepts_plain_relative_paths(uri: str) -> None:
    assert check_uri(uri) == uri


def test_new_uri_is_safe_and_unique() -> None:
    a, b = ArtifactStore.new_uri("Table"), ArtifactStore.new_uri("Table")
    assert a != b
    assert a.startswith("Table/")
    assert check_uri(a) == a


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    outside = _write_tree(tmp_path / "secret", {"passwd": b"root:x:0:0"})
    (root / "Table").mkdir(parents=True)
    (root / "Table" / "evil").symlink_to(outside, target_is_directory=True)
    (root / "Table" / "ok").symlink_to(root / "Table" / "real", target_is_directory=True)
    (root / "Table" / "real").mkdir()
    store = ArtifactStore(str(root))

    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        store.path_of("Table/evil")
    with pytest.raises(UnsafePathError):
        store.path_of("Table/evil/passwd")
    with pytest.raises(UnsafePathError):
        store.exists("Table/evil")
    with pytest.raises(UnsafePathError):
        store.delete("Table/evil")
    assert (outside / "passwd").read_bytes() == b"root:x:0:0", "delete followed the link"
    # A link that stays inside the root is fine.
    assert store.path_of("Table/ok") == (root / "Table" / "real").resolve()


def test_a_symlinked_root_itself_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    (tmp_path / "link-root").symlink_to(real, target_is_directory=True)
    store = ArtifactStore(str(tmp_path / "link-root"))
    staged = store.staging_dir()
    (staged / "f").write_text("x")
    store.publish(staged, "Artifact/a")
    assert store.path_of("Artifact/a") == real.resolve() / "Artifact" / "a"
    assert store.exists("Artifact/a")


_PARTS = st.sampled_from(
    ["", ".", "..", "...", "a", "b.c", "~", ":", "C:", "\\", "..\\..", "\x00", " ", "é", "s3:"]
)
_PATHS = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40),
    st.lists(_PARTS, max_size=6).map("/".join),
    st.lists(_PARTS, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uri=_PATHS)
def test_any_path_is_refused_or_stays_under_the_root(uri: str) -> None:
    root = Path(os.environ.get("KILN_TEST_HYPO_ROOT", "/nonexistent-kiln-root")).resolve()
    store = ArtifactStore(str(root))
    try:
        check_uri(uri)
    except UnsafePathError:
        with pytest.raises(UnsafePathError):
            store.path_of(uri)
        return
    assert (root / uri).resolve().is_relative_to(root)
    assert store.path_of(uri).is_relative_to(root)


@pytest.fixture(autouse=True)
def _hypo_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The property test above cannot take tmp_path (function-scoped fixtures are shared between
    # examples), so it finds its root in an environment variable instead.
    root = tmp_path / "hypo-root"
    (root / "Table").mkdir(parents=True)
    monkeypatch.setenv("KILN_TEST_HYPO_ROOT", str(root))


# ---------------------------------------------------------------------- fingerprint


CONTENT = {
    "data.parquet": b"\x00\x01" * 1000,
    "sub/a.txt": b"hello",
    "sub/deeper/b.bin": bytes(range(256)),
    "z": b"",
}


def test_fingerprint_ignores_creation_order(tmp_path: Path) -> None:
    forward = _write_tree(tmp_path / "f", CONTENT)
    backward = _write_tree(tmp_path / "b", dict(reversed(list(CONTENT.items()))))
    os.utime(backward / "sub" / "a.txt", (1, 1))  # times do not matter either
    assert fingerprint(forward) == fingerprint(backward)
    assert fingerprint(forward).startswith("sha256:")
    assert len(fingerprint(forward)) == 7 + 64


def test_fingerprint_matches_its_definition(tmp_path: Path) -> None:
    folder = _write_tree(tmp_path / "f", CONTENT)
    outer = hashlib.sha256()
    for rel in sorted(CONTENT):
        outer.update(rel.encode() + b"\x00" + hashlib.sha256(CONTENT[rel]).digest())
    assert fingerprint(folder) == "sha256:" + outer.hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        "flip a byte",
        "append a byte",
        "truncate",
        "rename",
        "move to another folder",
        "add an empty file",
        "remove a file",
        "swap contents",
    ],
)
def test_fingerprint_changes_with_any_change(tmp_path: Path, change: str) -> None:
    folder = _write_tree(tmp_path / "f", CONTENT)
    before = fingerprint(folder)
    target = folder / "sub" / "deeper" / "b.bin"
    if change == "flip a byte":
        data = bytearray(target.read_bytes())
        data[100] ^= 1
        target.write_bytes(bytes(data))
    elif change == "append a byte":
        with target.open("ab") as f:
            f.write(b"\x00")
    elif change == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    elif change == "rename":
        target.rename(target.with_name("c.bin"))
    elif change == "move to another folder":
        target.rename(folder / "sub" / "b.bin")
    elif change == "add an empty file":
        (folder / "sub" / "empty").touch()
    elif change == "remove a file":
        (folder / "z").unlink()
    elif change == "swap contents":
        a, b = folder / "sub" / "a.txt", folder / "data.parquet"
        da, db = a.read_bytes(), b.read_bytes()
        a.write_bytes(db)
        b.write_bytes(da)
    assert fingerprint(folder) != before


def test_fingerprint_keeps_paths_and_bytes_apart(tmp_path: Path) -> None:
    one = _write_tree(tmp_path / "one", {"ab": b""})
    two = _write_tree(tmp_path / "two", {"a": b"b"})
    three = _write_tree(tmp_path / "three", {"a/b": b""})
    assert len({fingerprint(one), fingerprint(two), fingerprint(three)}) == 3


def test_fingerprint_of_a_file_and_of_a_folder(tmp_path: Path) -> None:
    folder = _write_tree(tmp_path / "f", {"data.bin": b"payload"})
    file = folder / "data.bin"
    same_bytes = _write_tree(tmp_path / "g", {"other-name.bin": b"payload"}) / "other-name.bin"
    other_bytes = _write_tree(tmp_path / "h", {"data.bin": b"payload!"}) / "data.bin"
    # A single file's fingerprint is its content's, whatever its name...
    assert fingerprint(file) == fingerprint(same_bytes)
    assert fingerprint(file) != fingerprint(other_bytes)
    # ...and differs from the fingerprint of a folder holding it (where the name counts).
    assert fingerprint(file) != fingerprint(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fingerprint(empty) == "sha256:" + hashlib.sha256().hexdigest()
    assert fingerprint(empty) != fingerprint(folder)


# ---------------------------------------------------------------------- staging and publishing


def test_staging_then_publish_moves_the_whole_folder(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    store = ArtifactStore(str(root))
    assert store.is_local
    assert store.local_root == root
    staged = store.staging_dir()
    assert staged.is_dir()
    assert not any(staged.iterdir())
    assert staged.is_relative_to(root)
    assert staged.parent.name == ".staging"
    assert store.staging_dir() != staged
    _write_tree(staged, CONTENT)
    fp = fingerprint(staged)
    inode = staged.stat().st_ino

    uri = store.new_uri("Table")
    assert not store.exists(uri)
    store.publish(staged, uri)

    final = root / uri
    assert not staged.exists(), "the staging folder must be moved, not copied"
    assert final.stat().st_ino == inode, "publish must be a rename (one atomic step)"
    assert store.exists(uri)
    assert store.path_of(uri) == final.resolve()
    assert _files(final) == CONTENT
    assert fingerprint(final) == fp


def test_publishing_twice_to_one_uri_fails_and_keeps_the_first(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    first = _write_tree(store.staging_dir(), {"a": b"first"})
    store.publish(first, "Artifact/x")
    second = _write_tree(store.staging_dir(), {"a": b"second", "b": b"more"})
    with pytest.raises(ArtifactStoreError, match="cannot publish artifact Artifact/x"):
        store.publish(second, "Artifact/x")
    assert _files(store.path_of("Artifact/x")) == {"a": b"first"}
    assert _files(second) == {"a": b"second", "b": b"more"}, "the staged files are still there"


def test_publish_into_a_file_root_is_a_clear_error(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    staged = _write_tree(store.staging_dir(), {"a": b"x"})
    (tmp_path / "artifacts" / "Table").write_text("a file where a folder should be")
    with pytest.raises(ArtifactStoreError, match="cannot publish artifact Table/y"):
        store.publish(staged, "Table/y")
    assert staged.is_dir()


def test_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    # Tests may run as root, whom permissions do not stop: a root below a regular file can never
    # be created, whoever asks.
    (tmp_path / "file.txt").write_text("not a folder")
    root = tmp_path / "file.txt" / "artifacts"
    store = ArtifactStore(str(root))
    for call in (store.check_writable, store.staging_dir):
        with pytest.raises(ArtifactStoreError) as info:
            call()
        message = str(info.value)
        assert str(root) in message
        assert "not writable" in message
        assert "KILN_ARTIFACT_ROOT" in message
        assert "Not a directory" in message
    assert isinstance(info.value, KilnError)


def test_check_writable_leaves_nothing_behind(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    store.check_writable()
    assert list((tmp_path / "artifacts" / ".staging").iterdir()) == []


PIPELINE = """\
from kiln import Metrics, component, pipeline


@component
def count() -> Metrics:
    return Metrics({"n": 1})


@pipeline(name="tiny")
def tiny() -> None:
    count()
"""


def test_cli_run_with_an_unwritable_artifact_root(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "pipe.py").write_text(PIPELINE)
    root = tmp_path / "file.txt" / "artifacts"
    proc = kiln("run", "pipe.py", cwd=tmp_path, env={"KILN_ARTIFACT_ROOT": str(root)})
    assert_clean_error(proc, str(root), "not writable", "KILN_ARTIFACT_ROOT")


def test_collect_garbage_removes_old_staging_folders_only(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    store = ArtifactStore(str(root))
    assert store.collect_garbage() == 0, "no staging folder yet"
    published = _write_tree(store.staging_dir(), {"a": b"x"})
    store.publish(published, "Artifact/kept")
    old = _write_tree(store.staging_dir(), {"half": b"written"})
    fresh = _write_tree(store.staging_dir(), {"still": b"writing"})
    two_hours_ago = time.time() - 7200
    for path in (old, root / "Artifact" / "kept", root / "Artifact"):
        os.utime(path, (two_hours_ago, two_hours_ago))

    assert store.collect_garbage(older_than_s=3600) == 1
    assert not old.exists()
    assert fresh.is_dir()
    assert _files(fresh) == {"still": b"writing"}
    assert _files(root / "Artifact" / "kept") == {"a": b"x"}

    assert store.collect_garbage(older_than_s=0) == 1
    assert not fresh.exists()
    assert store.exists("Artifact/kept")
    assert sorted(p.name for p in root.iterdir()) == [".staging", "Artifact"]


def test_delete_removes_an_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    store.publish(_write_tree(store.staging_dir(), CONTENT), "Table/gone")
    store.delete("Table/gone")
    assert not store.exists("Table/gone")
    store.delete("Table/gone")  # deleting what is not there is not an error
    store.delete("Table/never")


def test_file_url_root_is_local(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'artifacts'}")
    assert store.is_local
    assert store.local_root == tmp_path / "artifacts"
    store.publish(_write_tree(store.staging_dir(), {"a": b"x"}), "Artifact/f")
    assert (tmp_path / "artifacts" / "Artifact" / "f" / "a").read_bytes() == b"x"


# ---------------------------------------------------------------------- a remote (fsspec) root


@pytest.fixture
def memory_root() -> Iterator[str]:
    import fsspec

    root = f"memory://kiln-test-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    path = root.partition("://")[2]
    if fs.exists(path):
        fs.rm(path, recursive=True)


def test_remote_root_publish_exists_path_of_delete(tmp_path: Path, memory_root: str) -> None:
    import fsspec

    cache = tmp_path / "cache"
    store = ArtifactStore(memory_root, cache_dir=cache)
    assert not store.is_local
    with pytest.raises(ArtifactStoreError, match="not a local folder"):
        _ = store.local_root

    staged = store.staging_dir()
    assert staged.is_relative_to(cache), "a remote root stages locally, in the cache"
    _write_tree(staged, CONTENT)
    fp = fingerprint(staged)
    uri = store.new_uri("Table")
    assert not store.exists(uri)
    store.publish(staged, uri)
    assert not staged.exists()
    assert store.exists(uri)

    fs = fsspec.filesystem("memory")
    remote = f"{memory_root.partition('://')[2]}/{uri}"
    assert sorted(fs.find(remote)) == sorted(f"/{remote}/{rel}" for rel in CONTENT)

    local = store.path_of(uri)
    assert local == cache / uri, "downloaded into the cache folder"
    assert _files(local) == CONTENT
    assert fingerprint(local) == fp
    assert store.path_of(uri) == local, "the second look-up uses the cache"
    assert not any((cache / ".staging").iterdir()), "no download left half-way"

    again = _write_tree(store.staging_dir(), {"other": b"content"})
    with pytest.raises(ArtifactStoreError, match="exists"):
        store.publish(again, uri)
    assert sorted(fs.find(remote)) == sorted(f"/{remote}/{rel}" for rel in CONTENT)

    for bad in ("../x", "/etc/passwd", "s3://x"):
        with pytest.raises(UnsafePathError):
            store.path_of(bad)

    store.delete(uri)
    assert not store.exists(uri)
    assert not fs.exists(remote)
    store.delete(uri)  # already gone: not an error


def test_remote_path_of_a_missing_artifact_is_a_clear_error(
    tmp_path: Path, memory_root: str
) -> None:
    store = ArtifactStore(memory_root, cache_dir=tmp_path / "cache")
    with pytest.raises(ArtifactStoreError, match="Table/nothing-here has no files"):
        store.path_of("Table/nothing-here")
    assert not (tmp_path / "cache" / "Table" / "nothing-here").exists()


def test_remote_root_with_an_unknown_protocol(tmp_path: Path) -> None:
    store = ArtifactStore("nosuchproto-kiln://bucket/x", cache_dir=tmp_path / "cache")
    with pytest.raises(ArtifactStoreError, match="nosuchproto-kiln://bucket/x"):
        store.exists("Table/a")


# ---------------------------------------------------------------------- artifact types


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    return data


def test_table_round_trip(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "name": pa.array(["a", None, "ç"]),
            "score": pa.array([0.5, 1.5, None], pa.float64()),
        }
    )
    pending = Table(table)
    assert not pending.is_stored
    assert pending.read() is table
    assert "pending" in repr(pending)

    folder = tmp_path / "t"
    folder.mkdir()
    props = pending.write(folder)
    assert props == {
        "num_rows": 3,
        "num_columns": 3,
        "columns": {"id": "int64", "name": "string", "score": "double"},
    }
    assert sorted(p.name for p in folder.iterdir()) == sorted(["data.parquet", MANIFEST])
    assert _manifest(folder) == {"type": "Table", "version": Table.version}

    stored = Table.stored(folder, id=7, uri="Table/x", fingerprint=fingerprint(folder))
    assert stored.is_stored
    assert stored.id == 7
    assert stored.uri == "Table/x"
    assert stored.read().equals(table)
    assert "id=7" in repr(stored)


def test_table_rejects_other_values(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"needs a pyarrow\.Table, got dict"):
        Table({"a": [1]}).write(tmp_path)


def test_metrics_round_trip(tmp_path: Path) -> None:
    value = {"accuracy": 0.9, "n": 10, "per_class": {"a": [1, 2.5]}, "ok": True, "none": None}
    assert Metrics(value).read() is value
    props = Metrics(value).write(tmp_path)
    assert props == {}
    assert json.loads((tmp_path / "metrics.json").read_text()) == value
    assert _manifest(tmp_path) == {"type": "Metrics", "version": Metrics.version}
    assert Metrics.stored(tmp_path).read() == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {1, 2}}, "not strict JSON"),
        ({"a": object()}, "not strict JSON"),
        ({"a": b"bytes"}, "not strict JSON"),
        ({"auc": float("nan")}, "use None for a value that is undefined"),
        ({"loss": [1.0, float("inf")]}, "not strict JSON"),
        ([1, 2], "needs a mapping, got list"),
        (3.5, "needs a mapping, got float"),
    ],
)
def test_metrics_rejects_non_json(tmp_path: Path, value: Any, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        Metrics(value).write(tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_report_round_trip(tmp_path: Path) -> None:
    page = "<!doctype html><html><body><h1>Pingüinos ✓</h1></body></html>"
    Report(page).write(tmp_path)
    assert (tmp_path / "index.html").read_bytes() == page.encode("utf-8")
    assert Report.stored(tmp_path).read() == page
    assert _manifest(tmp_path)["type"] == "Report"
    with pytest.raises(ArtifactError, match="needs HTML text, got bytes"):
        Report(page.encode()).write(tmp_path / "nope")


def test_generic_artifact_copies_a_file(tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00weights")
    out = tmp_path / "out"
    out.mkdir()
    assert Artifact(source).write(out) == {}
    assert _files(out) == {"model.bin": b"\x00weights", MANIFEST: (out / MANIFEST).read_bytes()}
    assert _manifest(out) == {"type": "Artifact", "version": 1}
    assert Artifact.stored(out).read() == out
    assert Artifact(str(source)).read() == str(source), "a pending artifact reads as its value"


def test_generic_artifact_copies_a_folder(tmp_path: Path) -> None:
    source = _write_tree(tmp_path / "src", CONTENT)
    out = tmp_path / "out"
    out.mkdir()
    Artifact(str(source)).write(out)
    files = _files(out)
    assert files.pop(MANIFEST)
    assert files == CONTENT
    assert _files(source) == CONTENT, "the source is copied, not moved"


@pytest.mark.parametrize("value", [None, "does/not/exist"])
def test_generic_artifact_needs_an_existing_path(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ArtifactError, match="needs an existing file or folder"):
        Artifact(value).write(tmp_path)


def test_a_stored_artifact_writes_a_faithful_copy(tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    props = Table(pa.table({"x": [1, 2]})).write(first)
    stored = Table.stored(first, metadata=props)
    second = tmp_path / "second"
    second.mkdir()
    assert stored.write(second) == props
    assert fingerprint(second) == fingerprint(first)


def test_types_register_by_name() -> None:
    assert artifact_class("Table") is Table
    assert artifact_class("Metrics") is Metrics
    assert artifact_class("Report") is Report
    assert artifact_class(f"NoSuchType{uuid.uuid4().hex}") is Artifact


def test_duplicate_type_name_from_another_class_is_refused() -> None:
    name = f"Custom{uuid.uuid4().hex[:8]}"

    def first() -> type[Artifact]:
        class Custom(Artifact):
            type_name = name

        return Custom

    def second() -> type[Artifact]:
        class Custom(Artifact):
            type_name = name

        return Custom

    registered = first()
    assert artifact_class(name) is registered
    # The same class defined again (a module imported twice) is fine.
    again = first()
    assert artifact_class(name) is again

    with pytest.raises(ArtifactError, match=f"artifact type name '{name}' is taken"):
        second()
    assert artifact_class(name) is again, "a refused class must not replace the registered one"

    with pytest.raises(ArtifactError, match=r"'Table' is taken by kiln\.artifacts\._types\.Table"):
        type("Table", (Artifact,), {"__qualname__": "elsewhere.Table"})
    assert artifact_class("Table") is Table


def test_subclass_type_name_defaults_to_class_name() -> None:
    name = f"Auto{uuid.uuid4().hex[:8]}"
    cls = cast("type[Artifact]", type(name, (Artifact,), {}))
    assert cls.type_name == name
    assert artifact_class(name) is cls
    out = cls(None)
    assert out.read() is None
