"""Deep learning on PyTorch (extra ``dl``): the only place in Kiln that imports ``torch``.

``torch`` is imported when a model is fitted, predicts or is loaded, not when this package is
imported, so that listing the trainers stays light.
"""

from __future__ import annotations

from kiln.train.dl._dnn import TABLE_SETTINGS, DnnClassifierTrainer, DnnRegressorTrainer

__all__ = ["TABLE_SETTINGS", "DnnClassifierTrainer", "DnnRegressorTrainer"]
