"""The continuous normalizing flow: its log q is exact on the space it lives on, and it is the
energy half's `cnf` method on the data half's engine."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from torch import nn

from heatbath.energy import sample_energy
from heatbath.flows.cnf import ContinuousFlow, data_scale, draw_batch
from heatbath.spaces import CentredParticles, FreeSpace
from heatbath.targets import build_target

F64 = torch.float64


class LinearVelocity(nn.Module):
    """u(y_in, t) = a·y_in: with the path's input scaling k(t) = 1/√(t² + (1−t)²) the ODE is
    dy/dt = a·k(t)·y, so y(1) = exp(a·K)·y(0) with K = ∫₀¹ k(t) dt, in closed form."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=F64))

    def forward(self, x, t, c=None, drop=None):
        return self.a * x


def _gain() -> float:
    return integrate.quad(lambda t: 1.0 / math.sqrt(t * t + (1 - t) ** 2), 0.0, 1.0)[0]


@pytest.mark.parametrize("space", [CentredParticles(4, 2), CentredParticles(3, 3),
                                   FreeSpace((5,))])
def test_log_q_is_the_closed_form_density_on_the_space(space):
    """A scaled Gaussian on the space: wrong by a·K·d per sample if the divergence counted the
    centre-of-mass directions, which the chart's tangent basis leaves out."""
    a, scale = 0.3, 1.7
    flow = ContinuousFlow(LinearVelocity(a), space, scale)
    drawn = flow.sample_and_log_q(64, torch.Generator().manual_seed(0), rtol=1e-9, atol=1e-9)
    width = scale * math.exp(a * _gain())
    assert torch.allclose(drawn.log_q, space.log_normal(drawn.x, width), atol=1e-6)
    if space.reduced:
        assert drawn.x.reshape(64, *space.event_shape).mean(dim=1).abs().max() < 1e-12


def test_data_scale_is_the_rms_per_intrinsic_coordinate():
    space = CentredParticles(5, 2)
    x = 3.0 * space.randn(20000, torch.Generator().manual_seed(1), F64)
    # 8 intrinsic coordinates x 20000 draws: the RMS has relative standard error 1/sqrt(2n).
    assert data_scale(x, space) == pytest.approx(3.0, rel=3 / math.sqrt(2 * 8 * 20000))


@pytest.mark.parametrize("data, sampler", [("exact", "dopri5"), ("smc", "dopri5"),
                                           ("exact", "euler")])
def test_cnf_weights_give_log_z_of_the_harmonic_cluster_on_the_subspace(data, sampler):
    # euler at 3 evaluations is far from the ODE, but its log q is its own map's density, so
    # the weights stay unbiased
    target = build_target("harmonic_cluster:P=4,d=2,k=0.5")
    run = sample_energy(target, "cnf", settings={
        "cnf.data": data, "cnf.steps": 150, "method.steps": 20, "cnf.hidden": 16, "cnf.depth": 2,
        "cnf.rtol": 1e-4, "cnf.atol": 1e-4, "method.samples": 300, "cnf.sampler": sampler,
        "cnf.nfe": 3})
    found = run.estimates()
    assert abs(found.log_z.value - target.exact.log_z) < 3 * found.log_z.stderr, found.log_z
    # near a Gaussian (the 3-step map less so); the z-score above is the real test
    assert found.ess.value > (0.3 if sampler == "dopri5" else 0.1)
    assert run.x.shape == (300, 4, 2) and run.x.mean(dim=1).abs().max() < 1e-6
    assert np.isfinite(run.result.arrays["log_q"].numpy()).all()


def test_cnf_run_redraws_weighted_particles_and_reports_energy_w2(cli, tmp_path):
    import json

    out = tmp_path / "dw4-cnf"
    tiny = ["--set", "cnf.steps=5", "--set", "cnf.hidden=8", "--set", "cnf.depth=1",
            "--set", "method.samples=16", "--set", "method.chains=4", "--set",
            "method.steps=10", "--set", "method.burn_in=5", "--set", "cnf.rtol=1e-3",
            "--set", "cnf.atol=1e-3"]
    assert cli(["fit", "--target", "dw4", "--method", "cnf", "--out", out, *tiny,
                "--quiet"])[0] == 0
    code, stdout, _ = cli(["estimate", out, "--json"])
    report = json.loads(stdout)
    assert code == 0 and {"ess", "energy", "log_z", "energy_w2",
                          "energy_w2_reweighted"} <= set(report)
    assert "W2 (not squared" in report["conventions"]["energy_w2"]
    assert "reweighted" in report["conventions"]["energy_w2_reweighted"]
    assert "zero-centre-of-mass" in report["measure"] and "distance_w2" in report
    page = (out / "report.html").read_text()
    assert "pair distances: raw, reweighted and reference" in page
    assert "sampled configurations" in page and "could not plot" not in page
    code, _, err = cli(["sample", out, "-n", "12", "--out", tmp_path / "more.npz", "--quiet"])
    assert code == 0, err
    with np.load(tmp_path / "more.npz") as drawn:
        assert drawn["x"].shape == (12, 4, 2) and drawn["log_q"].shape == (12,)
        assert np.abs(drawn["x"].mean(axis=1)).max() < 1e-5


def test_a_network_that_does_not_fit_the_space_is_refused_in_one_line(user_error, tmp_path):
    user_error(["fit", "--target", "dw4", "--method", "cnf", "--set", "cnf.net=mlp", "--out",
                tmp_path / "r"], "cnf.net=mlp does not fit dw4", "egnn")
    user_error(["fit", "--target", "gmm40", "--method", "cnf", "--set", "cnf.net=egnn", "--out",
                tmp_path / "r"], "cnf.net=egnn does not fit gmm40", "mlp or hollow")


def test_a_sampler_without_an_exact_density_is_refused_in_one_line(user_error, tmp_path):
    user_error(["fit", "--target", "dw4", "--method", "cnf", "--set", "cnf.sampler=ddpm",
                "--out", tmp_path / "r"], "cnf.sampler", "dopri5, euler, heun")
    assert not (tmp_path / "r").exists()


def test_draw_batch_shrinks_with_the_pair_grid_and_not_below_16():
    assert draw_batch(FreeSpace((8,))) == 1000
    assert draw_batch(CentredParticles(4, 2)) == 1000
    assert draw_batch(CentredParticles(13, 3)) == 40_000 // 169
    assert draw_batch(CentredParticles(55, 3)) == 16
