"""Data-dependent couplings from the command line (path.base = inpaint, superres, paired): fit,
restore with `sample --from`, estimate, and one-line refusals that write nothing."""

import json

import numpy as np
import pytest

from heatbath.cli import main

VECTOR = ["--set", "model.hidden=64", "--set", "model.depth=2", "--set", "train.batch_size=128",
          "--set", "eval.samples=50", "--set", "eval.likelihood_max=8",
          "--set", "sample.nfe=20", "--quiet"]
IMAGE = ["--set", "model.base=8", "--set", "model.mults=[1]", "--set", "train.batch_size=32",
         "--set", "eval.samples=20", "--set", "eval.likelihood_max=3", "--set", "eval.rtol=1e-3",
         "--set", "eval.atol=1e-3", "--set", "sample.nfe=6", "--quiet"]


def _pairs(n, seed):
    """x = (a, a + 0.1 ε): the second coordinate is the first one, up to noise 0.1."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return np.stack([a, a + 0.1 * rng.normal(size=n)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def inpaint_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coupled")
    np.savez(folder / "pairs.npz", x=_pairs(2000, 0))
    out = folder / "run"
    assert main(["fit", "--data", str(folder / "pairs.npz"), "--steps", "600", "--out", str(out),
                 "--set", "path.base=inpaint", "--set", "path.mask=half"] + VECTOR) == 0
    return out


def test_inpainting_learns_the_missing_coordinate_from_the_observed_one(inpaint_run, tmp_path):
    clean = _pairs(400, 1)
    np.savez(tmp_path / "clean.npz", x=clean)
    out = tmp_path / "restored.npz"
    assert main(["sample", str(inpaint_run), "--from", str(tmp_path / "clean.npz"),
                 "--out", str(out), "--quiet"]) == 0
    restored = np.load(out)
    x, base = restored["x"], restored["base"]
    assert x.shape == (400, 2) and np.array_equal(x[:, 0], clean[:, 0])   # observed: kept
    # A draw from q(x₂ | x₁) minus the truth: RMS 0.1·√2 for the exact model; the base (the
    # data mean) is off by the spread of a, RMS ≈ 1.
    error = np.sqrt(np.mean((x[:, 1] - clean[:, 1]) ** 2))
    base_error = np.sqrt(np.mean((base[:, 1] - clean[:, 1]) ** 2))
    assert error < 0.3 < 0.8 < base_error
    assert restored["psnr"].mean() > restored["psnr_base"].mean() + 6.0


def test_restorations_are_per_observation_deterministic(inpaint_run, tmp_path):
    np.savez(tmp_path / "obs.npz", c=_pairs(7, 2))
    draws = []
    for n in (7, 14):
        out = tmp_path / f"r{n}.npz"
        assert main(["sample", str(inpaint_run), "--from", str(tmp_path / "obs.npz"), "-n",
                     str(n), "--seed", "3", "--out", str(out), "--quiet"]) == 0
        draws.append(np.load(out)["x"])
    np.testing.assert_allclose(draws[0], draws[1][:7], atol=1e-6)
    assert not np.allclose(draws[1][:7, 1], draws[1][7:, 1])   # rows cycle: new draws


def test_log_q_of_restorations_is_their_exact_density(inpaint_run, tmp_path):
    """Weights w = p(x₂ | x₁)/q(x₂ | x₁), with p the data's true conditional N(x₁, 0.1²) and q
    the --log-q of a few-step sampler's restorations, have mean exactly 1 when q is the
    density of what was returned (E_q[p/q] = ∫p = 1), whatever the model's errors."""
    np.savez(tmp_path / "obs.npz", c=np.array([[0.3, 0.0]], dtype=np.float32))
    out = tmp_path / "q.npz"
    assert main(["sample", str(inpaint_run), "--from", str(tmp_path / "obs.npz"), "-n", "600",
                 "--log-q", "--sampler", "heun", "--nfe", "19", "--out", str(out),
                 "--quiet"]) == 0
    draws = np.load(out)
    x2, log_q = draws["x"][:, 1].astype(np.float64), draws["log_q"]
    log_p = -0.5 * ((x2 - 0.3) / 0.1) ** 2 - np.log(0.1 * np.sqrt(2 * np.pi))
    w = np.exp(log_p - log_q)
    assert abs(w.mean() - 1.0) < 4 * w.std(ddof=1) / np.sqrt(len(w))
    assert w.std() < 1.0   # the model has learned the conditional: not a degenerate test


