"""report.html from fake run directories: sections, embedded plots, table numbers, z flags,
robustness to missing and corrupt optional files, and atomic writing."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
from safetensors.numpy import save_file

from heatbath.cli import main
from heatbath.core.errors import UserError
from heatbath.core.records import DataRunRecord, DataSummary, EnergyRunRecord, write_record
from heatbath.report import write_report
from heatbath.report.plots_data import _density, histogram_bins

PNG = "data:image/png;base64"
VOID = {"meta", "img", "br", "hr", "link", "input"}


# ----------------------------------------------------------------------------- helpers

class _TagChecker(HTMLParser):
    """Fails on a closing tag that does not match the innermost open one."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def read_valid_html(run_dir) -> str:
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    checker = _TagChecker()
    checker.feed(text)
    assert not checker.errors and not checker.stack
    assert "<script" not in text.lower() and "http://" not in text and "https://" not in text
    leftovers = [p.name for p in run_dir.iterdir() if p.name != "report.html"
                 and (p.suffix == ".tmp" or p.name.startswith(".report"))]
    assert leftovers == []
    return text


def headings(text: str) -> list[str]:
    return [chunk.split("</h2>")[0] for chunk in text.split("<h2>")[1:]]


def write_json(path, obj):
    path.write_text(json.dumps(obj))


def write_metrics(run_dir, records, extra_lines=()):
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def estimate_entry(value, stderr):
    return {"value": value, "stderr": stderr, "ci95": [value - 1.96 * stderr,
                                                       value + 1.96 * stderr]}


def data_run(tmp_path, event_shape, kind="vector", n=2000):
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    run.mkdir()
    dim = int(np.prod(event_shape))
    write_record(run / "run.json", DataRunRecord(
        name="moons-fm", status="complete", step=400, event_shape=list(event_shape),
        data=DataSummary(name="moons", source="builtin:moons", kind=kind, n_train=1600,
                         n_heldout=400, sigma_data=1.0, mean=[0.0] * dim),
        net={"kind": "mlp", "event_shape": list(event_shape)},
        path={"name": "linear", "prediction": "velocity"}))
    (run / "config.toml").write_text('[train]\nsteps = 400\nlr = 0.002\n# note <b>\n')
    write_metrics(run, [{"step": s, "loss": 1.0 / s, "lr": 0.002, "elapsed": 0.1 * s}
                        for s in range(50, 401, 50)])
    x = rng.uniform(-1, 1, size=(n, *event_shape)).astype(np.float32)
    np.savez(run / "samples.npz", x=x)
    save_file({"x": x[:400] * 0.9}, str(run / "heldout.safetensors"))
    write_json(run / "estimate.json", {
        "nll_per_dim": estimate_entry(1.2345, 0.0211), "bits_per_dim": estimate_entry(1.781, 0.03),
        "energy_distance": {**estimate_entry(0.0312, 0.004), "floor": estimate_entry(0.0105, 0.002)},
        "sliced_wasserstein": {**estimate_entry(0.0577, 0.006), "floor": estimate_entry(0.02, 0.003)},
        "nfe": 64, "n": 400, "sampler": "heun"})
    return run


def energy_run(tmp_path, *, name, event_shape, discrete, log_z_value, x, extra_arrays=None):
    rng = np.random.default_rng(1)
    n = len(x)
    run = tmp_path / "run"
    run.mkdir()
    exact = {"log_z": 2.5, "energy": 1.0}
    write_record(run / "run.json", EnergyRunRecord(
        name=f"{name}-run", status="training", step=120, event_shape=list(event_shape),
        method="fm-is", kernel="hmc",
        target={"name": name, "spec": name, "event_shape": event_shape, "discrete": discrete,
                "convention": "reduced energy U = beta*H", "exact": exact}))
    write_metrics(run, [{"step": s, "loss": 3.0 / s, "ess": 0.01 * s, "elapsed": s}
                        for s in range(10, 121, 10)])
    arrays = {"x": x, "log_w": rng.normal(0, 1, n), "energy": rng.normal(1, 1, n)}
    np.savez(run / "samples.npz", **arrays, **(extra_arrays or {}))
    write_json(run / "estimate.json", {
        "log_z": estimate_entry(log_z_value, 0.1), "energy": estimate_entry(1.05, 0.1),
        "ess": estimate_entry(0.42, 0.01), "exact": exact, "energy_evals": 12345, "n": n,
        "tail": {"k_hat": 0.31, "reliable": True, "message": "weights look fine"}})
    return run


# ----------------------------------------------------------------------------- data runs

