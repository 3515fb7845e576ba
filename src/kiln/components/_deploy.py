"""The components from new data to a registered model, TFX's names and roles: DriftCheck, AutoML
(a Trainer that searches), ChampionEvaluator (the Evaluator against the current production
model), InfraValidator, Pusher and BulkInferrer.

- ``DriftCheck`` records how far the new data drifted from the data the production model was
  trained on (TFDV's distances), without stopping the run.
- ``AutoML`` runs :func:`kiln.automl.fit` on the train split and emits an ordinary ``Model``.
- ``ChampionEvaluator`` evaluates the candidate and the champion (the version holding the alias,
  looked up when the step runs) on the same rows, so that change thresholds ("no worse than
  production") apply, and writes the evaluation's HTML report.
- ``InfraValidator`` loads the candidate in a fresh Python process, warms it up and predicts
  sample rows one at a time and as a batch; it blesses the model when that works and the 99th
  percentile of the single-row latency is within the budget (TFX's InfraValidator, without a
  container: Kiln serves in-process).
- ``Pusher`` registers the candidate as a new version of ``model_name`` in the workspace's
  registry, and moves the alias to it only when both blessings passed; its ``PushedModel`` says
  which way it went and why.
- ``BulkInferrer`` predicts a split with the model (TFX's BulkInferrer) into a ``Table``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from kiln._workers import worker_env
from kiln.artifacts import (
    Dataset,
    InfraBlessing,
    Metrics,
    Model,
    ModelEvaluation,
    PushedModel,
    Report,
    Statistics,
    Table,
)
from kiln.components._training import _evaluation_result
from kiln.errors import NotFoundError, PipelineError, TrainingError
from kiln.orchestration import component, step_context

if TYPE_CHECKING:
    from kiln.registry import ModelRegistry

__all__ = [
    "AutoML",
    "BulkInferrer",
    "ChampionEvaluation",
    "ChampionEvaluator",
    "DriftCheck",
    "InfraValidator",
    "Pusher",
]


@component(name="AutoML")
def AutoML(
    dataset: Dataset,
    label: str,
    time_budget: float = 60.0,
    metric: str = "",
    task: str = "auto",
    exclude: list[str] | None = None,
    split: str = "train",
    seed: int = 0,
) -> Model:
    """The best model :func:`kiln.automl.fit` finds for ``label`` on ``split`` in
    ``time_budget`` seconds; its leaderboard is in the model's metrics (``metrics["automl"]``)."""
    from kiln.automl import fit

    def show(p: Any) -> None:
        best = "-" if p.best_score is None else f"{p.best_score:.5g}"
        print(
            f"[{p.elapsed_s:6.1f} s] candidate {p.candidates}: {p.last_model_type} "
            f"{p.last_status}; best {p.metric} {best} ({p.best_model_type})",
            flush=True,
        )

    result = fit(
        dataset.split(split),
        label,
        task=task,
        metric=metric or None,
        time_budget=time_budget,
        exclude=exclude or [],
        seed=seed,
        progress=show,
    )
    print(
        f"chose {result.model.trainer.model_type}: {result.metric} {result.best_score:.5g} by "
        f"{result.validation} in {result.elapsed_s:.1f} s"
    )
    return Model(result.model)


class ChampionEvaluation(NamedTuple):
    """The ChampionEvaluator's outputs: the evaluation (metrics, blessing, champion) and its
    HTML report (curves, confusion matrix or residuals, the champion's numbers beside)."""

    evaluation: ModelEvaluation
    report: Report


@component(name="ChampionEvaluator")
def ChampionEvaluator(
    dataset: Dataset,
    model: Model,
    model_name: str = "",
    alias: str = "production",
    champion: str = "auto",
    split: str = "eval",
    thresholds: list[dict[str, Any]] | None = None,
    slice_by: list[str] | None = None,
    importance: bool = False,
) -> ChampionEvaluation:
    """Evaluate the candidate on ``split`` against the champion, and bless it when every
    threshold holds (:class:`kiln.evaluate.MetricThreshold` fields; per slice too with
    ``slice_by``).

    ``champion``: ``auto`` is the version holding ``alias`` of ``model_name`` in the registry
    when the step runs (none on a first run: change thresholds then pass with a note); ``""``
    none; else a model folder or a ``models:/`` URI. The champion is looked up when the step
    runs, not when the pipeline is built, so a rerun on unchanged data and settings stays a cache
    hit; new data (a new candidate) is always judged against the current champion. The
    evaluation records which champion it was (``champion``)."""
    from kiln.model import Model as FittedModel
    from kiln.model import evaluation_html

    label = ""
    baseline = None
    if champion == "auto":
        # outside a pipeline (a direct call) there is no registry, so no champion
        holder = (
            _registry("ChampionEvaluator").alias(model_name, alias)
            if model_name and step_context() is not None
            else None
        )
        if holder is not None:
            baseline, label = holder.load(), f"{holder.uri} ({alias})"
    elif champion.startswith("models:/"):
        resolved = _registry("a models:/ champion").resolve(champion)
        baseline = FittedModel.load(resolved) if isinstance(resolved, Path) else resolved.load()
        label = champion
    elif champion:
        baseline, label = FittedModel.load(Path(champion)), champion
    print(f"champion: {label or 'none'}")
    result = _evaluation_result(
        dataset,
        model,
        baseline,
        split,
        thresholds or [],
        slice_by or [],
        importance,
        fail_if_not_blessed=False,
    )
    title = f"{model_name or 'model'}: candidate" + (f" vs {label}" if label else "")
    return ChampionEvaluation(
        ModelEvaluation({"split": split, "champion": label or None, **result.to_dict()}),
        Report(evaluation_html(result, title=title)),
    )