def test_estimate_reports_the_conditional_likelihood_and_psnr(inpaint_run, capsys):
    capsys.readouterr()
    assert main(["estimate", str(inpaint_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["conditional"].startswith("log q(x | c)")
    assert report["psnr"]["value"] > report["psnr_base"]["value"]
    assert "psnr" in report["conventions"] and np.isfinite(report["nll_per_dim"]["value"])


@pytest.fixture(scope="module")
def superres_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("superres") / "run"
    assert main(["fit", "--data", "builtin:digits", "--steps", "20", "--out", str(out),
                 "--set", "path.base=superres", "--set", "path.factor=2"] + IMAGE) == 0
    return out


def test_superresolution_keeps_the_observed_block_means(superres_run, tmp_path):
    rng = np.random.default_rng(0)
    low = rng.uniform(-1, 1, size=(4, 1, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "low.npz", c=low)
    out = tmp_path / "sr.npz"
    assert main(["sample", str(superres_run), "--from", str(tmp_path / "low.npz"),
                 "--out", str(out), "--quiet"]) == 0
    x = np.load(out)["x"]
    blocks = x.reshape(4, 1, 4, 2, 4, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(blocks, low, atol=1e-5)


def test_superresolution_estimate_has_no_bits_per_dim(superres_run, capsys):
    capsys.readouterr()
    assert main(["estimate", str(superres_run), "--json", "-n", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "bits_per_dim" not in report and "psnr" in report and "frechet_distance" in report


def test_paired_data_from_a_file(tmp_path, capsys):
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=(300, 3)).astype(np.float32)
    np.savez(tmp_path / "paired.npz", x=(2 * x0 + 1).astype(np.float32), x0=x0)
    out = tmp_path / "run"
    assert main(["fit", "--data", str(tmp_path / "paired.npz"), "--steps", "20", "--out",
                 str(out), "--set", "path.base=paired"] + VECTOR) == 0
    np.savez(tmp_path / "src.npz", c=x0[:6])
    assert main(["sample", str(out), "--from", str(tmp_path / "src.npz"), "--out",
                 str(tmp_path / "s.npz"), "--quiet"]) == 0
    assert np.load(tmp_path / "s.npz")["x"].shape == (6, 3)


@pytest.fixture
def files(tmp_path):
    np.savez(tmp_path / "vec.npz", x=_pairs(100, 5))
    np.savez(tmp_path / "paired.npz", x=_pairs(100, 5), x0=_pairs(100, 6))
    return tmp_path


@pytest.mark.parametrize("data,sets,fragment", [
    ("vec.npz", ["path.base=superres"], "data.kind=image"),
    ("builtin:digits", ["path.base=superres", "path.factor=3"], "path.factor=3"),
    ("vec.npz", ["path.base=paired"], "x0"),
    ("paired.npz", [], "path.base=paired"),
    ("vec.npz", ["path.base=inpaint", "train.coupling=ot"], "train.coupling=independent"),
    ("vec.npz", ["path.base=inpaint", "model.net=hollow"], "model.net=mlp or unet"),
    ("vec.npz", ["path.base=inpaint", "path.name=cld"], "Gaussian path"),
    ("vec.npz", ["path.base=inpaint", "path.mask=ring"], "path.mask"),
    ("vec.npz", ["path.base=blur"], "path.base"),
])
def test_fit_refusals_write_nothing(files, data, sets, fragment, user_error):
    source = data if data.startswith("builtin:") else str(files / data)
    args = ["fit", "--data", source, "--steps", "2", "--out", str(files / "run"), "--quiet"]
    for item in sets:
        args += ["--set", item]
    user_error(args, fragment)
    assert not (files / "run").exists()


@pytest.mark.parametrize("arrays,fragment", [
    ({"y": np.zeros((2, 2))}, "neither 'x'"),
    ({"c": np.zeros((2, 3))}, "(N, 2)"),
    ({"c": np.zeros((2, 2)), "missing": np.full((2, 2), 0.5)}, "0 (observed) or 1"),
    ({"c": np.full((2, 2), np.nan)}, "NaN"),
])
def test_bad_observation_files_are_one_line(inpaint_run, tmp_path, arrays, fragment,
                                            user_error):
    np.savez(tmp_path / "bad.npz", **arrays)
    user_error(["sample", str(inpaint_run), "--from", str(tmp_path / "bad.npz"), "--out",
                str(tmp_path / "o.npz")], fragment)
    assert not (tmp_path / "o.npz").exists()


def test_from_needs_a_coupled_run_and_a_coupled_run_needs_from(inpaint_run, tiny_data_run,
                                                               tmp_path, user_error):
    np.savez(tmp_path / "obs.npz", c=_pairs(3, 0))
    user_error(["sample", str(tiny_data_run), "--from", str(tmp_path / "obs.npz")],
               "path.base=inpaint")
    user_error(["sample", str(inpaint_run), "-n", "3"], "--from FILE")
    user_error(["sample", str(inpaint_run), "--from", str(tmp_path / "obs.npz"), "--clip"],
               "drop --clip")
    user_error(["sample", str(inpaint_run), "--from", str(tmp_path / "none.npz")], "--from")


def test_a_corrupt_observation_file_is_one_line(inpaint_run, tmp_path, user_error):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    user_error(["sample", str(inpaint_run), "--from", str(tmp_path / "broken.npz"), "--out",
                str(tmp_path / "o.npz")], "broken.npz")
    assert not (tmp_path / "o.npz").exists()