def test_two_d_data_run(tmp_path):
    run = data_run(tmp_path, [2])
    text = read_valid_html(run)
    assert headings(text) == ["Estimates", "Training curves", "Samples beside data",
                              "Density images", "Configuration"]
    assert text.count(PNG) == 3                 # curves, scatter, 2-D histograms
    assert "2-D histograms (" in text and "first two coordinates" not in text
    for number in ("1.2345", "0.0211", "0.0312", "0.0105", "0.0577", "64", "heun"):
        assert f"<td>{number}" in text
    assert "moons-fm" in text and "step: 400" in text and "complete" in text
    assert "# note &lt;b&gt;" in text          # config verbatim, escaped
    assert 'class="zflag"' not in text


def test_image_data_run(tmp_path):
    run = data_run(tmp_path, [1, 8, 8], kind="image", n=200)
    text = read_valid_html(run)
    assert "Samples beside data" in headings(text)
    assert "Density images" not in headings(text)      # the grids are the images' density view
    assert "held-out data: grid of 64 images" in text and "samples: grid of 64 images" in text
    assert text.count(PNG) == 3                 # curves, data grid, sample grid


def test_high_dim_vector_run_has_scatter_marginals_and_histograms(tmp_path):
    run = data_run(tmp_path, [5], n=300)
    text = read_valid_html(run)
    assert text.count(PNG) == 4
    assert "marginals of the first 5 coordinate(s)" in text
    assert "Density images" in headings(text)
    assert "2-D histograms (" in text
    assert text.count("held-out data beside samples (first two coordinates)</figcaption>") == 2


def test_density_image_is_a_normalised_histogram():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1, size=(4000, 2))
    edges = [np.linspace(0, 1, 11)] * 2
    density = _density(xy, edges)
    assert abs(density.sum() * 0.1 * 0.1 - 1.0) < 1e-12      # every point is inside the box
    # Uniform on the unit square: density 1 everywhere; a bin's count is Binomial(n, 1/100),
    # so its density has standard error sqrt(100 (1 - 1/100) / n) ≈ 0.157.
    assert np.abs(density - 1.0).max() < 5 * np.sqrt(100 * 0.99 / 4000)
    assert (histogram_bins(2000), histogram_bins(10), histogram_bins(10**6)) == (32, 10, 80)


TINY_FIT = ["--steps", "20", "--set", "train.checkpoint_every=20", "--set", "eval.samples=200",
            "--set", "model.hidden=32", "--set", "model.depth=1", "--quiet"]


def test_report_of_a_real_two_d_run_has_density_images(tmp_path):
    run = tmp_path / "checkerboard"
    assert main(["fit", "--data", "builtin:checkerboard:n=500", "--out", str(run)]
                + TINY_FIT) == 0
    text = read_valid_html(run)
    assert "Density images" in headings(text)
    # 200 samples beside 50 held-out points: bins chosen for the smaller set.
    assert (f"2-D histograms ({histogram_bins(50)}x{histogram_bins(50)} bins, shared colour "
            "scale): held-out data beside samples</figcaption>") in text
    density = text.split("<h2>Density images</h2>")[1].split("</section>")[0]
    assert density.count(PNG) == 1


def test_report_of_a_real_image_run_has_sample_and_data_grids(tmp_path):
    run = tmp_path / "digits"
    assert main(["fit", "--data", "builtin:digits", "--set", "model.net=mlp", "--out", str(run)]
                + TINY_FIT) == 0
    text = read_valid_html(run)
    grids = text.split("<h2>Samples beside data</h2>")[1].split("</section>")[0]
    assert grids.count(PNG) == 2
    # 1797 images hold out 180, so both grids are full 8 x 8 grids.
    assert "held-out data: grid of 64 images" in grids and "samples: grid of 64 images" in grids


# ----------------------------------------------------------------------------- energy runs

@pytest.mark.parametrize("log_z_value, flagged", [(2.62, False), (3.1, True)])
def test_continuous_energy_run_z_flag(tmp_path, log_z_value, flagged):
    x = np.random.default_rng(2).normal(size=(500, 2))
    run = energy_run(tmp_path, name="gmm", event_shape=[2], discrete=False,
                     log_z_value=log_z_value, x=x)
    text = read_valid_html(run)
    assert headings(text) == ["Estimates", "Training curves", "Energies and weights",
                              "Estimates vs exact"]
    assert text.count(PNG) == 4
    assert f"<td>{log_z_value:g}</td>" in text and "<td>2.5</td>" in text
    assert ('class="zflag"' in text) is flagged
    assert "k̂ = 0.31 (reliable)" in text


