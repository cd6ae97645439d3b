"""The translation-equivariant lattice flow (`LatticeFlow`): exact density and its symmetry.

log q against the brute-force Jacobian determinant (autograd, every column) in float64, with and
without the Fourier-space scale layer, affine and spline couplings; the inverse undoes the map
and the Fourier layer keeps fields real; translations by (a, b) with a + b even commute with the
flow (and an odd one, which swaps the checkerboard's colours, does not: the control); the
untrained flow is its base; a safetensors round trip keeps the samples.
"""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from heatbath.core.checkpoint import load_model_weights
from heatbath.flows import LatticeFlow
from heatbath.flows.lattice import checkerboard
from heatbath.testsystems import randomise_heads

F64 = torch.float64


def random_flow(shape=(4, 4), seed: int = 1, std: float = 0.5, spectral: bool = True,
                bins: int = 0) -> LatticeFlow:
    """Random heads, and a random spectrum when the Fourier layer is on."""
    flow = LatticeFlow(shape, layers=4, channels=4, spectral=spectral, bins=bins,
                       bound=2.0).double()
    randomise_heads(flow, seed=seed, std=std)
    if spectral:
        generator = torch.Generator().manual_seed(seed + 100)
        with torch.no_grad():
            flow.spectral.log_scale.copy_(0.5 * torch.randn(shape, generator=generator,
                                                            dtype=F64))
    return flow


def fields(n: int, shape=(4, 4), seed: int = 3) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("spectral,bins", [(True, 0), (False, 0), (True, 6)])
def test_log_q_matches_the_brute_force_jacobian_determinant(spectral, bins):
    flow = random_flow(spectral=spectral, bins=bins)
    z = fields(3).flatten(1)
    x, log_det = flow.transform(z)
    for i in range(len(z)):
        jacobian = torch.autograd.functional.jacobian(lambda v: flow.transform(v[None])[0][0], z[i])
        sign, brute = torch.linalg.slogdet(jacobian)
        assert sign > 0
        assert abs(log_det[i].item() - brute.item()) < 1e-10
        log_q = -0.5 * z[i].pow(2).sum() - 8 * math.log(2 * math.pi) - brute
        assert abs(flow.log_prob(x[i].reshape(1, 4, 4)).item() - log_q.item()) < 1e-10
    assert log_det.abs().min() > 0.1   # the randomised flow is far from the identity


@pytest.mark.parametrize("bins", [0, 6])
def test_inverse_undoes_the_map_and_log_dets_cancel(bins):
    flow = random_flow(shape=(4, 6), bins=bins)
    z = fields(5, (4, 6)).flatten(1)
    x, forward = flow.transform(z)
    back, inverse = flow.inverse(x)
    assert torch.allclose(back, z, atol=1e-12) and torch.allclose(forward, -inverse, atol=1e-12)
    # a_k = a_{-k}, so the scaled spectrum is a real field's: the dropped imaginary part is 0
    scaled = torch.fft.ifft2(torch.fft.fft2(z.reshape(5, 4, 6)) * flow.spectral._symmetric().exp())
    assert scaled.imag.abs().max() < 1e-12
    drawn, log_q = flow.sample_and_log_prob(7, torch.Generator().manual_seed(0))
    assert torch.allclose(log_q, flow.log_prob(drawn), atol=1e-10)


@pytest.mark.parametrize("shift,bins", [((2, 0), 0), ((0, 2), 0), ((1, 1), 6), ((2, 4), 6)])
def test_even_translations_commute_with_the_flow(shift, bins):
    flow = random_flow(shape=(6, 6), bins=bins)
    z = fields(4, (6, 6))

    def moved(field):
        return field.roll(shift, dims=(1, 2))

    x_then_shift = moved(flow.unflatten(flow.transform(z.flatten(1))[0]))
    shift_then_x = flow.unflatten(flow.transform(moved(z).flatten(1))[0])
    assert torch.allclose(x_then_shift, shift_then_x, atol=1e-12)
    assert torch.allclose(flow.log_prob(x_then_shift), flow.log_prob(shift_then_x.clone()),
                          atol=1e-10)


def test_an_odd_translation_swaps_the_colours_and_does_not_commute():
    assert torch.equal(checkerboard((4, 4), 0).roll(1, 0), checkerboard((4, 4), 1))
    flow = random_flow(shape=(4, 4))
    z = fields(4)
    x_then_shift = flow.unflatten(flow.transform(z.flatten(1))[0]).roll(1, 1)
    shift_then_x = flow.unflatten(flow.transform(z.roll(1, 1).flatten(1))[0])
    assert (x_then_shift - shift_then_x).abs().max() > 1e-3


def test_the_untrained_flow_is_its_base_and_the_shape_is_checked():
    flow = LatticeFlow((4, 4), layers=3, spectral=True).double()
    z = fields(2).flatten(1)
    x, log_det = flow.transform(z)
    assert torch.allclose(x, z, atol=1e-14) and torch.equal(log_det, torch.zeros(2, dtype=F64))
    for shape in [(3, 4), (4,), (0, 4)]:
        with pytest.raises(ValueError, match="even"):
            LatticeFlow(shape)


def test_safetensors_round_trip_keeps_the_samples(tmp_path):
    flow = random_flow(seed=5)
    save_file(flow.state_dict(), tmp_path / "model.safetensors")
    assert all(key.startswith(("couplings.", "spectral.")) for key in flow.state_dict())
    assert "spectral.log_scale" in flow.state_dict()
    again = LatticeFlow((4, 4), layers=4, channels=4, spectral=True).double()
    load_model_weights(again, tmp_path / "model.safetensors")
    noise = torch.Generator().manual_seed(9)
    first = flow.sample(5, noise)
    assert torch.equal(first, again.sample(5, torch.Generator().manual_seed(9)))
