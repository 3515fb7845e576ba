"""``pca``: principal components from the SVD of the centred (and, by default, scaled) data.

BigQuery ML's options: exactly one of ``num_principal_components`` or
``pca_explained_variance_ratio`` (keep the fewest components whose cumulative explained variance
ratio reaches it); ``scale_features`` (default true: divide each centred feature by its standard
deviation); ``pca_solver``: ``FULL`` (exact SVD), ``RANDOMIZED`` (a seeded randomized SVD, for
many features and few components) or ``AUTO`` (``RANDOMIZED`` when the data has more than 500
rows and features and at most 80% of the possible components are asked for, else ``FULL``).

Each component's sign is fixed so that its largest-magnitude entry is positive (results do not
depend on the solver's sign convention). ``predict`` gives the projections, rows x components.
``training_info_`` holds one row: ``loss`` is the share of variance left unexplained.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._checks import check_bool, check_choice, check_matrix, check_number, elapsed_ms
from kiln.train._contract import Array, IterationInfo, Task, Trainer, register_trainer

__all__ = ["PCATrainer"]

SOLVERS = ("FULL", "RANDOMIZED", "AUTO")
_FILE = "pca.npz"


@register_trainer
class PCATrainer(Trainer):
    """BigQuery ML's ``pca``."""

    model_type: ClassVar[str] = "pca"
    task: ClassVar[Task] = "dimensionality_reduction"

    def __init__(
        self,
        *,
        num_principal_components: int | None = None,
        pca_explained_variance_ratio: float | None = None,
        scale_features: bool = True,
        pca_solver: str = "AUTO",
        seed: int = 0,
    ) -> None:
        mt = self.model_type
        if (num_principal_components is None) == (pca_explained_variance_ratio is None):
            raise TrainingError(
                f"{mt}: set exactly one of num_principal_components or pca_explained_variance_ratio"
            )
        self.num_principal_components = (
            None
            if num_principal_components is None
            else int(
                check_number(
                    mt,
                    "num_principal_components",
                    num_principal_components,
                    minimum=1,
                    integer=True,
                )
            )
        )
        self.pca_explained_variance_ratio = (
            None
            if pca_explained_variance_ratio is None
            else check_number(
                mt,
                "pca_explained_variance_ratio",
                pca_explained_variance_ratio,
                minimum=0.0,
                maximum=1.0,
                exclusive_minimum=True,
                exclusive_maximum=True,
            )
        )
        self.scale_features = check_bool(mt, "scale_features", scale_features)
        self.pca_solver = check_choice(mt, "pca_solver", pca_solver, SOLVERS)
        self.seed = int(check_number(mt, "seed", seed, minimum=0, integer=True))

    def get_params(self) -> dict[str, Any]:
        return {
            "num_principal_components": self.num_principal_components,
            "pca_explained_variance_ratio": self.pca_explained_variance_ratio,
            "scale_features": self.scale_features,
            "pca_solver": self.pca_solver,
            "seed": self.seed,
        }

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
        started = time.perf_counter()
        Xm = check_matrix(mt, X)
        rows, features = Xm.shape
        if rows < 2:
            raise TrainingError(f"{mt}: X needs at least 2 rows, got {rows}")
        possible = min(rows, features)
        if self.num_principal_components is not None and self.num_principal_components > possible:
            raise TrainingError(
                f"{mt}: num_principal_components={self.num_principal_components} but X allows at"
                f" most min(rows, features) = {possible}"
            )
        self.means_ = Xm.mean(axis=0)
        if self.scale_features:
            stds = Xm.std(axis=0)
            self.scales_ = np.where(stds > 0, stds, 1.0)
        else:
            self.scales_ = np.ones(features)
        Z = (Xm - self.means_) / self.scales_
        total = float((Z * Z).sum())
        if total <= 0:
            raise TrainingError(f"{mt}: every feature of X is constant; nothing to decompose")
        wanted = self.num_principal_components
        solver = self.pca_solver
        if solver == "AUTO":
            large = rows > 500 and features > 500
            solver = (
                "RANDOMIZED"
                if large and wanted is not None and wanted <= 0.8 * possible
                else "FULL"
            )
        if solver == "RANDOMIZED" and wanted is not None:
            singular, Vt = _randomized_svd(Z, wanted, np.random.default_rng(self.seed))
        else:
            _, singular, Vt = np.linalg.svd(Z, full_matrices=False)
        ratios = singular**2 / total
        if wanted is None:
            target = float(self.pca_explained_variance_ratio or 0.0)
            reached = np.flatnonzero(np.cumsum(ratios) >= target - 1e-12)
            wanted = int(reached[0]) + 1 if reached.size else ratios.shape[0]
        components = Vt[:wanted]
        biggest = np.abs(components).argmax(axis=1)
        signs = np.sign(components[np.arange(wanted), biggest])
        self.components_ = components * np.where(signs == 0, 1.0, signs)[:, None]
        self.explained_variance_ = singular[:wanted] ** 2 / (rows - 1)
        self.explained_variance_ratio_ = ratios[:wanted]
        unexplained = max(0.0, 1.0 - float(self.explained_variance_ratio_.sum()))
        self.training_info_ = [IterationInfo(0, unexplained, None, None, elapsed_ms(started))]
        return self

    def predict(self, X: Array) -> Array:
        """Projections on the components, rows x components."""
        self._check_fitted("components_")
        Xm = check_matrix(self.model_type, X, n_features=self.components_.shape[1])
        result: Array = ((Xm - self.means_) / self.scales_) @ self.components_.T
        return result

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("components_")
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(
            folder / _FILE,
            components=self.components_,
            means=self.means_,
            scales=self.scales_,
            explained_variance=self.explained_variance_,
            explained_variance_ratio=self.explained_variance_ratio_,
        )
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
            trainer.components_ = np.asarray(data["components"], dtype=np.float64)
            trainer.means_ = np.asarray(data["means"], dtype=np.float64)
            trainer.scales_ = np.asarray(data["scales"], dtype=np.float64)
            trainer.explained_variance_ = np.asarray(data["explained_variance"])
            trainer.explained_variance_ratio_ = np.asarray(data["explained_variance_ratio"])
        trainer.training_info_ = [IterationInfo(**row) for row in saved["training_info"]]
        return trainer


def _randomized_svd(Z: Array, k: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """Top ``k`` singular values and right vectors (Halko et al.: range finder, 4 power steps)."""
    sketch = min(k + 10, min(Z.shape))
    Q = Z @ rng.standard_normal((Z.shape[1], sketch))
    for _ in range(4):
        Q, _ = np.linalg.qr(Q)
        Q, _ = np.linalg.qr(Z.T @ Q)
        Q = Z @ Q
    Q, _ = np.linalg.qr(Q)
    _, singular, Vt = np.linalg.svd(Q.T @ Z, full_matrices=False)
    return singular[:k], Vt[:k]
