"""Conformance checks that every artifact type and every runner must pass, shipped with Kiln so
that a new type or runner (Kiln's own, or a plug-in's) is held to the same contract::

    from kiln.testing import check_artifact_type, check_runner

    check_artifact_type(Table, pyarrow.table({"x": [1, 2]}))
    check_runner(LocalRunner(workers=2), workspace)
    check_trainer(get_trainer("linear_reg")(), X, y)

Each check raises ``AssertionError`` naming the rule that was broken.
"""

from __future__ import annotations

from kiln.testing._conformance import check_artifact_type, check_runner, check_trainer

__all__ = ["check_artifact_type", "check_runner", "check_trainer"]
