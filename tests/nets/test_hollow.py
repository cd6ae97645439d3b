"""Hollow networks: h_i never sees x_i, and the one-backward-pass divergence equals the
trace of the full Jacobian for every parametrisation the Field applies on top."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from heatbath.cli import main
from heatbath.generative.field import Field
from heatbath.samplers.likelihood import (EXACT_MAX_DIM, exact_divergence, hollow_divergence,
                                 log_likelihood, vmapped_divergence)
from heatbath.nets import EMA, HollowMLP, build_net
from heatbath.paths import build_path


def small_hollow(dim, **kw):
    return build_net("hollow", (dim,), hidden=24, depth=2, features=6, time_dim=8, seed=1,
                     dtype=torch.float64, **kw)


def context_jacobian(net, x, t=0.3):
    """(B, D, D): ∂(Σ_w h_{i,w})/∂x_j per sample."""
    emb = net.embedding(torch.full((len(x),), t, dtype=x.dtype), None, None, like=x)
    jac = torch.autograd.functional.jacobian(lambda z: net.contexts(z, emb).sum(-1), x)
    return torch.stack([jac[b, :, b, :] for b in range(len(x))])


@pytest.mark.parametrize("dim", [1, 2, 7])
def test_context_of_each_coordinate_reads_every_other_coordinate_and_never_its_own(dim):
    net = small_hollow(dim)
    x = torch.randn(3, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(dim))
    jac = context_jacobian(net, x)
    eye = torch.eye(dim, dtype=torch.bool).expand_as(jac)
    assert torch.equal(jac[eye], torch.zeros_like(jac[eye]))
    assert (jac[~eye].abs() > 1e-8).all()   # not hollow by being constant


def test_masks_are_rebuilt_not_saved_and_ema_ignores_them():
    net = small_hollow(4)
    masks = {name: b for name, b in net.named_buffers() if "mask" in name}
    assert masks                                  # the masked layers do hold mask buffers ...
    assert not any("mask" in key for key in net.state_dict())      # ... that are not saved
    assert all(not b.is_floating_point() for b in masks.values())
    ema = EMA(net)
    assert ema.shadow and not any("mask" in key for key in ema.shadow)
    assert not any("mask" in key for key in ema.state_dict())


FIELDS = {   # (path, prediction, conditioning): every conversion the Field applies
    "linear-velocity": ("linear", "velocity", False),
    "vp-eps": ("vp", "eps", False),
    "edm-edm": ("edm", "edm", False),
    "cosine-v": ("cosine", "v", False),
    "trig-x1-guided-clipped": ("trig", "x1", True),
}


def make_field(name, dim=5):
    path_name, prediction, guided = FIELDS[name]
    net = small_hollow(dim, num_classes=3 if guided else None)
    path = build_path(path_name, sigma_data=0.7)
    if not guided:
        return Field(net, path, prediction)
    clip = (torch.full((dim,), -0.8, dtype=torch.float64), torch.full((dim,), 0.8, dtype=torch.float64))
    return Field(net, path, prediction, cond=torch.tensor([0, 2, 1, 1]), guidance=1.5, clip=clip)


@pytest.mark.parametrize("name", list(FIELDS))
def test_one_backward_pass_divergence_equals_the_jacobian_trace(name):
    field = make_field(name)
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    velocity, trace = hollow_divergence(field, x, 0.45)
    jac = torch.autograd.functional.jacobian(lambda z: field.velocity(z, 0.45).sum(0), x)
    reference = torch.stack([torch.trace(jac[:, b, :]) for b in range(4)])
    assert torch.allclose(trace, reference, rtol=1e-12, atol=1e-12)
    assert torch.allclose(velocity, field.velocity(x, 0.45), rtol=0, atol=0)
    _, dispatched = exact_divergence(field, x, 0.45)
    assert torch.equal(dispatched, trace)
    _, generic = vmapped_divergence(field, x, 0.45)
    assert torch.allclose(generic, reference, rtol=1e-12, atol=1e-12)


def test_flattened_images_keep_the_cheap_divergence():
    net = build_net("hollow", (1, 3, 3), hidden=24, depth=1, features=4, seed=0, dtype=torch.float64)
    assert net.hollow and isinstance(net.net, HollowMLP)
    field = Field(net, build_path("linear"), "velocity")
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    _, trace = exact_divergence(field, x, 0.6)
    _, generic = vmapped_divergence(field, x, 0.6)
    assert trace.shape == (2,) and torch.allclose(trace, generic, rtol=1e-12, atol=1e-12)


def test_auto_likelihood_stays_exact_above_the_dense_limit_for_hollow_nets():
    dim = EXACT_MAX_DIM + 2
    field = Field(small_hollow(dim), build_path("linear"), "velocity")
    x = torch.randn(3, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    result = log_likelihood(field, x, solver="euler", steps=3)
    assert result.method == "exact" and torch.equal(result.stderr, torch.zeros(3))
    dense = Field(build_net("mlp", (dim,), hidden=16, depth=1, seed=0, dtype=torch.float64),
                  build_path("linear"), "velocity")
    assert log_likelihood(dense, x, solver="euler", steps=1).method == "hutchinson"


def test_hollow_run_from_the_cli(tmp_path, capsys):
    out = tmp_path / "hollow"
    assert main(["fit", "--data", "builtin:digits:n=200", "--steps", "6", "--out", str(out),
                 "--set", "model.net=hollow", "--set", "model.hidden=32", "--set",
                 "model.depth=1", "--set", "model.features=4", "--set", "train.batch_size=16",
                 "--set", "eval.samples=16", "--set", "sample.nfe=3", "--quiet"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["net"]["kind"] == "hollow" and info["net"]["features"] == 4
    assert not any("mask" in key for key in load_file(out / "model.safetensors"))
    capsys.readouterr()
    assert main(["estimate", str(out), "-n", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert np.isfinite(result["nll_per_dim"]["value"]) and result["bits_per_dim"]["value"] > 0
    assert main(["sample", str(out), "-n", "4", "--log-q", "--cond", "2", "--nfe", "3",
                 "--out", str(tmp_path / "q.npz"), "--quiet"]) == 0
    data = np.load(tmp_path / "q.npz")
    assert data["x"].shape == (4, 1, 8, 8) and np.isfinite(data["log_q"]).all()
    assert "log_q_stderr" not in data.files   # exact, no estimator error


def test_unet_on_vectors_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["fit", "--data", "builtin:moons", "--set", "model.net=unet", "--out",
                 str(out), "--quiet"]) == 2
    assert "model.net=unet does not fit vector samples" in capsys.readouterr().err
    assert not out.exists()
