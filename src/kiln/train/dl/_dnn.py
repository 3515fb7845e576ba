"""``dnn_classifier`` and ``dnn_regressor``: multilayer perceptrons on PyTorch (extra ``dl``).

Settings are BigQuery ML's ``OPTIONS`` for DNN models, with its defaults: ``hidden_units`` (one
hidden layer of ``min(128, rows / (10 * (features + outputs)))`` units when not given, BigQuery
ML's documented rule), ``activation_fn`` (``RELU``; ``RELU6``, ``CRELU``, ``ELU``, ``SELU``,
``SIGMOID``, ``TANH``), ``optimizer`` (``ADAM``; ``ADAGRAD``, ``FTRL``, ``RMSPROP``, ``SGD``),
``learn_rate`` (0.001), ``batch_size`` (``min(32, rows)``; at most 8192), ``dropout`` (0, after
every hidden layer; below 1), ``l1_reg``, ``l2_reg``, ``max_iterations`` (20 epochs: one
iteration is one pass over the training rows), ``early_stop`` and ``min_rel_progress`` (0.01); the
classifier also takes ``auto_class_weights`` and ``class_weights``. Kiln adds ``seed`` (0),
``num_threads`` (1), ``device`` (``"auto"``: CUDA when PyTorch sees a GPU, else the CPU; or
``"cpu"``, ``"cuda"``, ``"cuda:N"``) and ``early_stop_rounds`` (None; as the boosted trees': with
an eval set, stop once the eval loss has not improved for that many epochs and keep the weights
of the best epoch, ``best_iteration_``; it replaces ``early_stop``/``min_rel_progress``, and
without an eval set the fit is a TrainingError).

What is minimised, per mini-batch (``s``: the row weights, ``sample_weight`` times the class
weights, scaled to average 1 over the training rows; ``W``: the layers' weight matrices, biases
never penalised)::

    J = mean_i(s_i * loss_i)  +  l1_reg * |W|_1  +  l2_reg * |W|_2^2

``loss_i`` is the squared error on the standardised label for ``dnn_regressor`` and the
cross-entropy (sigmoid for two classes, softmax for more) for ``dnn_classifier``. Penalties are on
the scale of the *mean* loss (Keras' convention for a network; ``linear_reg`` puts them on the
summed loss). L1 is added to the loss; L2 is the optimiser's weight decay of ``2 * l2_reg`` on
the weight matrices, which is the gradient of the L2 term (coupled decay, not AdamW's). BigQuery
ML documents ``l1_reg`` and ``l2_reg`` for its proximal optimisers only (``ADAGRAD``, ``FTRL``,
``SGD``); Kiln applies them this way with every optimiser.

Inputs are standardised inside the model (each feature's mean and standard deviation on the
training rows, stored with the weights), and so is the regressor's label, so that the defaults
work on features and labels of any scale; predictions come back in the label's units.
``fit`` and ``predict`` also take :class:`kiln.transform.OneHotFeatures` (``Model.fit`` and
``Model.predict`` pass them): a one-hot column's mean and deviation come from its category's
share of rows, and the first layer looks up one weight column per one-hot block and row instead
of multiplying a column per category (see :class:`_Coded`), with the same numbers. On the
training bench's 8 string columns (~2,500 one-hot columns), 300,000 rows predicted in 0.1 s
against 27 s dense, and an epoch over 100,000 rows took 3.7 s and 0.7 GB against 26 s and
6.3 GB; a million rows trained in 1.2 GB.

``training_info_`` holds one row per epoch: ``loss`` is ``J`` on all training rows after the epoch
(dropout off; for the regressor in the label's squared units, so without penalties it is the MSE),
``eval_loss`` the unweighted mean loss on ``X_eval`` (same units), ``learning_rate`` the
optimiser's rate. With ``early_stop``, training stops after the first epoch whose relative
improvement of the eval loss (the training loss when no eval set is given) is below
``min_rel_progress``; the weights are those of that last epoch. ``best_iteration_`` is the epoch
whose weights the model holds: the best one under ``early_stop_rounds``, else the last.

``FTRL`` is FTRL-Proximal (McMahan et al.) with learning-rate power -1/2 and an initial
accumulator of 0.1, TensorFlow's defaults, started from the initial weights rather than from
zero. ``ADAGRAD`` also starts its accumulator at 0.1 as TensorFlow does.

Training is deterministic for a given ``seed`` on the CPU (PyTorch's deterministic algorithms,
its global random state forked and restored, so the caller's is left alone). ``num_threads`` is
PyTorch's intra-op thread count while fitting and predicting (restored afterwards): 1 by default
because the pipeline runner already runs steps in parallel processes; raise it for a big model.

Weights are saved as ``weights.safetensors`` with a JSON dict describing the architecture;
loading rebuilds the network and reads the tensors with safetensors, never ``torch.load``.
"""

