"""Fail when source code could load something by executing it: pickle and its relatives,
``numpy.load(..., allow_pickle=True)``, ``torch.load`` without ``weights_only=True``, ``eval``
or ``exec`` of strings. Kiln's models and artifacts load without running code; this keeps it so.

Usage: ``python tools/check_safe_formats.py [FOLDER ...]`` (default: src). Exit code 1 on a finding.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RULES = [
    (
        re.compile(r"^\s*(import|from)\s+(pickle|cPickle|cloudpickle|joblib|dill|shelve)\b"),
        "pickle",
    ),
    (re.compile(r"allow_pickle\s*=\s*True"), "numpy pickle loading"),
    (
        re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
        "torch.load without weights_only",
    ),
    (re.compile(r"(?<![\w.])(eval|exec)\("), "eval/exec of a string"),
]


def findings(folders: list[Path]) -> list[str]:
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                for pattern, what in RULES:
                    if pattern.search(code):
                        found.append(f"{path}:{number}: {what}: {line.strip()}")
    return found


def main() -> int:
    folders = [Path(a) for a in sys.argv[1:]] or [Path("src")]
    found = findings(folders)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} unsafe loading construct(s): models must load without running code")
        return 1
    print(f"no unsafe loading constructs in {', '.join(map(str, folders))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