@component(name="DriftCheck")
def DriftCheck(
    statistics: Statistics,
    model_name: str,
    alias: str = "production",
    split: str = "train",
    threshold: float = 0.1,
) -> Metrics:
    """Drift of ``split``'s statistics against those the model holding ``alias`` was trained on
    (found through the registry and its run): per feature the L-infinity distance of value
    frequencies (strings) or the Jensen-Shannon divergence of histograms (numbers), as TFDV
    measures them. Recorded, never stopping the run; features above ``threshold`` are listed
    as ``drifted``. Looked up when the step runs, like the ChampionEvaluator's champion."""
    from kiln.data import drift_scores

    baseline = (
        _champion_statistics(_registry("DriftCheck"), model_name, alias)
        if step_context() is not None
        else None
    )
    if baseline is None:
        print("drift: no production model (or its statistics) to compare with")
        return Metrics({"baseline": None, "split": split, "scores": {}, "drifted": []})
    uri, stats = baseline
    scores = drift_scores(statistics.read().dataset(split), stats.dataset(split))
    drifted = sorted((f for f, v in scores.items() if v > threshold), key=lambda f: -scores[f])
    worst = max(scores.items(), key=lambda kv: kv[1], default=None)
    print(
        f"drift against {uri}'s data: "
        + (f"largest {worst[1]:.3f} ({worst[0]}); " if worst else "")
        + (f"over {threshold:g}: {', '.join(drifted)}" if drifted else f"none over {threshold:g}")
    )
    return Metrics(
        {
            "baseline": uri,
            "split": split,
            "threshold": threshold,
            "scores": scores,
            "drifted": drifted,
        }
    )


def _registry(who: str) -> ModelRegistry:
    """The registry of the running step's workspace (``who`` needs it: said outside a pipeline)."""
    from kiln.registry import ModelRegistry
    from kiln.workspace import Workspace

    where = step_context()
    if where is None:
        raise PipelineError(f"{who} needs the workspace's registry: run it inside a pipeline")
    return ModelRegistry(Workspace(where.workspace))


def _champion_statistics(registry: ModelRegistry, model_name: str, alias: str) -> Any:
    """(the version's URI, the Statistics of the run that trained it), or None."""
    from kiln.orchestration import RUN_CONTEXT

    ws = registry.workspace
    holder = registry.alias(model_name, alias)
    run = holder.source.get("run") if holder is not None else None
    if holder is None or not isinstance(run, str):
        return None
    try:
        context = ws.metadata.get_context(RUN_CONTEXT, run)
    except NotFoundError:
        return None
    assert context.id is not None
    for execution in ws.metadata.get_executions(context_id=context.id, type_name="StatisticsGen"):
        assert execution.id is not None
        for art in ws.metadata.get_outputs(execution.id).get("output", []):
            path = ws.artifacts.path_of(art.uri)
            return holder.uri, Statistics.stored(path, id=art.id, uri=art.uri).read()
    return None