def test_ising_energy_run_shows_spins(tmp_path):
    spins = np.where(np.random.default_rng(3).random((300, 4, 4)) < 0.5, -1.0, 1.0)
    run = energy_run(tmp_path, name="ising", event_shape=[4, 4], discrete=True,
                     log_z_value=2.55, x=spins)
    text = read_valid_html(run)
    assert "Spin configurations" in headings(text)
    assert text.count(PNG) == 5
    assert "discrete" in text


def test_weighted_ising_run_draws_free_energy_profiles(tmp_path):
    """The profiles come from estimate.json (written by `heatbath estimate`): a figure with
    the exact curve where it has one, none without the key."""
    spins = np.where(np.random.default_rng(4).random((300, 4, 4)) < 0.5, -1.0, 1.0)
    run = energy_run(tmp_path, name="ising", event_shape=[4, 4], discrete=True,
                     log_z_value=2.55, x=spins)
    estimate = json.loads((run / "estimate.json").read_text())
    profile = {"values": [-1.0, 0.0, 1.0], "beta_f": [2.0, 1.0, 2.0], "stderr": [0.1] * 3,
               "n": 300}
    estimate["free_energy_profiles"] = {"m": {**profile, "exact": [2.1, 0.9, None]},
                                        "energy_per_site": profile}
    write_json(run / "estimate.json", estimate)
    text = read_valid_html(run)
    assert "Free-energy profiles" in headings(text)
    assert text.count(PNG) == 6


def test_aldp_ramachandran(tmp_path):
    rng = np.random.default_rng(4)
    angles = {"phi": rng.uniform(-np.pi, np.pi, 400), "psi": rng.uniform(-np.pi, np.pi, 400)}
    run = energy_run(tmp_path, name="aldp", event_shape=[22, 3], discrete=False,
                     log_z_value=2.5, x=rng.normal(size=(400, 22, 3)), extra_arrays=angles)
    text = read_valid_html(run)
    assert "Ramachandran plot" in headings(text)
    assert "Spin configurations" not in headings(text)


# ----------------------------------------------------------------------------- robustness

def test_only_run_json(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_record(run / "run.json", EnergyRunRecord(
        name="<b>bare</b>", status="training", step=0, event_shape=[2], method="mcmc",
        kernel="hmc", target={"spec": "gaussian:dim=2"}))
    text = read_valid_html(run)
    assert headings(text) == []
    assert text.count(PNG) == 0
    assert "&lt;b&gt;bare&lt;/b&gt;" in text and "<b>bare" not in text
    assert "could not" not in text


def test_corrupt_optional_files_are_noted_not_fatal(tmp_path):
    run = data_run(tmp_path, [2], n=300)
    write_metrics(run, [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4}],
                  extra_lines=["{not json", '{"step": 3, "lo'])
    (run / "samples.npz").write_bytes(b"this is not a zip archive")
    (run / "estimate.json").write_text("{")
    text = read_valid_html(run)
    assert "could not read metrics.jsonl" in text
    assert "could not read samples.npz" in text
    assert "could not read estimate.json" in text
    assert headings(text)[0] == "Notes"
    assert "Training curves" in headings(text)         # the good metric lines still plot
    assert "Samples beside data" in headings(text)     # held-out data alone is still shown
    assert "Density images" in headings(text)
    assert text.count(PNG) == 3


def test_missing_run_json_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_rewrite_replaces_existing_report(tmp_path):
    run = data_run(tmp_path, [2], n=200)
    stale = "<!DOCTYPE html><html><body>stale report 7f3a</body></html>\n"
    (run / "report.html").write_text(stale)
    text = read_valid_html(run)
    assert "stale report 7f3a" not in text
    # It is the freshly generated report: the same as one written where none existed before.
    (run / "report.html").unlink()
    assert read_valid_html(run) == text


def test_spin_grids_draw_ising_and_potts_configurations():
    from heatbath.report import plots_energy

    ising = np.where(np.random.default_rng(0).random((4, 5, 5)) < 0.5, -1.0, 1.0)
    potts = np.random.default_rng(1).integers(0, 3, (4, 5, 5)).astype(float)
    for lattice in (ising, potts):
        assert plots_energy.is_spin_lattice(lattice)
        assert plots_energy.spin_grid(lattice).startswith("data:image/png;base64,")
    assert not plots_energy.is_spin_lattice(potts + 0.5)
    assert not plots_energy.is_spin_lattice(potts - 1.0)


def test_the_headline_names_a_bound_as_a_bound():
    from heatbath.report.summary import _headline

    bound = {"bits_bound_per_dim": {"value": 0.99, "stderr": 0.01}}
    assert "upper bound on held-out bits/dim" in _headline({}, bound)
    exact = {"bits_per_dim": {"value": 0.8, "stderr": 0.01}, **bound}
    assert _headline({}, exact).startswith("Estimated held-out bits/dim")
