"""Image features for a Fréchet distance: a small classifier heatbath trains itself.

FID's Inception network is a download and was trained on other images; heatbath instead trains
a small convolutional classifier on each built-in labelled image set (`datasets.images.IMAGES`),
from a fixed seed, on a fixed 80 % of the images (at most MAX_TRAIN), and keeps the FEATURES-dimensional input of
its last layer as the feature map. The weights are cached (`core.cache`, safetensors + JSON with
the held-out accuracy) under a key that includes a hash of the images, so a changed data set
retrains rather than reusing stale features; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass

import torch
from torch import nn

from heatbath.core.cache import cache_dir
from heatbath.core.runs import atomic_save_tensors, atomic_write_json

FEATURES = 32          # width of the feature layer (small: FD² needs n ≫ F samples)
VERSION = 1            # bump when the architecture or the training recipe changes
SEED, EPOCHS, BATCH, LR, TRAIN_FRACTION = 0, 20, 64, 2e-3, 0.8
MAX_TRAIN, MAX_TEST = 10_000, 2_000   # Fashion-MNIST's 70000: a seeded subset keeps it minutes


class FeatureNet(nn.Module):
    """conv 3×3 (16) → conv 3×3 stride 2 (32) → conv 3×3 stride 2 (32) → mean pool →
    linear (FEATURES) → ReLU [features] → linear (classes). Any image size ≥ 4×4."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass(frozen=True)
class FeatureMap:
    """A trained feature network and what it is (for the estimate's `features` field)."""

    net: FeatureNet
    description: dict

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        parts = [self.net.features(images[i:i + batch].float()) for i in
                 range(0, len(images), batch)]
        return torch.cat(parts).double()


def _split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded train/test rows: 80 % / 20 %, at most MAX_TRAIN / MAX_TEST of them."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SEED))
    cut = int(TRAIN_FRACTION * n)
    return order[:min(cut, MAX_TRAIN)], order[cut:cut + MAX_TEST]


def train_feature_net(images: torch.Tensor, labels: torch.Tensor,
                      classes: int) -> tuple[FeatureNet, float]:
    """The classifier trained from SEED on 80 % of the images; its accuracy on the rest."""
    train_rows, test_rows = _split(len(images))
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        net = FeatureNet(images.shape[1], classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(SEED + 1)
    x, y = images.float(), labels.long()
    for _ in range(EPOCHS):
        order = train_rows[torch.randperm(len(train_rows), generator=generator)]
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            loss = nn.functional.cross_entropy(net(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = float((net(x[test_rows]).argmax(1) == y[test_rows]).float().mean())
    return net, accuracy


def data_key(name: str, images: torch.Tensor) -> str:
    digest = hashlib.sha256(images.float().contiguous().numpy().tobytes()).hexdigest()[:12]
    return f"{name}-v{VERSION}-f{FEATURES}-seed{SEED}-{digest}"


def feature_map(name: str, images: torch.Tensor, labels: torch.Tensor,
                classes: int) -> FeatureMap:
    """The cached classifier for this data set, trained (and cached) on first use."""
    folder = cache_dir("features")
    key = data_key(name, images)
    weights, record = folder / f"{key}.safetensors", folder / f"{key}.json"
    net = FeatureNet(images.shape[1], classes)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        net.load_state_dict(load_file(str(weights)))
        description = json.loads(record.read_text())
    except (OSError, ValueError, RuntimeError, SafetensorError):   # missing or damaged: rebuild
        print(f"training the {name} feature classifier for the Fréchet distance (once; "
              f"cached in {folder})", file=sys.stderr)
        net, accuracy = train_feature_net(images, labels, classes)
        description = {"network": f"heatbath FeatureNet v{VERSION}, {FEATURES} features "
                                  f"(input of the last layer)", "data": name,
                       "held_out_accuracy": accuracy, "seed": SEED, "key": key}
        atomic_save_tensors(weights, net.state_dict())
        atomic_write_json(record, description)
    net.eval()
    return FeatureMap(net, description)