from __future__ import annotations

import abc
import functools
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from kiln.errors import TrainingError
from kiln.train._checks import (
    Label,
    check_bool,
    check_choice,
    check_class_weights,
    check_eval_pair,
    check_features,
    check_labels,
    check_number,
    check_rows,
    class_codes,
    elapsed_ms,
    eval_codes,
    sample_weights,
)
from kiln.train._contract import (
    Array,
    IterationInfo,
    Task,
    Trainer,
    record_iteration,
    register_trainer,
)
from kiln.transform import OneHotFeatures

if TYPE_CHECKING:
    import torch

__all__ = ["TABLE_SETTINGS", "DnnClassifierTrainer", "DnnRegressorTrainer"]

ACTIVATIONS = ("RELU", "RELU6", "CRELU", "ELU", "SELU", "SIGMOID", "TANH")
OPTIMIZERS = ("ADAM", "ADAGRAD", "FTRL", "RMSPROP", "SGD")
MAX_BATCH_SIZE = 8192
DEFAULT_BATCH_SIZE = 32  # BigQuery ML: 32 or the number of rows, whichever is smaller
MAX_DEFAULT_UNITS = 128
_ALPHA = 10  # BigQuery ML's constant in the default hidden-layer size
_FILE = "weights.safetensors"
_PREDICT_CHUNK = 65_536
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

TABLE_SETTINGS: Mapping[str, Any] = {
    "hidden_units": [256, 128],
    "max_iterations": 300,
    "batch_size": 128,
    "learn_rate": 0.001,
    "dropout": 0.1,
    "l2_reg": 1e-4,
    "early_stop": False,
    "early_stop_rounds": 10,
}
"""Settings that train a useful network on a table of any size, for the callers that choose a
network's settings for the user (AutoML's first network, ``kiln train --model dnn``). BigQuery
ML's defaults size the one hidden layer by the rows and stop at the first epoch that improves the
loss by less than 1 %: on a few hundred rows (penguins) that is one unit and one epoch, a model
no better than the majority class. These are two wide layers with dropout, up to 300 epochs,
stopped once the eval loss has not improved for 10 (so they need an eval set)."""


def _torch(model_type: str) -> Any:
    """PyTorch, imported on first use; a TrainingError saying what to install when missing."""
    try:
        import torch
    except ImportError as exc:
        raise TrainingError(
            f"{model_type} needs PyTorch: install kiln[dl] (pip install 'kiln[dl]')"
        ) from exc
    return torch


