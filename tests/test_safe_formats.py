"""The `make check` guard against code-executing loaders: it passes on Kiln and fails on each
construct it exists to catch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "check_safe_formats.py"


def _check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), str(folder)], capture_output=True, text=True, check=False
    )


def test_kiln_itself_is_clean() -> None:
    proc = _check(ROOT / "src")
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize(
    "line",
    [
        "import pickle",
        "from joblib import load",
        "import cloudpickle",
        "arrays = np.load(path, allow_pickle=True)",
        "state = torch.load(path)",
        "state = torch.load(path, map_location='cpu')",
        "value = eval(text)",
    ],
)
def test_each_unsafe_construct_fails_the_check(tmp_path: Path, line: str) -> None:
    (tmp_path / "bad.py").write_text(f"{line}\n")
    proc = _check(tmp_path)
    assert proc.returncode == 1
    assert "bad.py:1" in proc.stdout


def test_safe_forms_pass(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text(
        "arrays = np.load(path, allow_pickle=False)\n"
        "state = torch.load(path, weights_only=True)\n"
        "spec.loader.exec_module(module)\n"
        "# import pickle  (a comment)\n"
    )
    assert _check(tmp_path).returncode == 0