@component(name="InfraValidator")
def InfraValidator(
    model: Model,
    dataset: Dataset,
    split: str = "eval",
    num_rows: int = 50,
    warmup: int = 5,
    latency_budget_ms: float = 100.0,
    timeout_s: float = 120.0,
) -> InfraBlessing:
    """Load the model in a fresh process, warm it up with ``warmup`` predictions, then predict
    up to ``num_rows`` rows of ``split`` one by one and as one batch. Blessed when the process
    succeeds, every row gets a prediction and the 99th percentile single-row latency is at most
    ``latency_budget_ms``."""
    import pyarrow.parquet as pq

    if num_rows < 1 or warmup < 0 or latency_budget_ms <= 0 or timeout_s <= 0:
        raise TrainingError(
            "InfraValidator: num_rows must be >= 1, warmup >= 0, latency_budget_ms and "
            "timeout_s > 0"
        )
    assert model.path is not None
    sample = dataset.split(split).slice(0, num_rows)
    if sample.num_rows == 0:
        raise TrainingError(f"InfraValidator: split {split!r} has no rows to predict")
    with tempfile.TemporaryDirectory(prefix="kiln-infra-") as tmp:
        rows = Path(tmp) / "rows.parquet"
        pq.write_table(sample, rows)
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "kiln.components._infra_probe",
                    str(model.path),
                    str(rows),
                    str(warmup),
                ],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=worker_env(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            verdict: dict[str, Any] = {
                "blessed": False,
                "reasons": [f"the model did not load and predict within {timeout_s:g} s"],
            }
            print(verdict["reasons"][0])
            return InfraBlessing(verdict)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        verdict = {
            "blessed": False,
            "reasons": ["the model failed in a fresh process: " + " | ".join(tail)],
        }
    else:
        probe = json.loads(proc.stdout.strip().splitlines()[-1])
        reasons = []
        blessed = probe["rows_predicted"] == sample.num_rows
        if not blessed:
            reasons.append(f"{probe['rows_predicted']} predictions for {sample.num_rows} rows")
        within = probe["p99_ms"] <= latency_budget_ms
        reasons.append(
            f"single-row latency p99 {probe['p99_ms']:.2f} ms "
            f"{'<=' if within else '>'} budget {latency_budget_ms:g} ms "
            f"(p50 {probe['p50_ms']:.2f} ms; loaded in {probe['load_ms']:.0f} ms)"
        )
        verdict = {"blessed": blessed and within, "reasons": reasons, **probe}
    print(("blessed: " if verdict["blessed"] else "not blessed: ") + "; ".join(verdict["reasons"]))
    return InfraBlessing(verdict)


@component(name="Pusher")
def Pusher(
    model: Model,
    evaluation: ModelEvaluation,
    infra_blessing: InfraBlessing,
    model_name: str,
    alias: str = "production",
    description: str = "",
) -> PushedModel:
    """Register the model as a new version of ``model_name``; move ``alias`` to it only when the
    evaluation and the infra validation both blessed it."""
    registry = _registry("the Pusher")
    where = step_context()
    assert where is not None  # _registry checked it
    if model.id is None:
        raise PipelineError("the Pusher needs a stored Model artifact")
    judged = evaluation.read()
    infra = infra_blessing.read()
    source = {
        "run": where.run,
        "model": model.id,
        "evaluation": evaluation.id,
        "infra_blessing": infra_blessing.id,
    }
    same = next((v for v in registry.versions(model_name) if v.artifact_id == model.id), None)
    version = same or registry.register(
        model_name, model.id, description=description or None, source=source
    )
    reasons: list[str] = []
    blessed = bool(judged["blessing"]["blessed"])
    if not blessed:
        reasons += [f"evaluation: {r}" for r in judged["blessing"].get("reasons", [])] or [
            "evaluation: not blessed"
        ]
    if not infra["blessed"]:
        reasons += [f"infra validation: {r}" for r in infra.get("reasons", [])]
    previous = registry.alias(model_name, alias)
    promoted = blessed and bool(infra["blessed"])
    if previous is not None and previous.version == version.version:
        promoted = False
        reasons.insert(0, f"{alias} already is version {version.version}, this model")
    elif promoted:
        why = f"blessed by run {where.run}" + (
            f" over version {previous.version}" if previous is not None else ""
        )
        registry.set_alias(model_name, alias, version.version, reason=why)
        reasons.insert(0, f"{alias} -> version {version.version}: {why}")
    else:
        holder = f"stays on version {previous.version}" if previous else "is not set"
        reasons.insert(0, f"{alias} {holder}: version {version.version} was not blessed")
    decision = {
        "promoted": promoted,
        "name": model_name,
        "version": version.version,
        "uri": version.uri,
        "alias": alias,
        "previous": previous.version if previous is not None else None,
        "reasons": reasons,
    }
    print("; ".join(reasons))
    return PushedModel(decision)


@component(name="BulkInferrer")
def BulkInferrer(
    model: Model, dataset: Dataset, split: str = "eval", keep: list[str] | None = None
) -> Table:
    """Predictions of ``model`` for every row of ``split``, after the ``keep`` columns."""
    import pyarrow as pa

    table = dataset.split(split)
    missing = [c for c in keep or [] if c not in table.column_names]
    if missing:
        raise TrainingError(
            f"BulkInferrer: keep column(s) {', '.join(missing)} not in split {split!r}; its "
            f"columns: {', '.join(table.column_names)}"
        )
    predicted = model.read().predict(table)
    kept = table.select(keep or [])
    return Table(
        pa.Table.from_arrays(
            [*kept.columns, *predicted.columns], names=[*kept.column_names, *predicted.column_names]
        )
    )
