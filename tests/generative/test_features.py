"""The Fréchet feature classifier: seeded, cached, rebuilt when damaged or when the data change."""

import pytest
import torch

from heatbath.generative import features as feats


def two_class_images(n: int = 160, seed: int = 0):
    """8×8 images, bright on the left half (class 0) or the right half (class 1), plus noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.3 * torch.randn(n, 1, 8, 8, generator=generator)
    images[labels == 0, :, :, :4] += 1.0
    images[labels == 1, :, :, 4:] += 1.0
    return images, labels


def test_training_is_deterministic_and_learns():
    images, labels = two_class_images()
    net_a, accuracy_a = feats.train_feature_net(images, labels, 2)
    net_b, accuracy_b = feats.train_feature_net(images, labels, 2)
    for (name, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert torch.equal(a, b), name
    assert accuracy_a == accuracy_b >= 0.95


def test_the_cache_is_used_rebuilt_when_damaged_and_keyed_by_the_data(monkeypatch):
    images, labels = two_class_images()
    first = feats.feature_map("toy", images, labels, 2)
    assert first(images).shape == (len(images), feats.FEATURES)

    def no_training(*args):
        raise AssertionError("trained again although the cache holds this classifier")

    real_training = feats.train_feature_net
    monkeypatch.setattr(feats, "train_feature_net", no_training)
    again = feats.feature_map("toy", images, labels, 2)
    assert torch.equal(again(images), first(images))
    assert again.description == first.description

    key = feats.data_key("toy", images)
    (feats.cache_dir("features") / f"{key}.safetensors").write_bytes(b"damaged")
    monkeypatch.setattr(feats, "train_feature_net", real_training)
    rebuilt = feats.feature_map("toy", images, labels, 2)
    assert torch.equal(rebuilt(images), first(images))   # same seed, same weights
    assert feats.data_key("toy", images + 1e-3) != key


@pytest.mark.parametrize("size", [8, 28])
def test_the_network_takes_any_image_size(size):
    net = feats.FeatureNet(1, 10)
    assert net.features(torch.zeros(3, 1, size, size)).shape == (3, feats.FEATURES)
