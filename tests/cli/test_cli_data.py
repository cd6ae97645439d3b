"""End-to-end CLI tests of the data half on tiny settings."""

import json
import math

import numpy as np
import pytest
from safetensors.torch import load_file

from heatbath.cli import main

TINY = ["--set", "model.hidden=32", "--set", "model.depth=2", "--set", "train.batch_size=64",
        "--set", "eval.samples=200", "--set", "train.log_every=10",
        "--set", "train.checkpoint_every=20", "--set", "sample.nfe=9", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    assert main(["fit", "--data", "builtin:moons:n=600", "--steps", "60", "--out", str(out)]
                + TINY) == 0
    return out


def test_fit_writes_a_complete_run_directory(run_dir):
    for name in ("config.toml", "run.json", "model.safetensors", "checkpoint/state.safetensors",
                 "checkpoint/state.json", "heldout.safetensors", "metrics.jsonl", "samples.npz",
                 "report.html"):
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "complete" and info["data"]["n_heldout"] == 60
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [10, 20, 30, 40, 50, 60]
    assert not list(run_dir.rglob("*.tmp"))


def test_sample_is_per_sample_deterministic(run_dir, tmp_path):
    big, small = tmp_path / "big.npz", tmp_path / "small.npz"
    assert main(["sample", str(run_dir), "-n", "40", "--seed", "3", "--out", str(big),
                 "--quiet"]) == 0
    assert main(["sample", str(run_dir), "-n", "7", "--seed", "3", "--out", str(small),
                 "--quiet"]) == 0
    x_big, x_small = np.load(big)["x"], np.load(small)["x"]
    assert x_big.shape == (40, 2)
    np.testing.assert_allclose(x_big[:7], x_small, atol=1e-6)


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpm++2m", "ddim", "ddpm",
                                     "euler-maruyama", "dopri5"])
def test_every_sampler_runs_from_the_cli(run_dir, tmp_path, sampler):
    out = tmp_path / "s.npz"
    assert main(["sample", str(run_dir), "-n", "16", "--sampler", sampler, "--nfe", "8",
                 "--out", str(out), "--quiet"]) == 0
    data = np.load(out)
    assert np.isfinite(data["x"]).all()
    if sampler != "dopri5":
        assert abs(int(data["nfe"]) - 8) <= 1


def test_sample_with_log_q(run_dir, tmp_path):
    """A fixed-step sampler stores its samples' own density, the stochastic ones a path
    log-weight under another name, dopri5 the ODE density; each is what the library gives."""
    import torch

    from heatbath.generative.run import load_run
    from heatbath.generative.sample import sample_run
    from heatbath.samplers import SamplerSettings

    run = load_run(run_dir)
    for sampler, key in (("heun", "log_q"), ("ddpm", "log_q_path"), ("dopri5", "log_q")):
        out = tmp_path / f"{sampler}.npz"
        assert main(["sample", str(run_dir), "-n", "8", "--seed", "3", "--log-q", "--sampler",
                     sampler, "--nfe", "6", "--out", str(out), "--quiet"]) == 0
        data = np.load(out)
        assert data[key].shape == (8,) and np.isfinite(data[key]).all()
        assert ({"log_q", "log_q_path"} - {key}).isdisjoint(data.files)
        assert "log_q_stderr" not in data.files       # 2-D: exact, no error to report
        x = torch.as_tensor(data["x"])
        if sampler == "dopri5":   # round trip: the reloaded model's ODE log-likelihood of x
            assert "probability-flow ODE" in str(data["log_q_density"])
            found = run.log_likelihood(x, seed=3)
            np.testing.assert_allclose(data[key], found.log_q.numpy(), rtol=0, atol=1e-6)
            continue
        again = sample_run(run, 8, SamplerSettings(sampler, nfe=6), seed=3, with_log_q=True)
        assert torch.equal(again.x, x)
        np.testing.assert_allclose(data[key], again.log_q.numpy(), rtol=0, atol=1e-9)


def test_log_q_with_clip_is_refused_in_one_line(run_dir, tmp_path, capsys):
    out = tmp_path / "clip.npz"
    assert main(["sample", str(run_dir), "-n", "4", "--log-q", "--clip", "--out",
                 str(out)]) == 2
    assert "--clip" in capsys.readouterr().err and not out.exists()


