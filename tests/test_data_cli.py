"""`kiln stats`, `kiln schema infer` and `kiln validate` on the penguins, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ANOMALY_KEYS, assert_clean_error, kiln
from kiln.data import Statistics


def test_stats_writes_json_and_a_self_contained_report(tmp_path: Path, penguins: Path) -> None:
    proc = kiln(
        "stats", str(penguins), "--out", "stats.json", "--html", "report.html", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "body_mass_g" in proc.stdout
    assert "344 rows" in proc.stdout
    stats = Statistics.read(tmp_path / "stats.json")
    mass = stats.dataset().feature("body_mass_g")
    assert mass is not None
    assert mass.num_missing == 2
    assert mass.numeric is not None
    assert mass.numeric.min == 2700
    assert mass.numeric.max == 6300
    page = (tmp_path / "report.html").read_text()
    assert "flipper_length_mm" in page
    assert "https://" not in page
    assert "http://" not in page
    assert not (tmp_path / "kiln.toml").exists()  # data commands need no workspace


def test_stats_compare_shows_drift(tmp_path: Path, penguins: Path) -> None:
    header, *rows = penguins.read_text().splitlines()
    gentoo = tmp_path / "gentoo.csv"
    gentoo.write_text("\n".join([header, *(r for r in rows if r.startswith("Gentoo"))]) + "\n")
    proc = kiln(
        "stats", str(gentoo), "--compare", str(penguins), "--html", "cmp.html", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "drift" in proc.stdout
    species_line = next(line for line in proc.stdout.splitlines() if "species" in line)
    # all Gentoo against 124/344 Gentoo: L-infinity = 1 - 124/344
    assert f"{1 - 124 / 344:.4g}" in species_line, species_line
    assert "gentoo.csv" in (tmp_path / "cmp.html").read_text()


def test_infer_then_validate_clean_data(tmp_path: Path, penguins: Path) -> None:
    infer = kiln("schema", "infer", str(penguins), "--out", "schema.yaml", cwd=tmp_path)
    assert infer.returncode == 0, infer.stderr
    text = (tmp_path / "schema.yaml").read_text()
    assert "species" in text
    assert "Adelie" in text  # a small string domain
    clean = kiln("validate", str(penguins), "--schema", "schema.yaml", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no anomalies" in clean.stdout
    as_json = kiln(
        "validate", str(penguins), "--schema", "schema.yaml", "--format", "json", cwd=tmp_path
    )
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == {"anomalies": []}
    # a statistics file is accepted wherever data is
    kiln("stats", str(penguins), "--out", "stats.json", cwd=tmp_path)
    from_stats = kiln("validate", "stats.json", "--schema", "schema.yaml", cwd=tmp_path)
    assert from_stats.returncode == 0, from_stats.stdout + from_stats.stderr


def test_validate_reports_anomalies_with_exit_code_1(tmp_path: Path, penguins: Path) -> None:
    kiln("schema", "infer", str(penguins), "--out", "schema.yaml", cwd=tmp_path)
    header, *rows = penguins.read_text().splitlines()
    bad = tmp_path / "serving.csv"
    bad.write_text("\n".join([header, *rows, "Emperor,Ross,40.1,18.0,190,4000,male,2010"]) + "\n")
    proc = kiln("validate", str(bad), "--schema", "schema.yaml", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    body = json.loads(proc.stdout)  # nothing but the JSON on stdout
    species = [a for a in body["anomalies"] if a["feature"] == "species"]
    assert species, body
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in species[0]["types"]
    assert set(species[0]) == ANOMALY_KEYS
    text = kiln("validate", str(bad), "--schema", "schema.yaml", cwd=tmp_path)
    assert text.returncode == 1
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in text.stdout


def test_validate_bad_inputs_are_clean_errors(tmp_path: Path, penguins: Path) -> None:
    kiln("schema", "infer", str(penguins), "--out", "schema.yaml", cwd=tmp_path)
    missing = kiln("validate", "nope.csv", "--schema", "schema.yaml", cwd=tmp_path)
    assert_clean_error(missing, "nope.csv")
    (tmp_path / "broken.yaml").write_text("features:\n  - name: a\n    type: [unclosed\n")
    broken = kiln("validate", str(penguins), "--schema", "broken.yaml", cwd=tmp_path)
    assert_clean_error(broken, "broken.yaml", "line")
    mode = kiln("validate", str(penguins), "--schema", "schema.yaml", "--mode", "x", cwd=tmp_path)
    assert_clean_error(mode, "--mode")
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    unsupported = kiln("stats", "data.xlsx", cwd=tmp_path)
    assert_clean_error(unsupported, "data.xlsx")


def test_environments_and_drift_from_the_cli(tmp_path: Path, penguins: Path) -> None:
    from kiln.data import read_schema, write_schema

    kiln("schema", "infer", str(penguins), "--out", "schema.yaml", cwd=tmp_path)
    schema = read_schema(tmp_path / "schema.yaml")
    schema.set_environments("species", not_in_environment=["SERVING"])  # the label
    schema.set_drift_threshold("island", 0.1)
    write_schema(schema, tmp_path / "schema.yaml")

    header, *rows = penguins.read_text().splitlines()
    serving = tmp_path / "serving.csv"  # no label column at serving time
    serving.write_text("\n".join(line.split(",", 1)[1] for line in [header, *rows]) + "\n")
    ok = kiln(
        "validate",
        str(serving),
        "--schema",
        "schema.yaml",
        "--environment",
        "SERVING",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    missing = kiln(
        "validate", str(serving), "--schema", "schema.yaml", "--format", "json", cwd=tmp_path
    )
    assert missing.returncode == 1
    (anomaly,) = json.loads(missing.stdout)["anomalies"]
    assert anomaly["feature"] == "species"
    assert anomaly["types"] == ["SCHEMA_MISSING_COLUMN"]

    gentoo = tmp_path / "gentoo.csv"  # every Gentoo lives on Biscoe: island drifts
    gentoo.write_text("\n".join([header, *(r for r in rows if r.startswith("Gentoo"))]) + "\n")
    drift = kiln(
        "validate",
        str(gentoo),
        "--schema",
        "schema.yaml",
        "--baseline",
        str(penguins),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert drift.returncode == 1, drift.stdout + drift.stderr
    island = next(a for a in json.loads(drift.stdout)["anomalies"] if a["feature"] == "island")
    assert "COMPARATOR_L_INFTY_HIGH" in island["types"]
    assert island["value"] == pytest.approx(1 - 168 / 344, abs=1e-9)
    assert island["threshold"] == 0.1


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("malformed.csv", b"a,b,c\n1,2,3\n4,5\n", ["malformed.csv", "line 3", "expected 3 fields"]),
        ("empty.csv", b"", ["empty.csv", "empty"]),
        ("dupes.csv", b"a,b,a\n1,2,3\n", ["dupes.csv", "'a'"]),
        ("latin.csv", b"name,n\nok,1\ncaf\xe9,2\n", ["latin.csv", "line 3", "'name'"]),
        ("mixed.jsonl", b'{"a": 1}\n{"a": 2}\n{"a": "x"}\n', ["mixed.jsonl", "line 3", "'a'"]),
        ("data.xlsx", b"PK\x03\x04", ["data.xlsx"]),
    ],
    ids=["malformed-row", "empty", "duplicate-columns", "non-utf8", "mixed-types", "unsupported"],
)
def test_bad_data_is_one_clear_error(
    tmp_path: Path, name: str, content: bytes, needles: list[str]
) -> None:
    (tmp_path / name).write_bytes(content)
    assert_clean_error(kiln("stats", name, cwd=tmp_path), *needles)


def test_odd_but_valid_data_describes_cleanly(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("a,b\n")
    header_only = kiln("stats", "header.csv", cwd=tmp_path)
    assert header_only.returncode == 0, header_only.stderr
    assert "0 rows" in header_only.stdout
    (tmp_path / "nulls.csv").write_text("a,b\n1,\n2,\n")
    nulls = kiln("stats", "nulls.csv", "--out", "nulls.json", cwd=tmp_path)
    assert nulls.returncode == 0, nulls.stderr
    b = Statistics.read(tmp_path / "nulls.json").dataset().feature("b")
    assert b is not None
    assert (b.count, b.num_missing) == (0, 2)
