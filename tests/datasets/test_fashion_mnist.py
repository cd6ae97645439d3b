"""builtin:fashion_mnist reads the Debian package's IDX files, or says how to install them."""

import gzip

import numpy as np
import pytest

from heatbath.core.errors import UserError
from heatbath.datasets import load_source
from heatbath.datasets.images import FASHION_FILES, FASHION_MNIST_DIR, read_idx


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """3 training and 2 test images whose pixels encode their index, labels 0..4."""
    images = np.stack([np.full((28, 28), 50 * i) for i in range(5)])
    write_idx(tmp_path / FASHION_FILES[0], images[:3])
    write_idx(tmp_path / FASHION_FILES[1], np.arange(3))
    write_idx(tmp_path / FASHION_FILES[2], images[3:])
    write_idx(tmp_path / FASHION_FILES[3], np.arange(3, 5))
    monkeypatch.setenv("HEATBATH_FASHION_MNIST", str(tmp_path))
    return tmp_path


def test_reads_train_then_test_images_scaled_to_the_data_range(fake_fashion):
    data = load_source("builtin:fashion_mnist")
    assert data.x.shape == (5, 1, 28, 28) and data.kind == "image" and data.levels == 256
    assert data.c.tolist() == [0, 1, 2, 3, 4]
    expected = 50 * np.arange(5) * 2 / 255 - 1
    assert np.allclose(data.x[:, 0, 0, 0].numpy(), expected, atol=1e-6)


def test_missing_files_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HEATBATH_FASHION_MNIST", str(tmp_path))
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        load_source("builtin:fashion_mnist")


def test_a_truncated_file_is_refused(fake_fashion):
    path = fake_fashion / FASHION_FILES[0]
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(UserError, match="truncated"):
        read_idx(path)


@pytest.mark.skipif(not (FASHION_MNIST_DIR / FASHION_FILES[0]).is_file(),
                    reason="dataset-fashion-mnist is not installed")
def test_the_debian_package_holds_all_70000_images(monkeypatch):
    monkeypatch.delenv("HEATBATH_FASHION_MNIST", raising=False)
    data = load_source("builtin:fashion_mnist:n=100")
    assert data.x.shape == (100, 1, 28, 28)
    assert len(read_idx(FASHION_MNIST_DIR / FASHION_FILES[1])) == 60000
