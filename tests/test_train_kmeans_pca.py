"""kmeans and pca against scikit-learn, and the trainer contract."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from kiln.errors import NotFittedError, TrainingError
from kiln.train import KMeansTrainer, PCATrainer, get_trainer

Array = np.ndarray[Any, np.dtype[Any]]


@pytest.fixture
def blobs() -> tuple[Array, Array]:
    X, labels = make_blobs(n_samples=600, centers=4, cluster_std=0.6, random_state=0)
    return X * [1.0, 20.0], labels  # a second feature on another scale


@pytest.fixture
def correlated() -> Array:
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 5.0


def test_builtins_are_registered() -> None:
    assert get_trainer("KMEANS") is KMeansTrainer
    assert get_trainer("pca") is PCATrainer


def test_kmeans_plus_plus_matches_sklearn(blobs: tuple[Array, Array]) -> None:
    X, labels = blobs
    trainer = KMeansTrainer(num_clusters=4, kmeans_init_method="KMEANS++", seed=1).fit(X)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    reference = KMeans(4, n_init=10, random_state=0).fit(Z)
    assert adjusted_rand_score(trainer.predict(X), reference.labels_) == 1.0
    assert adjusted_rand_score(trainer.predict(X), labels) > 0.99
    loss = trainer.training_info_[-1].loss
    assert loss * len(X) == pytest.approx(reference.inertia_, rel=1e-6)
    np.testing.assert_allclose(trainer.means_, X.mean(axis=0))
    np.testing.assert_allclose(trainer.stds_, X.std(axis=0))
    own_units = np.array([X[trainer.predict(X) == c].mean(axis=0) for c in range(4)])
    np.testing.assert_allclose(trainer.centroids_, own_units, atol=1e-9)


def test_kmeans_is_deterministic_given_seed(blobs: tuple[Array, Array]) -> None:
    X, _ = blobs
    runs = [KMeansTrainer(num_clusters=4, seed=7).fit(X).centroids_ for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_kmeans_training_info_and_early_stop(blobs: tuple[Array, Array]) -> None:
    X, _ = blobs
    trainer = KMeansTrainer(num_clusters=4, kmeans_init_method="RANDOM", seed=3)
    info = trainer.fit(X[:500], X_eval=X[500:]).training_info_
    assert [row.iteration for row in info] == list(range(len(info)))
    assert 1 <= len(info) < 20
    losses = [row.loss for row in info]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(losses))
    assert all(row.eval_loss is not None and row.learning_rate is None for row in info)


def test_kmeans_transform_gives_distances(blobs: tuple[Array, Array]) -> None:
    X, _ = blobs
    trainer = KMeansTrainer(num_clusters=4, standardize_features=False, seed=0).fit(X)
    distances = trainer.transform(X[:5])
    expected = np.linalg.norm(X[:5, None, :] - trainer.centroids_[None], axis=2)
    np.testing.assert_allclose(distances, expected, atol=1e-7)
    np.testing.assert_array_equal(trainer.predict(X[:5]), expected.argmin(axis=1))


def test_kmeans_cosine_groups_by_direction() -> None:
    rng = np.random.default_rng(4)
    directions = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    X = np.vstack([d * rng.uniform(0.5, 50.0, size=(100, 1)) for d in directions])
    X += rng.normal(scale=0.05, size=X.shape)
    truth = np.repeat([0, 1, 2], 100)
    trainer = KMeansTrainer(
        num_clusters=3, distance_type="cosine", standardize_features=False, seed=0
    ).fit(X)
    assert adjusted_rand_score(trainer.predict(X), truth) == 1.0
    distances = trainer.transform(X)
    assert distances.min() >= 0
    assert distances.max() <= 2
    euclidean = KMeansTrainer(num_clusters=3, standardize_features=False, seed=0).fit(X)
    assert adjusted_rand_score(euclidean.predict(X), truth) < 1.0


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        ({"num_clusters": 1}, "num_clusters"),
        ({"num_clusters": 2.5}, "num_clusters"),
        ({"kmeans_init_method": "CUSTOM"}, "kmeans_init_method"),
        ({"distance_type": "MANHATTAN"}, "distance_type"),
        ({"max_iterations": -1}, "max_iterations"),
        ({"standardize_features": 1}, "standardize_features"),
    ],
)
def test_kmeans_bad_settings(settings: dict[str, Any], option: str) -> None:
    with pytest.raises(TrainingError, match=option):
        KMeansTrainer(**settings)


def test_kmeans_more_clusters_than_rows() -> None:
    with pytest.raises(TrainingError, match=r"num_clusters=5.*3 distinct"):
        KMeansTrainer(num_clusters=5).fit(np.array([[0.0], [1.0], [2.0], [2.0]]))


def test_pca_matches_sklearn(correlated: Array) -> None:
    X = correlated
    trainer = PCATrainer(num_principal_components=3).fit(X)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    reference = PCA(3).fit(Z)
    np.testing.assert_allclose(
        trainer.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=1e-10
    )
    np.testing.assert_allclose(trainer.explained_variance_, reference.explained_variance_)
    signs = np.sign((trainer.components_ * reference.components_).sum(axis=1))
    np.testing.assert_allclose(trainer.components_, reference.components_ * signs[:, None])
    np.testing.assert_allclose(trainer.predict(X), reference.transform(Z) * signs, atol=1e-10)


def test_pca_unscaled_and_randomized(correlated: Array) -> None:
    X = correlated
    reference = PCA(2).fit(X)
    for solver in ("FULL", "RANDOMIZED"):
        trainer = PCATrainer(num_principal_components=2, scale_features=False, pca_solver=solver)
        trainer.fit(X)
        np.testing.assert_allclose(
            trainer.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=1e-8
        )
        np.testing.assert_allclose(
            np.abs(trainer.components_), np.abs(reference.components_), atol=1e-8
        )


def test_pca_explained_variance_ratio_picks_the_count(correlated: Array) -> None:
    trainer = PCATrainer(pca_explained_variance_ratio=0.9).fit(correlated)
    ratios = trainer.explained_variance_ratio_
    assert ratios.sum() >= 0.9 > ratios[:-1].sum()
    assert trainer.predict(correlated).shape == (200, len(ratios))
    assert trainer.training_info_[0].loss == pytest.approx(1.0 - ratios.sum())


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        ({}, "num_principal_components"),
        ({"num_principal_components": 2, "pca_explained_variance_ratio": 0.5}, "exactly one"),
        ({"num_principal_components": 0}, "num_principal_components"),
        ({"pca_explained_variance_ratio": 1.5}, "pca_explained_variance_ratio"),
        ({"num_principal_components": 2, "pca_solver": "ARPACK"}, "pca_solver"),
    ],
)
def test_pca_bad_settings(settings: dict[str, Any], option: str) -> None:
    with pytest.raises(TrainingError, match=option):
        PCATrainer(**settings)


def test_pca_too_many_components(correlated: Array) -> None:
    with pytest.raises(TrainingError, match="at most"):
        PCATrainer(num_principal_components=7).fit(correlated)


@pytest.mark.parametrize(
    "trainer", [KMeansTrainer(num_clusters=2), PCATrainer(num_principal_components=1)]
)
def test_not_fitted(trainer: KMeansTrainer | PCATrainer) -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        trainer.predict(np.zeros((2, 2)))


def test_save_load_round_trip(
    tmp_path: Path, blobs: tuple[Array, Array], correlated: Array
) -> None:
    X, _ = blobs
    kmeans = KMeansTrainer(num_clusters=4, distance_type="COSINE").fit(X)
    saved = json.loads(json.dumps(kmeans.save(tmp_path / "kmeans")))
    again = KMeansTrainer.load(tmp_path / "kmeans", saved)
    np.testing.assert_array_equal(again.predict(X), kmeans.predict(X))
    np.testing.assert_array_equal(again.transform(X), kmeans.transform(X))
    assert again.training_info_ == kmeans.training_info_

    pca = PCATrainer(pca_explained_variance_ratio=0.8).fit(correlated)
    saved = json.loads(json.dumps(pca.save(tmp_path / "pca")))
    loaded = PCATrainer.load(tmp_path / "pca", saved)
    np.testing.assert_array_equal(loaded.predict(correlated), pca.predict(correlated))
    np.testing.assert_array_equal(loaded.explained_variance_ratio_, pca.explained_variance_ratio_)