@functools.cache
def _crelu() -> type[torch.nn.Module]:
    import torch

    class CReLU(torch.nn.Module):
        """Concatenated ReLU: ``[relu(x), relu(-x)]``, twice the width."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.relu(x), torch.relu(-x)], dim=-1)

    return CReLU


@functools.cache
def _ftrl() -> Callable[..., torch.optim.Optimizer]:
    import torch

    class Ftrl(torch.optim.Optimizer):
        """FTRL-Proximal with learning-rate power -1/2 (no L1/L2 of its own: Kiln adds those to
        the loss and as weight decay, as for every optimiser)."""

        def __init__(
            self,
            params: Any,
            lr: float,
            weight_decay: float = 0.0,
            initial_accumulator_value: float = 0.1,
        ) -> None:
            defaults = {
                "lr": lr,
                "weight_decay": weight_decay,
                "initial_accumulator_value": initial_accumulator_value,
            }
            super().__init__(params, defaults)

        @torch.no_grad()  # type: ignore[untyped-decorator,unused-ignore]
        def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                lr = group["lr"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    if group["weight_decay"]:
                        g = g.add(p, alpha=group["weight_decay"])
                    state = self.state[p]
                    if not state:
                        n0 = torch.full_like(p, group["initial_accumulator_value"])
                        state["n"] = n0
                        state["z"] = -p * n0.sqrt() / lr  # so that the first weights are p
                    n, z = state["n"], state["z"]
                    n_new = n + g * g
                    sigma = (n_new.sqrt() - n.sqrt()) / lr
                    z.add_(g - sigma * p)
                    n.copy_(n_new)
                    p.copy_(-lr * z / n.sqrt())
            return loss

    return Ftrl


def _activation(name: str) -> torch.nn.Module:
    import torch

    layers: dict[str, type[torch.nn.Module]] = {
        "RELU": torch.nn.ReLU,
        "RELU6": torch.nn.ReLU6,
        "ELU": torch.nn.ELU,
        "SELU": torch.nn.SELU,
        "SIGMOID": torch.nn.Sigmoid,
        "TANH": torch.nn.Tanh,
    }
    return _crelu()() if name == "CRELU" else layers[name]()


def _network(
    n_features: int, hidden_units: Sequence[int], n_outputs: int, activation: str, dropout: float
) -> torch.nn.Sequential:
    import torch

    layers: list[torch.nn.Module] = []
    width = n_features
    for units in hidden_units:
        layers.append(torch.nn.Linear(width, units))
        layers.append(_activation(activation))
        if dropout > 0:
            layers.append(torch.nn.Dropout(dropout))
        width = units * 2 if activation == "CRELU" else units
    layers.append(torch.nn.Linear(width, n_outputs))
    return torch.nn.Sequential(*layers)


def _moments(X: Array | OneHotFeatures) -> tuple[Array, Array]:
    """Each feature's mean and standard deviation over the rows of ``X`` (a one-hot column's from
    its share of rows, never the full matrix)."""
    if not isinstance(X, OneHotFeatures):
        return X.mean(axis=0), X.std(axis=0)
    mean = np.zeros(X.shape[1])
    std = np.zeros(X.shape[1])
    mean[X.dense_columns] = X.dense.mean(axis=0)
    std[X.dense_columns] = X.dense.std(axis=0)
    n = X.shape[1]
    counts = np.bincount(X.hot_index(n).ravel(), minlength=n + 1)[:n]  # (n: no category)
    hot = X.hot_columns
    share = counts[hot] / max(X.shape[0], 1)
    mean[hot] = share
    std[hot] = np.sqrt(share * (1.0 - share))
    return mean, std


class _Dense:
    """A network's input as one standardised tensor (rows x features)."""

    def __init__(self, X: Any) -> None:
        self.X = X
        self.rows = int(X.shape[0])

    def forward(self, net: Any, part: Any) -> Any:
        """``net``'s outputs for the rows ``part`` (a slice or an index tensor)."""
        return net(self.X[part])


class _Coded:
    """A network's input with its one-hot blocks held as codes: the dense columns standardised
    as a tensor, and per row the column of each block's 1 (``n_features`` where a block has
    none). The first layer adds one weight column per block and row instead of multiplying a
    column per category; a one-hot column's standardised value is ``(1 - m) / s`` where it is 1
    and ``-m / s`` elsewhere, so the layer adds ``W[:, j] / s_j`` for each hot ``j`` to the
    constant ``-sum_j W[:, j] m_j / s_j`` over the one-hot columns: the same numbers as
    :class:`_Dense` on the full matrix, gradients included."""

    def __init__(
        self, torch: Any, X: OneHotFeatures, mean: Array, scale: Array, device: Any
    ) -> None:
        n_features = X.shape[1]
        columns = X.dense_columns
        dense = (X.dense - mean[columns]) / scale[columns]
        self.dense = torch.as_tensor(np.ascontiguousarray(dense, dtype=np.float32), device=device)
        self.dense_columns = torch.as_tensor(columns, dtype=torch.int64, device=device)
        self.hot_columns = torch.as_tensor(X.hot_columns, dtype=torch.int64, device=device)
        self.index = torch.as_tensor(X.hot_index(n_features), dtype=torch.int64, device=device)
        self.inverse_scale = torch.as_tensor(1.0 / scale, dtype=torch.float32, device=device)
        self.shift = torch.as_tensor(mean / scale, dtype=torch.float32, device=device)
        self.rows = int(X.shape[0])

    def forward(self, net: Any, part: Any) -> Any:
        import torch

        first = net[0]
        W = first.weight  # (units, features)
        out = self.dense[part] @ W[:, self.dense_columns].T + first.bias
        hot = self.hot_columns
        out = out - W[:, hot] @ self.shift[hot]
        per_column = torch.cat([(W * self.inverse_scale).T, W.new_zeros((1, W.shape[0]))])
        out = out + per_column[self.index[part]].sum(dim=1)
        return net[1:](out)


