"""Categorical lattices end to end: fit (data.kind=lattice, path.name=masked) -> sample
--log-q -> estimate --json on exact 4x4 Ising samples, another lattice size from the Python
API and from --shape, exact resume, the report's lattice images, and one-line refusals that
write nothing."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from heatbath.cli import main
from heatbath.targets.ising import Ising2D

LATTICE = ["--set", "data.kind=lattice", "--set", "path.name=masked", "--quiet"]
TINY = ["--set", "train.batch_size=128", "--set", "eval.samples=200",
        "--set", "train.checkpoint_every=100", "--set", "train.log_every=50"]


def ising_states(shape, n, beta=0.3, seed=0):
    """Exact Ising samples (enumeration) as states 0/1 (spin -1 -> 0, +1 -> 1), and the exact
    entropy per site of their distribution, log Z + <U> over the sites."""
    target = Ising2D(L=shape[0], M=shape[1], beta=beta)
    spins = target.sample_exact(n, torch.Generator().manual_seed(seed))
    entropy = (target.exact.log_z + target.exact.energy_mean) / math.prod(shape)
    return ((spins + 1) / 2).long().numpy(), entropy


@pytest.fixture(scope="module")
def ising(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lattice")
    x, entropy = ising_states((4, 4), 2000)
    np.savez(folder / "ising.npz", x=x)
    run = folder / "run"
    assert main(["fit", "--data", str(folder / "ising.npz"), "--steps", "250", "--out", str(run)]
                + LATTICE + TINY) == 0
    return folder, run, entropy


def test_fit_sample_estimate_round_trip(ising, capsys):
    folder, run, entropy = ising
    for name in ("model.safetensors", "samples.npz", "report.html", "heldout.safetensors"):
        assert (run / name).is_file(), name
    assert np.load(run / "samples.npz")["x"].dtype == np.int64
    assert main(["sample", str(run), "-n", "100", "--log-q", "--out", str(folder / "s.npz"),
                 "--quiet"]) == 0
    drawn = np.load(folder / "s.npz")
    assert drawn["x"].shape == (100, 4, 4) and set(np.unique(drawn["x"])) <= {0, 1}
    assert int(drawn["nfe"]) == 16 and "exact" in str(drawn["log_q_density"])
    assert np.all(drawn["log_q"] < 0)
    capsys.readouterr()
    assert main(["estimate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    nll = report["nll_per_dim"]["value"]
    # Held-out NLL per site near the exact entropy of the generating distribution (0.5459):
    # 200 held-out lattices give a standard error of about 0.01.
    assert abs(nll - entropy) < 0.04, (nll, entropy)
    assert report["bits_per_dim"]["value"] == pytest.approx(nll / math.log(2))
    assert report["likelihood"] == "exact" and report["nfe"] == 16 and report["dim"] == 16
    assert "nll_per_dim" in report["conventions"]


def test_a_model_trained_at_4x4_samples_and_scores_6x6(ising, tmp_path):
    from heatbath.generative.estimate import estimate_data_run
    from heatbath.generative.lattice import lattice_log_q, sample_lattice
    from heatbath.generative.run import load_run

    _, run_dir, _ = ising
    run = load_run(run_dir)
    drawn = sample_lattice(run, 20, shape=(6, 6), with_log_q=True, seed=1)
    assert drawn.x.shape == (20, 6, 6) and drawn.nfe == 36
    torch.testing.assert_close(drawn.log_q, lattice_log_q(run, drawn.x), rtol=0, atol=1e-4)
    x, _ = ising_states((3, 6), 40)   # enumerable 18 spins; scored by the 4x4 model
    np.savez(tmp_path / "other.npz", x=x)
    report = estimate_data_run(run, source=str(tmp_path / "other.npz"), n=20)
    assert report["shape"] == [3, 6] and 0 < report["nll_per_dim"]["value"] < 1.0
    assert main(["sample", str(run_dir), "-n", "5", "--shape", "5,7", "--nfe", "7",
                 "--out", str(tmp_path / "s.npz"), "--quiet"]) == 0
    assert np.load(tmp_path / "s.npz")["x"].shape == (5, 5, 7)


def test_resume_continues_exactly(tmp_path):
    x, _ = ising_states((3, 3), 300)
    np.savez(tmp_path / "d.npz", x=x)
    small = ["--set", "train.batch_size=32", "--set", "eval.samples=20",
             "--set", "model.features=8", "--set", "train.checkpoint_every=10"] + LATTICE
    common = ["fit", "--data", str(tmp_path / "d.npz")]
    assert main(common + ["--steps", "20", "--out", str(tmp_path / "straight")] + small) == 0
    assert main(common + ["--steps", "10", "--out", str(tmp_path / "split")] + small) == 0
    assert main(["fit", "--resume", "--out", str(tmp_path / "split"), "--steps", "20",
                 "--quiet"]) == 0
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a 3x3 lattice of 0/1 states is drawn as images, not mistaken for particle positions
    report = (tmp_path / "straight" / "report.html").read_text()
    assert "samples: grid of" in report and "pair distances" not in report


BAD = {"non-integer": (np.full((20, 3, 3), 0.5), "non-integer"),
       "negative": (-np.ones((20, 3, 3), dtype=int), "negative"),
       "ndim": (np.zeros((20, 9), dtype=int), "(N, L, M)"),
       "one state": (np.zeros((20, 3, 3), dtype=int), "q >= 2")}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_lattices_are_refused_in_one_line_writing_nothing(case, tmp_path, cli):
    array, words = BAD[case]
    np.save(tmp_path / "bad.npy", array)
    out = tmp_path / "run"
    code, _, err = cli(["fit", "--data", tmp_path / "bad.npy", "--out", out] + LATTICE)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_paths_and_data_must_agree(tmp_path, cli):
    np.save(tmp_path / "ok.npy", np.eye(3, dtype=int)[None].repeat(10, 0))
    out = tmp_path / "run"
    code, _, err = cli(["fit", "--data", tmp_path / "ok.npy", "--out", out, "--set",
                        "data.kind=lattice", "--quiet"])        # the default path is linear
    assert code == 2 and "path.name=masked" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(["fit", "--data", "builtin:moons:n=50", "--out", out, "--set",
                        "path.name=masked", "--quiet"])
    assert code == 2 and "data.kind=lattice" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_sampling_refusals_name_why(ising, tmp_path, cli):
    _, run, _ = ising
    code, _, err = cli(["sample", run, "-n", "3", "--nfe", "4", "--log-q",
                        "--out", tmp_path / "s.npz"])
    assert code == 2 and "no exact log q" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(["sample", run, "-n", "3", "--sampler", "heun",
                        "--out", tmp_path / "s.npz"])
    assert code == 2 and "--sampler" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.npz").exists()
