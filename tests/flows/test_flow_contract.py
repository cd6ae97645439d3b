"""The flow contract, over every kind in `FLOW_KINDS`.

Every flow is a sequence of layers x ↦ (x', Δ log w). For every kind: gradients of a weighted-
sample loss reach every parameter; every bijective layer's log|det J| equals autograd's Jacobian
and its inverse undoes it; a safetensors save/load round trip reproduces the samples; the stored
key names are the ones existing run directories hold. For the bijective flow, the sampling
pass's log q equals `log_prob` and inverse(transform(z)) = z.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from heatbath.core.checkpoint import load_model_weights
from heatbath.flows import FLOW_KINDS, SNF, Flow, importance_sample
from heatbath.targets.analytic import Gaussian

DIM = 3   # odd: the two coupling halves differ in size
CONTRACT_OPTIONS = {
    "flow": dict(layers=3, hidden=8, loc=[0.3, -0.2, 0.1], scale=[1.5, 0.8, 1.2],
                 base_scale=1.1),
    "snf-langevin": dict(n_blocks=2, layers_per_block=2, hidden=8, scale=1.5, mcmc_steps=2,
                         step_size=0.05),
    "snf-mala": dict(n_blocks=2, layers_per_block=2, hidden=8, scale=1.5, mcmc_steps=2,
                     step_size=0.3),
}
KINDS = list(FLOW_KINDS)


def target() -> Gaussian:
    return Gaussian(dim=DIM, mean=[1.0, -1.0, 0.5], std=1.5)


def randomise_heads(model: torch.nn.Module, seed: int, std: float = 0.3) -> None:
    """Random spline heads (they start at zero): non-trivial bijections whose hidden layers
    get gradients too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "net"):
                for p in (module.net[-1].weight, module.net[-1].bias):
                    p.copy_(std * torch.randn(p.shape, generator=generator, dtype=torch.float64))


def build(kind: str, seed: int = 0, heads: int | None = 1) -> torch.nn.Module:
    model = FLOW_KINDS[kind].build(DIM, **CONTRACT_OPTIONS[kind],
                                   generator=torch.Generator().manual_seed(seed)).double()
    if heads is not None:
        randomise_heads(model, heads)
    return model


def bijections(model) -> list[torch.nn.Module]:
    return [layer for layer in model.layers() if layer.bijective]


def test_the_contract_covers_every_flow_kind():
    assert set(CONTRACT_OPTIONS) == set(FLOW_KINDS)
    for kind in FLOW_KINDS:
        assert bijections(build(kind)), kind


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind):
    model = build(kind)
    batch = model.weighted_sample(128, torch.Generator().manual_seed(2), target())
    (-batch.log_w.mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()) and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", KINDS)
def test_bijective_layers_log_det_matches_the_jacobian(kind):
    model = build(kind)
    x = 1.5 * torch.randn(5, DIM, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for layer in bijections(model):
        with torch.no_grad():
            y, log_det = layer(x)
            back, log_det_inverse = layer.inverse(y)
        for i in range(len(x)):
            jacobian = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[i])
            expected = torch.linalg.slogdet(jacobian).logabsdet
            assert abs(log_det[i].item() - expected.item()) < 1e-8, (type(layer).__name__, i)
        assert torch.allclose(back, x, atol=1e-10, rtol=0), type(layer).__name__
        assert torch.allclose(log_det + log_det_inverse, torch.zeros_like(log_det), atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_log_q_of_the_sampling_pass(kind):
    """Bijections only: log q is log_prob(x) and the map inverts. Otherwise q(x) is
    intractable and no log_q is reported."""
    model = build(kind)
    batch = model.weighted_sample(200, torch.Generator().manual_seed(4), target())
    if not all(layer.bijective for layer in model.layers()):
        assert batch.log_q is None and not hasattr(model, "log_prob")
        return
    with torch.no_grad():
        assert torch.allclose(model.log_prob(batch.x), batch.log_q, atol=1e-8, rtol=0)
        z = 1.2 * torch.randn(200, DIM, generator=torch.Generator().manual_seed(5),
                              dtype=torch.float64)
        x, _ = model.transform(z)
        assert torch.allclose(model.inverse(x)[0], z, atol=1e-10, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_safetensors_round_trip_gives_identical_samples(kind, tmp_path):
    model = build(kind)
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))
    fresh = build(kind, seed=7, heads=None)
    draw = lambda m: importance_sample(m, target(), 50, torch.Generator().manual_seed(6),  # noqa: E731
                                       batch_size=16)
    assert not torch.equal(draw(fresh).log_w, draw(model).log_w)
    load_model_weights(fresh, path)   # the load path of `heatbath sample`: strict
    before, after = draw(model), draw(fresh)
    assert torch.equal(before.x, after.x) and torch.equal(before.log_w, after.log_w)


def test_state_dict_keys_are_the_stored_format():
    """Run directories hold model.safetensors with these names: they must keep loading."""
    flow = Flow(2, layers=2, hidden=4)
    net = [f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
    assert list(flow.state_dict()) == ([f"couplings.{k}.{n}" for k in range(2) for n in net]
                                       + ["standardise.loc", "standardise.log_scale"])
    snf = SNF(2, n_blocks=2, layers_per_block=1, hidden=4)
    assert list(snf.state_dict()) == (["log_step", "loc", "scale", "betas"]
                                      + [f"blocks.{k}.0.{n}" for k in range(2) for n in net]
                                      + [f"affines.{k}.{p}" for k in range(2)
                                         for p in ("loc", "log_scale")])
