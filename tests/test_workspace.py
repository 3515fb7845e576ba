"""The workspace: creating and finding it, and its settings (defaults < kiln.toml < environment)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import assert_clean_error, kiln
from kiln.errors import WorkspaceError
from kiln.workspace import CONFIG_FILE, Settings, Workspace


def _toml(folder: Path, body: str) -> Workspace:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(body)
    return Workspace(folder)


# ---------------------------------------------------------------------- creating


def test_cli_init_creates_a_workspace(tmp_path: Path) -> None:
    target = tmp_path / "new" / "project"
    proc = kiln("init", str(target))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Initialised a Kiln workspace in {target}" in proc.stdout
    assert (target / CONFIG_FILE).is_file()
    assert (target / ".kiln").is_dir()
    assert (target / ".kiln" / "metadata.db").is_file(), "init creates the database"
    # The template is valid and gives the defaults.
    settings = Workspace(target).settings
    assert settings == Settings(
        metadata_url=f"sqlite:///{target / '.kiln' / 'metadata.db'}",
        artifact_root=str(target / ".kiln" / "artifacts"),
        busy_timeout=30.0,
    )


def test_cli_init_twice_changes_nothing(tmp_path: Path) -> None:
    assert kiln("init", str(tmp_path)).returncode == 0
    config = tmp_path / CONFIG_FILE
    config.write_text(config.read_text() + "# my own note\n")
    before = config.read_text()
    proc = kiln("init", str(tmp_path))
    assert proc.returncode == 0
    assert f"{tmp_path} is already a Kiln workspace; nothing changed" in proc.stdout
    assert config.read_text() == before


def test_cli_init_defaults_to_the_current_folder(tmp_path: Path) -> None:
    proc = kiln("init", cwd=tmp_path)
    assert proc.returncode == 0
    assert (tmp_path / CONFIG_FILE).is_file()


def test_cli_init_where_nothing_can_be_written(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("a file, not a folder")
    proc = kiln("init", str(tmp_path / "file.txt" / "ws"))
    assert_clean_error(proc, "cannot create a workspace in", "kiln init DIR")


def test_init_api_reports_whether_it_created(tmp_path: Path) -> None:
    ws, created = Workspace.init(tmp_path / "w")
    assert created
    assert ws.root == (tmp_path / "w").resolve()
    _, created_again = Workspace.init(tmp_path / "w")
    assert not created_again


# ---------------------------------------------------------------------- finding


def test_find_walks_up_from_a_nested_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Workspace.init(tmp_path / "proj")
    nested = tmp_path / "proj" / "src" / "deep" / "er"
    nested.mkdir(parents=True)
    found = Workspace.find(nested)
    assert found is not None
    assert found.root == (tmp_path / "proj").resolve()
    monkeypatch.chdir(nested)
    cwd_found = Workspace.find()
    assert cwd_found is not None
    assert cwd_found.root == (tmp_path / "proj").resolve()


def test_find_takes_the_nearest_workspace(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "outer")
    Workspace.init(tmp_path / "outer" / "inner")
    (tmp_path / "outer" / "inner" / "x").mkdir()
    found = Workspace.find(tmp_path / "outer" / "inner" / "x")
    assert found is not None
    assert found.root == (tmp_path / "outer" / "inner").resolve()


def test_find_ignores_a_folder_named_kiln_toml(tmp_path: Path) -> None:
    (tmp_path / "a" / CONFIG_FILE).mkdir(parents=True)
    assert Workspace.find(tmp_path / "a") is None


def test_find_returns_none_without_a_workspace(tmp_path: Path) -> None:
    assert Workspace.find(tmp_path) is None


def test_kiln_home_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.init(tmp_path / "here")
    Workspace.init(tmp_path / "home")
    monkeypatch.setenv("KILN_HOME", str(tmp_path / "home"))
    found = Workspace.find(tmp_path / "here")
    assert found is not None
    assert found.root == (tmp_path / "home").resolve()


def test_kiln_home_wins_in_the_cli(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "here")
    Workspace.init(tmp_path / "home")
    proc = kiln("runs", cwd=tmp_path / "here", env={"KILN_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no workspace found" not in proc.stderr
    # Only the KILN_HOME workspace was opened: its database exists, the other's does not yet.
    assert (tmp_path / "home" / ".kiln" / "metadata.db").is_file()
    assert not (tmp_path / "here" / ".kiln" / "metadata.db").exists()


def test_kiln_home_without_kiln_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("KILN_HOME", str(tmp_path / "empty"))
    with pytest.raises(WorkspaceError, match=r"has no kiln\.toml; run `kiln init"):
        Workspace.find(tmp_path)
    with pytest.raises(WorkspaceError):
        Workspace.find_or_create(tmp_path)
    assert not (tmp_path / "empty" / CONFIG_FILE).exists(), "KILN_HOME is never created silently"


def test_kiln_home_without_kiln_toml_in_the_cli(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    proc = kiln("runs", cwd=tmp_path, env={"KILN_HOME": str(missing)})
    assert_clean_error(proc, f"KILN_HOME={missing} has no kiln.toml", "unset KILN_HOME")
    assert not (tmp_path / CONFIG_FILE).exists()


def test_missing_workspace_is_created_with_a_notice(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    proc = kiln("runs", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notice = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(notice) == 1, proc.stderr
    assert notice[0].startswith("kiln: no workspace found; created one in ")
    assert str(folder) in notice[0]
    assert (folder / CONFIG_FILE).is_file()
    assert (folder / ".kiln").is_dir()

    second = kiln("runs", cwd=folder)
    assert second.returncode == 0
    assert "no workspace found" not in second.stderr


def test_find_or_create_quietly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace.find_or_create(tmp_path, notice=False)
    assert ws.root == tmp_path.resolve()
    assert (tmp_path / CONFIG_FILE).is_file()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------- settings


def test_defaults_without_a_workspace_table(tmp_path: Path) -> None:
    ws = _toml(tmp_path / "w", "# nothing here\n")
    root = (tmp_path / "w").resolve()
    assert ws.settings == Settings(
        metadata_url=f"sqlite:///{root / '.kiln' / 'metadata.db'}",
        artifact_root=str(root / ".kiln" / "artifacts"),
        busy_timeout=30.0,
    )


def test_kiln_toml_overrides_defaults(tmp_path: Path) -> None:
    ws = _toml(
        tmp_path / "w",
        '[workspace]\nmetadata_url = "sqlite:////abs/meta.db"\n'
        'artifact_root = "s3://bucket/kiln"\nbusy_timeout = 5\n',
    )
    assert ws.settings == Settings("sqlite:////abs/meta.db", "s3://bucket/kiln", 5.0)


def test_environment_overrides_kiln_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _toml(
        tmp_path / "w",
        '[workspace]\nmetadata_url = "sqlite:///toml.db"\n'
        'artifact_root = "toml-artifacts"\nbusy_timeout = 5\n',
    )
    monkeypatch.setenv("KILN_METADATA_URL", "postgresql+psycopg://kiln@db.example/kiln")
    monkeypatch.setenv("KILN_ARTIFACT_ROOT", str(tmp_path / "env-artifacts"))
    monkeypatch.setenv("KILN_METADATA_BUSY_TIMEOUT", "2.5")
    assert ws.settings == Settings(
        "postgresql+psycopg://kiln@db.example/kiln", str(tmp_path / "env-artifacts"), 2.5
    )


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ("KILN_METADATA_URL", "metadata_url"),
        ("KILN_ARTIFACT_ROOT", "artifact_root"),
        ("KILN_METADATA_BUSY_TIMEOUT", "busy_timeout"),
    ],
)
def test_each_variable_overrides_only_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, key: str
) -> None:
    body = '[workspace]\nmetadata_url = "sqlite:////t.db"\nartifact_root = "/t"\nbusy_timeout = 5\n'
    toml_only = _toml(tmp_path / "a", body).settings
    assert toml_only == Settings("sqlite:////t.db", "/t", 5.0)
    raw, parsed = {
        "metadata_url": ("sqlite:////e.db", "sqlite:////e.db"),
        "artifact_root": ("/e", "/e"),
        "busy_timeout": ("7", 7.0),
    }[key]
    monkeypatch.setenv(env, raw)
    with_env = _toml(tmp_path / "b", body).settings
    assert dataclasses.asdict(with_env) == {**dataclasses.asdict(toml_only), key: parsed}


def test_an_empty_variable_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _toml(tmp_path / "w", "[workspace]\nbusy_timeout = 5\n")
    monkeypatch.setenv("KILN_METADATA_BUSY_TIMEOUT", "")
    assert ws.settings.busy_timeout == 5.0


def test_relative_paths_resolve_against_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _toml(
        tmp_path / "w",
        '[workspace]\nmetadata_url = "sqlite:///state/meta.db"\nartifact_root = "store/arts"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder does not matter
    root = (tmp_path / "w").resolve()
    assert ws.settings.metadata_url == f"sqlite:///{root / 'state' / 'meta.db'}"
    assert ws.settings.artifact_root == str(root / "store" / "arts")
    assert ws.artifacts.local_root == root / "store" / "arts"


def test_the_stores_use_the_settings(tmp_path: Path) -> None:
    ws = _toml(
        tmp_path / "w", '[workspace]\nmetadata_url = "sqlite:///m.db"\nartifact_root = "arts"\n'
    )
    try:
        ws.metadata.put_context_type("probe", {})
        ws.artifacts.check_writable()
    finally:
        ws.close()
    assert (tmp_path / "w" / "m.db").is_file()
    assert (tmp_path / "w" / "arts" / ".staging").is_dir()
    assert not (tmp_path / "w" / ".kiln" / "metadata.db").exists()


def test_special_urls_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _toml(
        tmp_path / "w",
        '[workspace]\nmetadata_url = "sqlite:///:memory:"\nartifact_root = "gs://b/p"\n',
    )
    assert ws.settings.metadata_url == "sqlite:///:memory:"
    assert ws.settings.artifact_root == "gs://b/p"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ws2 = _toml(tmp_path / "w2", '[workspace]\nartifact_root = "~/arts"\n')
    assert ws2.settings.artifact_root == str(tmp_path / "home" / "arts")


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("[workspace\nbusy_timeout = 5\n", ["kiln.toml is not valid TOML", "Fix the file"]),
        ('[workspace]\nmetadata_url = "a"\nmetadata_url = "b"\n', ["is not valid TOML"]),
        (
            "[workspace]\nbusy_timout = 5\n",
            ["unknown setting(s) busy_timout in [workspace]", "known: metadata_url"],
        ),
        (
            '[workspace]\nbusy_timeout = "soon"\n',
            ["[workspace] busy_timeout = 'soon' is not a number of seconds", "fix it or unset it"],
        ),
        ("[workspace]\nbusy_timeout = true\n", ["busy_timeout = True is not a number"]),
        ("[workspace]\nbusy_timeout = -1\n", ["busy_timeout = -1 is not a number"]),
        ("[workspace]\nbusy_timeout = inf\n", ["busy_timeout = inf is not a number"]),
        ("[workspace]\nbusy_timeout = nan\n", ["busy_timeout = nan is not a number"]),
        ('[workspace]\nartifact_root = ["a"]\n', ["artifact_root = ['a'] is not a string"]),
        ("[workspace]\nmetadata_url = 5\n", ["metadata_url = 5 is not a string"]),
    ],
)
def test_bad_kiln_toml_is_one_clear_error(tmp_path: Path, body: str, needles: list[str]) -> None:
    (tmp_path / CONFIG_FILE).write_text(body)
    with pytest.raises(WorkspaceError):
        _ = Workspace(tmp_path).settings
    proc = kiln("runs", cwd=tmp_path)
    assert_clean_error(proc, str(tmp_path / CONFIG_FILE), *needles)
    assert proc.stderr.count("error:") == 1


@pytest.mark.parametrize("value", ["soon", "inf", "nan", "-3"])
def test_bad_busy_timeout_variable_is_one_clear_error(tmp_path: Path, value: str) -> None:
    Workspace.init(tmp_path)
    proc = kiln("runs", cwd=tmp_path, env={"KILN_METADATA_BUSY_TIMEOUT": value})
    assert_clean_error(
        proc, f"environment variable KILN_METADATA_BUSY_TIMEOUT = '{value}' is not a number"
    )


def test_busy_timeout_from_the_environment_reaches_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Workspace.init(tmp_path)
    monkeypatch.setenv("KILN_METADATA_BUSY_TIMEOUT", "0.25")
    ws = Workspace(tmp_path)
    try:
        assert ws.metadata.busy_timeout == 0.25
    finally:
        ws.close()
