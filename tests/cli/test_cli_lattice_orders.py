"""The masked lattice sampler's site order end to end: sample.order stored with the run and
used by fit's samples, `sample --log-q` and `estimate` alike; `sample --order` overrides it
for one draw; runs recorded before the setting existed keep the raster order; one-line
refusals of orders and step counts that do not fit."""

import json
import shutil

import numpy as np
import pytest
import torch

from heatbath.cli import main
from heatbath.generative.run import load_run
from heatbath.paths.masked import MaskedPath, sublattice_steps

# a depth-1 net reads 2 sites away: on 6x6 the sublattice order takes 3x3 = 9 steps of 4 sites
SMALL = ["--set", "data.kind=lattice", "--set", "path.name=masked", "--set", "model.depth=1",
         "--set", "model.features=8", "--set", "train.batch_size=32", "--set", "eval.samples=20",
         "--set", "train.checkpoint_every=20", "--set", "train.lr=1e-2",
         "--set", "train.warmup=0", "--steps", "20", "--quiet"]
SHAPE, SITES, SUBLATTICE_STEPS = (6, 6), 36, 9


@pytest.fixture(scope="module")
def sublattice_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("orders")
    # one state per lattice, 10% of sites flipped: neighbours matter, so the orders' models
    # differ even after 20 steps (a uniform model would score every order alike)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (200, 1, 1)) ^ (rng.random((200, *SHAPE)) < 0.1)
    np.savez(folder / "d.npz", x=x.astype(np.int64))
    run = folder / "run"
    assert main(["fit", "--data", str(folder / "d.npz"), "--out", str(run),
                 "--set", "sample.order=sublattice"] + SMALL) == 0
    return folder, run


def one_by_one_log_q(run_dir, x):
    """log q of the sublattice order's sites revealed one per step, in the same sequence."""
    run = load_run(run_dir)
    steps = [site.view(1) for chunk in sublattice_steps(SHAPE, run.net.reach) for site in chunk]
    with torch.no_grad():
        return MaskedPath.ordered_log_prob(run.net, torch.as_tensor(x), steps).numpy()


def test_the_stored_order_draws_and_scores_exactly_in_fewer_steps(sublattice_run, capsys):
    from heatbath.generative.lattice import lattice_log_q

    folder, run = sublattice_run
    assert 'order = "sublattice"' in (run / "config.toml").read_text()
    assert int(np.load(run / "samples.npz")["nfe"]) == SUBLATTICE_STEPS   # fit's own samples
    assert main(["sample", str(run), "-n", "40", "--log-q", "--out", str(folder / "s.npz"),
                 "--quiet"]) == 0
    drawn = np.load(folder / "s.npz")
    assert int(drawn["nfe"]) == SUBLATTICE_STEPS and str(drawn["order"]) == "sublattice"
    assert "sublattice" in str(drawn["log_q_density"])
    np.testing.assert_allclose(drawn["log_q"], one_by_one_log_q(run, drawn["x"]), atol=1e-4)
    capsys.readouterr()
    assert main(["estimate", str(run), "--json", "-n", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["order"] == "sublattice" and report["nfe"] == SUBLATTICE_STEPS
    heldout = load_run(run).heldout()[0].long()[:20].numpy()
    nll = -one_by_one_log_q(run, heldout).mean() / SITES
    assert report["nll_per_dim"]["value"] == pytest.approx(nll, abs=1e-5)
    raster = -lattice_log_q(load_run(run), torch.as_tensor(heldout), order="raster")
    assert abs(float(raster.mean()) / SITES - nll) > 1e-3   # another model: the check can fail
    assert "order" in report["conventions"]


def test_order_overrides_draw_from_other_exact_models(sublattice_run):
    from heatbath.generative.lattice import lattice_log_q, sample_lattice

    folder, run_dir = sublattice_run
    run = load_run(run_dir)
    for order in ("raster", "random"):
        drawn = sample_lattice(run, 30, seed=4, with_log_q=True, order=order)
        assert drawn.nfe == SITES
        torch.testing.assert_close(drawn.log_q, lattice_log_q(run, drawn.x, order=order),
                                   rtol=0, atol=1e-4)
        again = sample_lattice(run, 30, seed=4, order=order)
        assert torch.equal(drawn.x, again.x)   # same seed: same permutation and samples
    assert main(["sample", str(run_dir), "-n", "5", "--order", "random", "--quiet"]) == 0
    written = np.load(run_dir / f"samples-masked-random-{SITES}-seed0.npz")
    assert str(written["order"]) == "random" and int(written["nfe"]) == SITES


def test_a_run_recorded_before_sample_order_keeps_the_raster_order(sublattice_run, capsys,
                                                                    tmp_path):
    _, run = sublattice_run
    old = tmp_path / "old"
    shutil.copytree(run, old)
    config = old / "config.toml"
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if not line.startswith("order")))
    assert load_run(old).config.sample.order == "raster"
    capsys.readouterr()
    assert main(["estimate", str(old), "--json", "-n", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["order"] == "raster" and report["nfe"] == SITES


def test_orders_and_steps_that_do_not_fit_are_refused_in_one_line(sublattice_run, tmp_path,
                                                                 user_error):
    folder, run = sublattice_run
    out = tmp_path / "s.npz"
    user_error(["sample", run, "-n", "3", "--order", "spiral", "--out", out],
               "--order", "raster, sublattice, random")
    user_error(["sample", run, "-n", "3", "--nfe", "4", "--out", out],
               "--nfe 4", "9 exact steps")
    user_error(["sample", run, "-n", "3", "--order", "random", "--nfe", "4", "--log-q",
                "--out", out], "no exact log q")
    assert not out.exists()
    user_error(["fit", "--data", folder / "d.npz", "--out", tmp_path / "bad",
                "--set", "sample.order=spiral"] + SMALL, "sample.order")
    user_error(["fit", "--data", "builtin:moons:n=50", "--out", tmp_path / "bad",
                "--set", "sample.order=random", "--quiet"], "sample.order=random",
               "path.name=masked")
    assert not (tmp_path / "bad").exists()


def test_order_is_refused_where_there_is_no_site_order(tiny_data_run, tiny_energy_run,
                                                       tmp_path, user_error):
    out = tmp_path / "s.npz"
    user_error(["sample", tiny_data_run, "-n", "3", "--order", "random", "--out", out],
               "--order", "path.name=masked")
    user_error(["sample", tiny_energy_run, "-n", "3", "--order", "random"], "--order")
    assert not out.exists()


def test_the_uniform_path_has_no_site_order(sublattice_run, tmp_path, user_error):
    folder, _ = sublattice_run
    uniform = SMALL + ["--set", "path.name=uniform", "--steps", "2"]
    user_error(["fit", "--data", folder / "d.npz", "--out", tmp_path / "bad",
                "--set", "sample.order=sublattice"] + uniform, "sample.order=sublattice")
    assert not (tmp_path / "bad").exists()
    assert main(["fit", "--data", str(folder / "d.npz"), "--out", str(tmp_path / "run")]
                + uniform) == 0
    user_error(["sample", tmp_path / "run", "-n", "3", "--order", "raster",
                "--out", tmp_path / "s.npz"], "--order raster", "path.name=masked")
