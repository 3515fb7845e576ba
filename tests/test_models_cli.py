"""``kiln models`` through the real command, in a workspace made with ``kiln init``: the table,
show, register, alias, rollback, delete, tag, --json, and every user mistake as one clean line."""

from __future__ import annotations

import importlib.resources
import json
import re
import warnings
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from conftest import assert_clean_error, kiln
from kiln.model import Model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model folder with metrics in its manifest."""
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(null_values=["NA"]))
    t = t.filter(pc.is_valid(t["body_mass_g"])).select(["flipper_length_mm", "body_mass_g"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = Model.fit(t, model_type="linear_reg", label="body_mass_g")
    fitted.metrics = {"r2_score": 0.76, "mean_absolute_error": 310.5, "curve": [1, 2]}
    return fitted.save(tmp_path_factory.mktemp("model") / "model")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proc = kiln("init", str(tmp_path / "project"))
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "project"


def _ok(project: Path, *args: str) -> str:
    proc = kiln("models", *args, cwd=project, env={"USER": "carol"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr
    return proc.stdout


def test_the_registry_from_the_shell(project: Path, model_dir: Path) -> None:
    assert "no models registered yet" in _ok(project)
    out = _ok(
        project,
        "register",
        "iris",
        str(model_dir),
        "--description",
        "flipper baseline",
        "--tag",
        "team=birds",
        "--alias",
        "staging",
    )
    assert re.search(r"registered models:/iris/1 \(Model artifact #\d+\); staging → 1", out), out
    assert "registered models:/iris/2" in _ok(project, "register", "iris", str(model_dir))
    assert "registered models:/iris/3" in _ok(project, "register", "iris", str(model_dir))

    out = _ok(project, "alias", "iris", "1", "production", "--reason", "first release")
    assert "production of iris: unset → version 1 (models:/iris/1)" in out
    out = _ok(project, "alias", "iris", "2", "production", "--reason", "better on May data")
    assert "production of iris: version 1 → version 2" in out
    assert "already points at version 2; unchanged" in _ok(
        project, "alias", "iris", "2", "production"
    )
    out = _ok(project, "tag", "iris", "owner", "ml-team")
    assert "tagged iris: owner=ml-team" in out
    assert "tagged iris version 2: stage=prod" in _ok(
        project, "tag", "iris", "stage", "prod", "--version", "2"
    )
    _ok(project, "tag", "iris", "traffic_split", "1:50,2:50")
    assert "removed tag traffic_split from iris" in _ok(project, "untag", "iris", "traffic_split")
    gone = kiln("models", "untag", "iris", "traffic_split", cwd=project)
    assert_clean_error(gone, "has no tag 'traffic_split'")

    table = _ok(project)
    [row] = [line for line in table.splitlines() if line.startswith("iris")]
    assert re.search(r"iris\s+3\s+3\s+production → 2, staging → 1", row), table

    shown = _ok(project, "show", "iris")
    assert "production → 2, staging → 1" in shown
    assert "owner=ml-team" in shown
    assert "r2_score=0.76" in shown  # from the model's manifest
    assert "mean_absolute_error=310.5" in shown
    assert "flipper baseline" in shown
    assert "better on May data" in shown
    assert "1 → 2" in shown
    assert "carol" in shown
    assert shown.index("alias history") > shown.index("flipper baseline")

    data = json.loads(_ok(project, "show", "iris", "--json"))
    assert data["model"]["aliases"] == {"production": 2, "staging": 1}
    assert data["model"]["tags"] == {"owner": "ml-team"}
    versions = {v["version"]: v for v in data["versions"]}
    assert sorted(versions) == [1, 2, 3]
    assert versions[2]["tags"] == {"stage": "prod"}
    assert versions[2]["metrics"] == {"r2_score": 0.76, "mean_absolute_error": 310.5}
    assert versions[1]["uri"] == "models:/iris/1"
    assert Path(versions[1]["path"], "manifest.json").is_file()
    assert versions[1]["actor"] == "carol"
    assert [(e["previous_version"], e["version"]) for e in data["history"]] == [
        (None, 1),
        (None, 1),
        (1, 2),
    ]
    listed = json.loads(_ok(project, "--json"))
    assert [(m["name"], m["latest_version"]) for m in listed] == [("iris", 3)]

    out = _ok(project, "rollback", "iris", "--reason", "latency regression")
    assert "production of iris: version 2 → version 1 (rolled back; models:/iris/1)" in out
    history = json.loads(_ok(project, "show", "iris", "--json"))["history"]
    assert history[-1]["action"] == "rollback"
    assert history[-1]["reason"] == "latency regression"

    out = _ok(project, "delete", "iris", "3")
    assert "deleted models:/iris/3" in out
    assert "stays in the store" in out
    assert "registered models:/iris/4" in _ok(project, "register", "iris", str(model_dir))

    # the version's lineage: kiln lineage of its ModelVersion artifact shows the registration
    version_artifact = next(
        line.split()[0]
        for line in kiln("artifacts", "--type", "ModelVersion", cwd=project).stdout.splitlines()
        if line.split() and line.split()[0].isdigit()
    )
    lineage = kiln("lineage", version_artifact, cwd=project)
    assert lineage.returncode == 0, lineage.stderr
    assert "kiln.Register" in lineage.stdout
    assert "model: Model #" in lineage.stdout


def test_mistakes_are_one_clean_line(project: Path, model_dir: Path) -> None:
    _ok(project, "register", "iris", str(model_dir), "--alias", "production")
    _ok(project, "register", "penguins", str(model_dir))

    def fails(*args: str, needles: tuple[str, ...]) -> None:
        proc = kiln("models", *args, cwd=project)
        assert_clean_error(proc, *needles)
        assert proc.stderr.count("error:") == 1, proc.stderr
        assert proc.stdout == ""

    fails("show", "irsi", needles=("no model 'irsi'; did you mean 'iris'? Models: iris, penguins",))
    fails("alias", "iris", "9", "production", needles=("model 'iris' has no version 9",))
    fails("alias", "iris", "1", "Prod", needles=("alias 'Prod' is not valid",))
    fails("alias", "iris", "1", "latest", needles=("'latest' is reserved",))
    fails("rollback", "iris", needles=("no previous holder", "kiln models alias iris VERSION"))
    fails(
        "rollback",
        "iris",
        "--alias",
        "prodution",
        needles=("did you mean 'production'?",),
    )
    fails(
        "delete",
        "iris",
        "1",
        needles=("version 1 of model 'iris' holds alias production", "move it first"),
    )
    fails("delete", "iris", "7", needles=("no version 7",))
    fails("register", "bad/name", str(model_dir), needles=("model name 'bad/name' is not valid",))
    fails("register", "iris", "no-such-folder", needles=("no model folder no-such-folder",))
    fails(
        "register",
        "iris",
        str(model_dir),
        "--tag",
        "oops",
        needles=("--tag 'oops' is not KEY=VALUE",),
    )
    fails("tag", "iris", "k", "v", "--version", "5", needles=("no version 5",))
    # not a model folder at all: the model format's own message, still one line
    not_a_model = project / "not-a-model"
    not_a_model.mkdir()
    fails("register", "iris", str(not_a_model), needles=("is not a Kiln model",))
    # nothing above changed the registry
    data = json.loads(_ok(project, "show", "iris", "--json"))
    assert [v["version"] for v in data["versions"]] == [1]
    assert data["model"]["aliases"] == {"production": 1}