def test_estimate_json(run_dir, capsys):
    assert main(["estimate", str(run_dir), "-n", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("nll_per_dim", "energy_distance", "sliced_wasserstein"):
        assert set(result[key]) >= {"value", "stderr", "ci95"}
    assert set(result["energy_distance"]["floor"]) >= {"value", "stderr", "ci95"}
    assert result["n"] == 50 and result["nfe"] > 0
    assert (run_dir / "estimate.json").is_file()


def test_resume_equals_uninterrupted(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    base = ["fit", "--data", "builtin:8gaussians:n=400", "--seed", "5"] + TINY
    assert main(base + ["--steps", "40", "--out", str(whole)]) == 0
    assert main(base + ["--steps", "20", "--out", str(split)]) == 0
    assert main(["fit", "--resume", "--out", str(split), "--steps", "40", "--quiet"]) == 0
    a, b = load_file(whole / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert (whole / "metrics.jsonl").read_text() != ""
    steps = lambda d: [json.loads(l)["loss"] for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert steps(whole) == steps(split)


def test_resume_counts_from_the_tensors_when_a_crash_left_an_older_json(tmp_path):
    """A crash between the checkpoint's two writes leaves the previous state.json beside the
    newer tensors: resuming must still end exactly where an uninterrupted run does."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    base = ["fit", "--data", "builtin:8gaussians:n=400", "--seed", "5"] + TINY
    assert main(base + ["--steps", "40", "--out", str(whole)]) == 0
    assert main(base + ["--steps", "20", "--out", str(split)]) == 0
    state = split / "checkpoint" / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "step": 0, "ema_updates": 0}))
    assert main(["fit", "--resume", "--out", str(split), "--steps", "40", "--quiet"]) == 0
    a, b = load_file(whole / "model.safetensors"), load_file(split / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)
    losses = lambda d: [json.loads(l)["loss"] for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert losses(whole) == losses(split)


@pytest.mark.parametrize("damage", ["tensors", "json"])
def test_a_checkpoint_without_valid_counters_is_refused_in_one_line(tmp_path, capsys, damage):
    """The step and EMA count live in the tensors (older checkpoints: in the JSON); either
    source damaged is exit 2 with one line, and the run directory is left as it was."""
    from safetensors.torch import save_file

    run = tmp_path / "run"
    assert main(["fit", "--data", "builtin:8gaussians:n=200", "--steps", "10", "--out", str(run)]
                + TINY) == 0
    tensors_path = run / "checkpoint" / "state.safetensors"
    tensors = load_file(tensors_path)
    del tensors["ema_updates"]
    if damage == "json":   # an older checkpoint: no counters in the tensors, a JSON without them
        del tensors["step"]
        (run / "checkpoint" / "state.json").write_text(json.dumps({"step": 10}))
    save_file(tensors, tensors_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["fit", "--resume", "--out", str(run), "--steps", "20", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is corrupt" in err and "ema_updates" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_image_run_reports_bits_per_dim(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["fit", "--data", "builtin:digits:n=300", "--steps", "4", "--out", str(out),
                 "--set", "model.base=8", "--set", "train.batch_size=16",
                 "--set", "eval.samples=16", "--set", "sample.nfe=3", "--set", "eval.rtol=1e-3",
                 "--set", "eval.atol=1e-3", "--quiet"]) == 0
    assert main(["estimate", str(out), "-n", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bits_per_dim"]["value"] > 0
    # Digits: 17 levels on [-1, 1], bins of width w = 2/16, so per sample
    # bits/dim = (nll/dim − ln w)/ln 2 exactly, and so are the means.
    width = 2 / 16
    expected = (result["nll_per_dim"]["value"] - math.log(width)) / math.log(2)
    assert result["bits_per_dim"]["value"] == pytest.approx(expected, rel=1e-9)
    assert main(["sample", str(out), "-n", "4", "--cond", "3", "--guidance", "1.5",
                 "--nfe", "3", "--out", str(tmp_path / "g.npz"), "--quiet"]) == 0
    assert np.load(tmp_path / "g.npz")["c"].tolist() == [3, 3, 3, 3]


def test_continuous_condition_float64_and_external_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    c = rng.uniform(-1, 1, size=(300, 1))
    x = np.concatenate([c * 2 + 0.1 * rng.normal(size=(300, 1)), rng.normal(size=(300, 1))], 1)
    np.savez(tmp_path / "prop.npz", x=x, c=c)
    out = tmp_path / "prop"
    assert main(["fit", "--data", str(tmp_path / "prop.npz"), "--steps", "5", "--out", str(out),
                 "--set", "train.dtype=float64"] + TINY) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["cond_kind"] == "continuous" and info["cond_dim"] == 1
    assert main(["sample", str(out), "-n", "6", "--cond", "0.5;-0.5", "--guidance", "1",
                 "--out", str(tmp_path / "c.npz"), "--quiet"]) == 0
    data = np.load(tmp_path / "c.npz")
    assert data["x"].dtype == np.float64 and data["c"][:, 0].tolist() == [0.5, -0.5] * 3
    np.save(tmp_path / "other.npy", x[:40])
    capsys.readouterr()
    assert main(["estimate", str(out), "--data", str(tmp_path / "other.npy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 40
    np.save(tmp_path / "wrong.npy", np.zeros((10, 3)))
    assert main(["estimate", str(out), "--data", str(tmp_path / "wrong.npy")]) == 2
    assert "shape" in capsys.readouterr().err


def test_cuda_request_without_gpu_is_a_clear_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["fit", "--data", "builtin:moons", "--device", "cuda",
                 "--out", str(tmp_path / "r")]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_report_command_rewrites_the_report(run_dir, capsys):
    assert main(["estimate", str(run_dir), "-n", "20", "--quiet"]) == 0
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64" in html and "nll_per_dim" in html
    assert main(["report", str(run_dir / "nope")]) == 2
