"""``kmeans``: Lloyd's algorithm with BigQuery ML's options.

- ``kmeans_init_method``: ``RANDOM`` (BigQuery ML's default: ``num_clusters`` distinct rows drawn
  at random) or ``KMEANS++``; both seeded by ``seed`` (a Kiln addition; BigQuery ML has none), so
  a fit is deterministic. ``CUSTOM`` (initial rows flagged by a column) is not supported here.
- ``standardize_features`` (default true): each feature is centred and divided by its standard
  deviation before clustering; ``means_`` and ``stds_`` keep what was used.
- ``distance_type``: ``EUCLIDEAN``, or ``COSINE`` (``1 - cosine similarity``; spherical k-means:
  rows and centroids are compared by direction only).
- ``training_info_``: one row per Lloyd iteration; ``loss`` is the mean squared Euclidean distance
  from each row to its centroid (for ``COSINE``: the mean cosine distance, which is what spherical
  k-means lowers), ``eval_loss`` the same on ``X_eval``. With ``early_stop`` training stops after
  the first iteration whose relative improvement is below ``min_rel_progress``; it always stops
  once no row changes cluster.
- ``predict`` gives cluster ids ``0 .. num_clusters - 1`` (rows of ``centroids_``; BigQuery ML's
  ``CENTROID_ID`` is this plus one) and ``transform`` the distance to every centroid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._checks import check_bool, check_choice, check_matrix, check_number, elapsed_ms
from kiln.train._contract import (
    Array,
    IterationInfo,
    Task,
    Trainer,
    record_iteration,
    register_trainer,
)

__all__ = ["KMeansTrainer"]

INIT_METHODS = ("RANDOM", "KMEANS++")
DISTANCE_TYPES = ("EUCLIDEAN", "COSINE")
_FILE = "kmeans.npz"


@register_trainer
class KMeansTrainer(Trainer):
    """BigQuery ML's ``kmeans``. ``num_clusters=None`` picks ``min(8, rows)`` clusters."""

    model_type: ClassVar[str] = "kmeans"
    task: ClassVar[Task] = "clustering"

    def __init__(
        self,
        *,
        num_clusters: int | None = None,
        kmeans_init_method: str = "RANDOM",
        distance_type: str = "EUCLIDEAN",
        standardize_features: bool = True,
        max_iterations: int = 20,
        early_stop: bool = True,
        min_rel_progress: float = 0.01,
        seed: int = 0,
    ) -> None:
        mt = self.model_type
        self.num_clusters = (
            None
            if num_clusters is None
            else int(check_number(mt, "num_clusters", num_clusters, minimum=2, integer=True))
        )
        self.kmeans_init_method = check_choice(
            mt, "kmeans_init_method", kmeans_init_method, INIT_METHODS
        )
        self.distance_type = check_choice(mt, "distance_type", distance_type, DISTANCE_TYPES)
        self.standardize_features = check_bool(mt, "standardize_features", standardize_features)
        self.max_iterations = int(
            check_number(mt, "max_iterations", max_iterations, minimum=1, integer=True)
        )
        self.early_stop = check_bool(mt, "early_stop", early_stop)
        self.min_rel_progress = check_number(mt, "min_rel_progress", min_rel_progress, minimum=0)
        self.seed = int(check_number(mt, "seed", seed, minimum=0, integer=True))

    def get_params(self) -> dict[str, Any]:
        return {
            "num_clusters": self.num_clusters,
            "kmeans_init_method": self.kmeans_init_method,
            "distance_type": self.distance_type,
            "standardize_features": self.standardize_features,
            "max_iterations": self.max_iterations,
            "early_stop": self.early_stop,
            "min_rel_progress": self.min_rel_progress,
            "seed": self.seed,
        }

    # -- fitting ----------------------------------------------------------------------------------

    def fit(
        self,
        X: Array,
        y: Array | None = None,
        *,
        X_eval: Array | None = None,
        y_eval: Array | None = None,
        sample_weight: Array | None = None,
        categorical: Sequence[int] = (),
    ) -> Self:
        mt = self.model_type
        Xm = check_matrix(mt, X)
        k = self.num_clusters if self.num_clusters is not None else min(8, Xm.shape[0])
        distinct = np.unique(Xm, axis=0).shape[0]
        if k > distinct:
            raise TrainingError(
                f"{mt}: num_clusters={k} but X has only {distinct} distinct row(s);"
                " lower num_clusters"
            )
        if self.standardize_features:
            self.means_ = Xm.mean(axis=0)
            stds = Xm.std(axis=0)
            self.stds_ = np.where(stds > 0, stds, 1.0)
        else:
            self.means_ = np.zeros(Xm.shape[1])
            self.stds_ = np.ones(Xm.shape[1])
        Z = self._prepare(Xm)
        Ze = (
            None
            if X_eval is None
            else self._prepare(check_matrix(mt, X_eval, "X_eval", n_features=Xm.shape[1]))
        )
        rng = np.random.default_rng(self.seed)
        centers = self._init(Z, k, rng)
        labels = np.full(Z.shape[0], -1)
        previous: float | None = None
        self.training_info_ = []
        for iteration in range(self.max_iterations):
            started = time.perf_counter()
            distances = _squared(Z, centers)
            new_labels = distances.argmin(axis=1)
            centers = self._update(Z, new_labels, distances, centers)
            self._centers = centers
            loss = self._loss(Z)
            eval_loss = None if Ze is None else self._loss(Ze)
            if record_iteration(
                self,
                self.training_info_,
                IterationInfo(iteration, loss, eval_loss, None, elapsed_ms(started)),
            ):
                break  # asked to stop: the centroids of this iteration are set
            current = loss if eval_loss is None else eval_loss
            slow = (
                previous is not None
                and (previous - current) / max(abs(previous), 1e-300) < self.min_rel_progress
            )
            previous = current
            converged = bool((new_labels == labels).all())
            labels = new_labels
            if converged or (self.early_stop and slow):
                break
        self._centers = centers
        return self

    def _prepare(self, X: Array) -> Array:
        Z = (X - self.means_) / self.stds_
        if self.distance_type == "COSINE":
            norms = np.linalg.norm(Z, axis=1, keepdims=True)
            Z = Z / np.where(norms > 0, norms, 1.0)
        result: Array = Z
        return result

    def _normalise(self, centers: Array) -> Array:
        if self.distance_type != "COSINE":
            return centers
        norms = np.linalg.norm(centers, axis=1, keepdims=True)
        result: Array = centers / np.where(norms > 0, norms, 1.0)
        return result

    def _init(self, Z: Array, k: int, rng: np.random.Generator) -> Array:
        if self.kmeans_init_method == "RANDOM":
            distinct = np.unique(Z, axis=0)
            chosen = rng.choice(distinct.shape[0], size=k, replace=False)
            result: Array = distinct[np.sort(chosen)]
            return result
        # k-means++: each next centre drawn with probability proportional to D(x)^2
        centers = [Z[rng.integers(Z.shape[0])]]
        closest = _squared(Z, np.asarray(centers))[:, 0]
        for _ in range(1, k):
            total = closest.sum()
            if total <= 0:
                index = int(rng.integers(Z.shape[0]))
            else:
                index = int(rng.choice(Z.shape[0], p=closest / total))
            centers.append(Z[index])
            closest = np.minimum(closest, _squared(Z, Z[index][None, :])[:, 0])
        return np.asarray(centers)

    def _update(self, Z: Array, labels: Array, distances: Array, old: Array) -> Array:
        k = old.shape[0]
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(old)
        np.add.at(sums, labels, Z)
        centers = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], old)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            # an empty cluster takes the rows farthest from their own centroid
            own = distances[np.arange(Z.shape[0]), labels]
            far = np.argsort(-own, kind="stable")[: empty.size]
            centers[empty] = Z[far]
        return self._normalise(centers)

    def _loss(self, Z: Array) -> float:
        nearest = _squared(Z, self._centers).min(axis=1)
        if self.distance_type == "COSINE":
            return float((nearest / 2.0).mean())  # |a - b|^2 = 2 (1 - cos) for unit vectors
        return float(nearest.mean())

    # -- using ------------------------------------------------------------------------------------

    @property
    def centroids_(self) -> Array:
        """Centroids in the features' own units (rows = cluster ids)."""
        self._check_fitted("_centers")
        result: Array = self._centers * self.stds_ + self.means_
        return result

    def transform(self, X: Array) -> Array:
        """Distance from each row to each centroid (rows x clusters), in ``distance_type``."""
        self._check_fitted("_centers")
        Z = self._prepare(check_matrix(self.model_type, X, n_features=self._centers.shape[1]))
        squared = _squared(Z, self._centers)
        if self.distance_type == "COSINE":
            result: Array = squared / 2.0
            return result
        return np.sqrt(squared)

    def predict(self, X: Array) -> Array:
        result: Array = self.transform(X).argmin(axis=1)
        return result

    # -- save / load ------------------------------------------------------------------------------

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("_centers")
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / _FILE, centers=self._centers, means=self.means_, stds=self.stds_)
        return {
            "model_type": self.model_type,
            "params": self.get_params(),
            "file": _FILE,
            "training_info": [row.to_dict() for row in self.training_info_],
        }

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        trainer = cls(**saved["params"])
        with np.load(folder / saved["file"], allow_pickle=False) as data:
            trainer._centers = np.asarray(data["centers"], dtype=np.float64)
            trainer.means_ = np.asarray(data["means"], dtype=np.float64)
            trainer.stds_ = np.asarray(data["stds"], dtype=np.float64)
        trainer.training_info_ = [IterationInfo(**row) for row in saved["training_info"]]
        return trainer


def _squared(Z: Array, centers: Array) -> Array:
    """Squared Euclidean distances, rows x centres, never negative."""
    result: Array = np.maximum(
        (Z * Z).sum(axis=1)[:, None] - 2.0 * (Z @ centers.T) + (centers * centers).sum(axis=1),
        0.0,
    )
    return result
