"""The README's examples run: its quickstart commands and its pipeline, as written."""

from __future__ import annotations

import importlib.resources
import re
import shlex
from pathlib import Path

from conftest import kiln

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_the_readme_pipeline_runs_and_caches(tmp_path: Path) -> None:
    code = _blocks("python")[0]
    (tmp_path / "readme_pipeline.py").write_text(code)
    first = kiln("run", "readme_pipeline.py", "--explain-cache", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 ran, 0 from cache" in first.stdout
    second = kiln(
        "run", "readme_pipeline.py", "--param", "scale=2", "--explain-cache", cwd=tmp_path
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "numbers  hit" in second.stdout
    assert "summarise  miss: parameter 'scale' changed (1.0 -> 2.0)" in second.stdout
    assert "1 ran, 1 from cache" in second.stdout


def test_every_quickstart_command_runs(tmp_path: Path) -> None:
    commands = [
        line.split("#")[0].strip()
        for block in _blocks("sh")
        for line in block.splitlines()
        if line.startswith("kiln ")
    ]
    assert len(commands) >= 8, commands
    penguins = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    (tmp_path / "penguins.csv").write_bytes(penguins.read_bytes())
    for command in commands:
        args = [a.replace("examples/", f"{ROOT}/examples/") for a in shlex.split(command)[1:]]
        proc = kiln(*args, cwd=tmp_path)
        if args[:2] == ["runs", "show"]:  # RUN_ID stands for a real one: take the newest
            run_id = re.search(
                r"(hello-\d{8}-\d{6}-[0-9a-f]{4})", kiln("runs", cwd=tmp_path).stdout
            )
            assert run_id is not None
            proc = kiln("runs", "show", run_id.group(1), cwd=tmp_path)
        assert proc.returncode == 0, f"{command}:\n{proc.stdout}{proc.stderr}"
        assert "Traceback" not in proc.stderr


def test_the_readme_training_example_runs(tmp_path: Path, penguins: Path) -> None:
    import subprocess
    import sys

    code = _blocks("python")[1]
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code + "\nprint('ok')"],
        cwd=penguins.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (penguins.parent / "species_model" / "manifest.json").is_file()