@contextmanager
def _torch_settings(torch: Any, num_threads: int, deterministic: bool) -> Iterator[None]:
    """PyTorch's global thread count and determinism for the duration, restored afterwards."""
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(num_threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic, warn_only=warn_only)


class _Dnn(Trainer):
    """Settings, the training loop, prediction and save/load shared by the two DNNs."""

    predicts_in_native_code = True
    accepts_one_hot_features = True
    fits_one_hot_features = True

    def __init__(
        self,
        *,
        hidden_units: Sequence[int] | None = None,
        activation_fn: str = "RELU",
        optimizer: str = "ADAM",
        learn_rate: float = 0.001,
        batch_size: int | None = None,
        dropout: float = 0.0,
        l1_reg: float = 0.0,
        l2_reg: float = 0.0,
        max_iterations: int = 20,
        early_stop: bool = True,
        min_rel_progress: float = 0.01,
        seed: int = 0,
        num_threads: int = 1,
        device: str = "auto",
        early_stop_rounds: int | None = None,
    ) -> None:
        mt = self.model_type
        if hidden_units is None:
            self.hidden_units: list[int] | None = None
        else:
            units: Any = hidden_units
            if isinstance(units, np.ndarray):  # a NumPy array of sizes is fine too
                units = units.tolist()
            if isinstance(units, str | bytes) or not isinstance(units, Sequence):
                raise TrainingError(
                    f"{mt}: hidden_units must be a list of layer sizes, e.g. [64, 32],"
                    f" got {units!r}"
                )
            if len(units) == 0:
                raise TrainingError(f"{mt}: hidden_units needs at least one layer, e.g. [32]")
            self.hidden_units = [
                int(check_number(mt, f"hidden_units[{i}]", u, minimum=1, integer=True))
                for i, u in enumerate(units)
            ]
        self.activation_fn = check_choice(mt, "activation_fn", activation_fn, ACTIVATIONS)
        self.optimizer = check_choice(mt, "optimizer", optimizer, OPTIMIZERS)
        self.learn_rate = check_number(
            mt, "learn_rate", learn_rate, minimum=0.0, exclusive_minimum=True
        )
        self.batch_size = (
            None
            if batch_size is None
            else int(
                check_number(
                    mt, "batch_size", batch_size, minimum=1, maximum=MAX_BATCH_SIZE, integer=True
                )
            )
        )
        self.dropout = check_number(
            mt, "dropout", dropout, minimum=0.0, maximum=1.0, exclusive_maximum=True
        )
        self.l1_reg = check_number(mt, "l1_reg", l1_reg, minimum=0.0)
        self.l2_reg = check_number(mt, "l2_reg", l2_reg, minimum=0.0)
        self.max_iterations = int(
            check_number(mt, "max_iterations", max_iterations, minimum=1, integer=True)
        )
        self.early_stop = check_bool(mt, "early_stop", early_stop)
        self.min_rel_progress = check_number(mt, "min_rel_progress", min_rel_progress, minimum=0.0)
        self.seed = int(check_number(mt, "seed", seed, minimum=0, integer=True))
        self.num_threads = int(
            check_number(mt, "num_threads", num_threads, minimum=1, integer=True)
        )
        if not isinstance(device, str) or not _DEVICE.match(device.lower()):
            raise TrainingError(
                f"{mt}: device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
            )
        self.device = device.lower()
        self.early_stop_rounds = (
            None
            if early_stop_rounds is None
            else int(
                check_number(mt, "early_stop_rounds", early_stop_rounds, minimum=1, integer=True)
            )
        )

    # -- subclasses -------------------------------------------------------------------------------

    @abc.abstractmethod
    def _targets(self, y: Array) -> tuple[Array, Array]:
        """Training targets (float rows x outputs, or class codes) and each row's class weight."""

    @abc.abstractmethod
    def _eval_targets(self, y: Array) -> Array:
        """Targets for evaluation labels, in the same encoding as ``_targets``."""

    @abc.abstractmethod
    def _n_outputs(self) -> int:
        """The network's output width (after ``_targets`` has seen the labels)."""

    @abc.abstractmethod
    def _row_losses(self, Z: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """Per-row loss of network outputs ``Z`` against targets ``T``."""

    def _loss_scale(self) -> float:
        """Factor from the network's loss to the reported one (label units for the regressor)."""
        return 1.0

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _restore_extra(self, saved: dict[str, Any]) -> None:
        return None

    # -- settings ---------------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        return {
            "hidden_units": None if self.hidden_units is None else list(self.hidden_units),
            "activation_fn": self.activation_fn,
            "optimizer": self.optimizer,
            "learn_rate": self.learn_rate,
            "batch_size": self.batch_size,
            "dropout": self.dropout,
            "l1_reg": self.l1_reg,
            "l2_reg": self.l2_reg,
            "max_iterations": self.max_iterations,
            "early_stop": self.early_stop,
            "min_rel_progress": self.min_rel_progress,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "device": self.device,
            "early_stop_rounds": self.early_stop_rounds,
        }

    def _resolve_device(self, torch: Any) -> Any:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise TrainingError(
                f"{self.model_type}: device={self.device!r} but PyTorch sees no CUDA GPU;"
                " use device='auto' or 'cpu'"
            )
        return torch.device(self.device)

    # -- fitting ----------------------------------------------------------------------------------

    def fit(
        self,
        X: Array | OneHotFeatures,
        y: Array | None = None,
        *,
        X_eval: Array | OneHotFeatures | None = None,
        y_eval: Array | None = None,
        sample_weight: Array | None = None,
        categorical: Sequence[int] = (),
    ) -> Self:
        mt = self.model_type
        torch = _torch(mt)
        Xm = check_features(mt, X)
        if y is None:
            raise TrainingError(f"{mt}: fit needs the label column y")
        yv = check_labels(mt, y, numeric=self.task == "regression")
        check_rows(mt, Xm, yv)
        T, class_w = self._targets(yv)
        s = class_w * sample_weights(mt, sample_weight, Xm.shape[0])
        if s.sum() <= 0:
            raise TrainingError(f"{mt}: the row weights (class_weights, sample_weight) sum to zero")
        s = s / s.mean()
        eval_data: tuple[Array | OneHotFeatures, Array] | None = None
        check_eval_pair(mt, X_eval, y_eval, self.early_stop_rounds)
        if X_eval is not None:
            Xe = check_features(mt, X_eval, "X_eval", n_features=Xm.shape[1])
            ye = check_labels(mt, y_eval, "y_eval", numeric=self.task == "regression")
            check_rows(mt, Xe, ye, ("X_eval", "y_eval"))
            eval_data = (Xe, self._eval_targets(ye))

        rows, n_features = Xm.shape
        n_outputs = self._n_outputs()
        self.hidden_units_ = self.hidden_units or [
            max(1, min(MAX_DEFAULT_UNITS, rows // (_ALPHA * (n_features + n_outputs))))
        ]
        self.batch_size_ = self.batch_size or min(DEFAULT_BATCH_SIZE, rows)
        self.n_features_in_ = n_features
        self._x_mean, scale = _moments(Xm)
        scale[scale <= 1e-12 * np.maximum(1.0, np.abs(self._x_mean))] = 1.0
        self._x_scale = scale
        self.device_ = self._resolve_device(torch)
        cpu = self.device_.type == "cpu"
        forked = [] if cpu else [self.device_.index or 0]
        with (
            _torch_settings(torch, self.num_threads, deterministic=cpu),
            torch.random.fork_rng(devices=forked),
        ):
            torch.manual_seed(self.seed)
            self._net = _network(
                n_features, self.hidden_units_, n_outputs, self.activation_fn, self.dropout
            ).to(self.device_)
            self._train(torch, Xm, T, s, eval_data)
        self._net.eval()
        return self

    def _optimizer(self, torch: Any) -> Any:
        weights = [p for name, p in self._net.named_parameters() if name.endswith("weight")]
        biases = [p for name, p in self._net.named_parameters() if not name.endswith("weight")]
        groups = [
            {"params": weights, "weight_decay": 2.0 * self.l2_reg},
            {"params": biases, "weight_decay": 0.0},
        ]
        lr = self.learn_rate
        if self.optimizer == "ADAM":
            return torch.optim.Adam(groups, lr=lr)
        if self.optimizer == "ADAGRAD":
            return torch.optim.Adagrad(groups, lr=lr, initial_accumulator_value=0.1)
        if self.optimizer == "RMSPROP":
            return torch.optim.RMSprop(groups, lr=lr)
        if self.optimizer == "SGD":
            return torch.optim.SGD(groups, lr=lr)
        return _ftrl()(groups, lr=lr)

    def _l1(self, torch: Any) -> Any:
        weights = [p for name, p in self._net.named_parameters() if name.endswith("weight")]
        return self.l1_reg * torch.stack([w.abs().sum() for w in weights]).sum()

    def _l2(self, torch: Any) -> Any:
        weights = [p for name, p in self._net.named_parameters() if name.endswith("weight")]
        return self.l2_reg * torch.stack([(w * w).sum() for w in weights]).sum()

    def _mean_loss(self, torch: Any, X: _Dense | _Coded, T: Any, s: Any | None) -> float:
        """Mean (weighted when ``s`` is given) loss over all rows, dropout off, no gradient."""
        self._net.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, X.rows, _PREDICT_CHUNK):
                part = slice(start, start + _PREDICT_CHUNK)
                losses = self._row_losses(X.forward(self._net, part), T[part])
                if s is not None:
                    losses = losses * s[part]
                total += float(losses.sum())
        return total / float(X.rows)

    def _inputs(self, torch: Any, X: Array | OneHotFeatures) -> _Dense | _Coded:
        """``X`` standardised with the training rows' moments, on the model's device."""
        if isinstance(X, OneHotFeatures):
            return _Coded(torch, X, self._x_mean, self._x_scale, self.device_)
        return _Dense(self._tensor(torch, (X - self._x_mean) / self._x_scale))

    def _train(
        self,
        torch: Any,
        Xm: Array | OneHotFeatures,
        T: Array,
        s: Array,
        eval_data: tuple[Array | OneHotFeatures, Array] | None,
    ) -> None:
        device = self.device_
        Xt = self._inputs(torch, Xm)
        Tt = self._target_tensor(torch, T)
        st = torch.as_tensor(s, dtype=torch.float32, device=device)
        ev: tuple[Any, Any] | None = None
        if eval_data is not None:
            Xe, Te = eval_data
            ev = (self._inputs(torch, Xe), self._target_tensor(torch, Te))
        optimizer = self._optimizer(torch)
        shuffle = torch.Generator().manual_seed(self.seed)
        scale = self._loss_scale()

        def objective() -> float:
            with torch.no_grad():
                penalty = float(self._l1(torch) + self._l2(torch)) if self._penalised() else 0.0
            return (self._mean_loss(torch, Xt, Tt, st) + penalty) * scale

        previous = self._mean_loss(torch, *ev, None) * scale if ev is not None else objective()
        rows = Xt.rows
        self.training_info_ = []
        patience = self.early_stop_rounds
        best: tuple[float, dict[str, Any]] | None = None  # early_stop_rounds: (loss, weights)
        self.best_iteration_ = -1
        for iteration in range(self.max_iterations):
            started = time.perf_counter()
            self._net.train()
            order = torch.randperm(rows, generator=shuffle).to(device)
            for start in range(0, rows, self.batch_size_):
                batch = order[start : start + self.batch_size_]
                optimizer.zero_grad(set_to_none=True)
                loss = (
                    self._row_losses(Xt.forward(self._net, batch), Tt[batch]) * st[batch]
                ).mean()
                if self.l1_reg > 0:
                    loss = loss + self._l1(torch)
                loss.backward()
                optimizer.step()
            current_loss = objective()
            if not math.isfinite(current_loss):
                raise TrainingError(
                    f"{self.model_type}: the loss diverged at iteration {iteration} with"
                    f" learn_rate={self.learn_rate:g}; lower learn_rate"
                )
            eval_loss = self._mean_loss(torch, *ev, None) * scale if ev is not None else None
            if patience is None:
                self.best_iteration_ = iteration
            elif eval_loss is not None and (best is None or eval_loss < best[0]):
                self.best_iteration_ = iteration
                best = (
                    eval_loss,
                    {k: t.detach().clone() for k, t in self._net.state_dict().items()},
                )
            if record_iteration(
                self,
                self.training_info_,
                IterationInfo(
                    iteration, current_loss, eval_loss, self.learn_rate, elapsed_ms(started)
                ),
            ):
                break  # asked to stop: this epoch's network is kept (the best so far)
            if patience is not None:
                if iteration - self.best_iteration_ >= patience:
                    break
                continue
            current = eval_loss if eval_loss is not None else current_loss
            progress = (previous - current) / max(abs(previous), 1e-300)
            previous = current
            if self.early_stop and progress < self.min_rel_progress:
                break
        if best is not None:
            self._net.load_state_dict(best[1])

    def _penalised(self) -> bool:
        return self.l1_reg > 0 or self.l2_reg > 0

    def _tensor(self, torch: Any, X: Array) -> Any:
        return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=self.device_)

    def _target_tensor(self, torch: Any, T: Array) -> Any:
        dtype = torch.int64 if T.dtype.kind in "iu" else torch.float32
        return torch.as_tensor(T, dtype=dtype, device=self.device_)

    # -- predicting -------------------------------------------------------------------------------

    def _outputs(self, X: Array | OneHotFeatures) -> Array:
        """The network's outputs (float64, rows x outputs) for ``X``."""
        self._check_fitted("_net", "training_info_")
        torch = _torch(self.model_type)
        Xt = self._inputs(torch, check_features(self.model_type, X, n_features=self.n_features_in_))
        parts = []
        with _torch_settings(torch, self.num_threads, deterministic=False), torch.no_grad():
            self._net.eval()
            for start in range(0, Xt.rows, _PREDICT_CHUNK):
                out = Xt.forward(self._net, slice(start, start + _PREDICT_CHUNK))
                parts.append(out.detach().cpu().numpy().astype(np.float64))
        return np.concatenate(parts, axis=0)

    # -- save / load ------------------------------------------------------------------------------

    def save(self, folder: Path) -> dict[str, Any]:
        self._check_fitted("_net", "training_info_")
        from safetensors.torch import save_file

        torch = _torch(self.model_type)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"net.{name}": t.detach().cpu().contiguous()
            for name, t in self._net.state_dict().items()
        }
        tensors["input.mean"] = torch.as_tensor(self._x_mean, dtype=torch.float64)
        tensors["input.scale"] = torch.as_tensor(self._x_scale, dtype=torch.float64)
        save_file(tensors, str(folder / _FILE))
        return {
            "model_type": self.model_type,
            "params": self.get_params(),
            "file": _FILE,
            "architecture": {
                "n_features": self.n_features_in_,
                "hidden_units": list(self.hidden_units_),
                "n_outputs": self._n_outputs(),
                "activation_fn": self.activation_fn,
                "dropout": self.dropout,
            },
            "batch_size": self.batch_size_,
            "best_iteration": self.best_iteration_,
            "training_info": [row.to_dict() for row in self.training_info_],
            **self._extra_state(),
        }

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any]) -> Self:
        trainer = cls(**saved["params"])
        torch = _torch(trainer.model_type)
        from safetensors.torch import load_file

        trainer._restore_extra(saved)
        arch = saved["architecture"]
        trainer.n_features_in_ = int(arch["n_features"])
        trainer.hidden_units_ = [int(u) for u in arch["hidden_units"]]
        trainer.batch_size_ = int(saved["batch_size"])
        trainer.device_ = trainer._resolve_device(torch)
        tensors = load_file(str(folder / saved["file"]), device="cpu")
        trainer._x_mean = tensors.pop("input.mean").numpy()
        trainer._x_scale = tensors.pop("input.scale").numpy()
        net = _network(
            trainer.n_features_in_,
            trainer.hidden_units_,
            int(arch["n_outputs"]),
            check_choice(trainer.model_type, "activation_fn", arch["activation_fn"], ACTIVATIONS),
            float(arch["dropout"]),
        )
        state = {name.removeprefix("net."): t for name, t in tensors.items()}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise TrainingError(
                f"{trainer.model_type}: {folder / saved['file']} does not match the saved"
                f" architecture: {exc}"
            ) from exc
        trainer._net = net.to(trainer.device_).eval()
        trainer.training_info_ = [IterationInfo(**row) for row in saved["training_info"]]
        # models saved before best_iteration_ existed kept their last epoch
        trainer.best_iteration_ = int(saved.get("best_iteration", len(trainer.training_info_) - 1))
        return trainer


@register_trainer
class DnnRegressorTrainer(_Dnn):
    """BigQuery ML's ``dnn_regressor``: a multilayer perceptron trained on the squared error."""

    model_type: ClassVar[str] = "dnn_regressor"
    task: ClassVar[Task] = "regression"

    def _targets(self, y: Array) -> tuple[Array, Array]:
        self._y_mean = float(y.mean())
        sd = float(y.std())
        self._y_scale = sd if sd > 1e-12 * max(1.0, abs(self._y_mean)) else 1.0
        return self._eval_targets(y), np.ones(y.shape[0])

    def _eval_targets(self, y: Array) -> Array:
        result: Array = ((y.astype(np.float64) - self._y_mean) / self._y_scale)[:, None]
        return result

    def _n_outputs(self) -> int:
        return 1

    def _row_losses(self, Z: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        return ((Z - T) ** 2)[:, 0]

    def _loss_scale(self) -> float:
        return self._y_scale**2

    def predict(self, X: Array | OneHotFeatures) -> Array:
        result: Array = self._outputs(X)[:, 0] * self._y_scale + self._y_mean
        return result

    def _extra_state(self) -> dict[str, Any]:
        return {"label": {"mean": self._y_mean, "scale": self._y_scale}}

    def _restore_extra(self, saved: dict[str, Any]) -> None:
        self._y_mean = float(saved["label"]["mean"])
        self._y_scale = float(saved["label"]["scale"])


@register_trainer
class DnnClassifierTrainer(_Dnn):
    """BigQuery ML's ``dnn_classifier``: cross-entropy, sigmoid for two classes, softmax for more.

    Labels may be strings or numbers; ``classes_`` holds them sorted, ``predict`` returns them and
    ``predict_proba`` gives one column per class in ``classes_`` order. ``auto_class_weights``
    weighs each class by ``n_rows / (n_classes * n_rows_of_class)``; ``class_weights`` maps a
    label to its weight (labels left out weigh 1).
    """

    model_type: ClassVar[str] = "dnn_classifier"
    task: ClassVar[Task] = "classification"

    def __init__(
        self,
        *,
        auto_class_weights: bool = False,
        class_weights: Mapping[Label, float] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        self.auto_class_weights, self.class_weights = check_class_weights(
            self.model_type, auto_class_weights, class_weights
        )

    def get_params(self) -> dict[str, Any]:
        return {
            **super().get_params(),
            "auto_class_weights": self.auto_class_weights,
            "class_weights": self.class_weights,
        }

    def _targets(self, y: Array) -> tuple[Array, Array]:
        self.classes_, codes, weights = class_codes(
            self.model_type,
            y,
            auto_class_weights=self.auto_class_weights,
            class_weights=self.class_weights,
        )
        return self._encode(codes), weights

    def _encode(self, codes: Array) -> Array:
        if self.classes_.shape[0] == 2:
            result: Array = codes.astype(np.float64)[:, None]
            return result
        return codes.astype(np.int64)

    def _eval_targets(self, y: Array) -> Array:
        return self._encode(eval_codes(self.model_type, self.classes_, y))

    def _n_outputs(self) -> int:
        k = int(self.classes_.shape[0])
        return 1 if k == 2 else k

    def _row_losses(self, Z: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        if Z.shape[1] == 1:
            return F.binary_cross_entropy_with_logits(Z, T, reduction="none")[:, 0]
        return F.cross_entropy(Z, T, reduction="none")

    def predict_proba(self, X: Array | OneHotFeatures) -> Array:
        """Probabilities, rows x classes, columns in ``classes_`` order."""
        Z = self._outputs(X)
        if Z.shape[1] == 1:
            p = np.exp(-np.logaddexp(0.0, -Z[:, 0]))
            return np.column_stack([1.0 - p, p])
        shifted = np.exp(Z - Z.max(axis=1, keepdims=True))
        result: Array = shifted / shifted.sum(axis=1, keepdims=True)
        return result

    def predict(self, X: Array | OneHotFeatures) -> Array:
        proba = self.predict_proba(X)
        result: Array = self.classes_[np.argmax(proba, axis=1)]
        return result

    def _extra_state(self) -> dict[str, Any]:
        return {"classes": self.classes_.tolist()}

    def _restore_extra(self, saved: dict[str, Any]) -> None:
        self.classes_ = np.asarray(saved["classes"])
