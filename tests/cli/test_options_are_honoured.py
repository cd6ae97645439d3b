"""Options are either used or refused in one line: never silently ignored."""

import json

import numpy as np
import pytest



@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny):
    from heatbath.cli import main

    root = tmp_path_factory.mktemp("options")
    assert main(["fit", "--target", "gaussian:dim=2", "--out", str(root / "flow"),
                 *tiny.flow]) == 0
    assert main(["fit", "--data", "builtin:digits:n=120", "--out", str(root / "digits"),
                 "--set", "model.net=mlp", "--set", "sample.guidance=2", *tiny.data]) == 0
    return root


@pytest.mark.parametrize("options,fragment", [
    (["--sampler", "bogus"], "--sampler"), (["--guidance", "3"], "--guidance"),
    (["--log-q"], "--log-q"), (["--nfe", "4", "--eta", "0.5"], "--nfe, --eta"),
    (["--device", "cuda"], "--device")])
def test_energy_run_refuses_data_sampler_options(runs, options, fragment, user_error):
    user_error(["sample", runs / "flow", "-n", "4", *options], fragment)


def test_energy_fit_refuses_a_device_data_and_resume(tmp_path, user_error, tiny):
    base = ["fit", "--target", "gaussian:dim=2", "--out", tmp_path / "r", *tiny.mcmc]
    user_error(base + ["--device", "cuda"], "--device")
    user_error(base + ["--data", "builtin:moons"], "--data and --target")
    user_error(base + ["--resume"], "--resume")
    assert not (tmp_path / "r").exists()


def test_estimate_refuses_what_it_would_ignore(runs, user_error):
    user_error(["estimate", runs / "flow", "--data", "builtin:moons"], "--data")
    user_error(["estimate", runs / "flow", "-n", "100000"], "-n 100000")
    user_error(["estimate", runs / "digits", "-n", "100000"], "-n 100000")
    user_error(["estimate", runs / "digits", "--device", "cuda"], "cuda")


@pytest.mark.parametrize("options,fragment", [
    (["--sampler", "ddim", "--eta", "2"], "--eta"), (["--sampler", "ddim", "--eta", "nan"], "--eta"),
    (["--sampler", "euler-maruyama", "--churn", "-1"], "--churn"),
    (["--cond", "1", "--guidance", "nan"], "--guidance")])
def test_out_of_range_sampler_options_are_refused(runs, options, fragment, user_error):
    user_error(["sample", runs / "digits", "-n", "2", *options], fragment)


def test_sample_guidance_default_comes_from_the_run(runs, tmp_path, cli):
    paths = {}
    for label, extra in (("default", []), ("two", ["--guidance", "2"]), ("none", ["--guidance", "0"])):
        paths[label] = tmp_path / f"{label}.npz"
        code, _, err = cli(["sample", runs / "digits", "-n", "6", "--cond", "3", "--out",
                            paths[label], "--quiet", *extra])
        assert code == 0, err
    x = {label: np.load(path)["x"] for label, path in paths.items()}
    assert np.array_equal(x["default"], x["two"]) and not np.array_equal(x["default"], x["none"])


def test_log_q_says_which_density_it_is(runs, tmp_path, cli):
    out = tmp_path / "q.npz"
    code, stdout, _ = cli(["sample", runs / "digits", "-n", "3", "--log-q", "--out", out])
    assert code == 0 and "exact density of these samples" in stdout
    assert "exact density of the returned samples" in str(np.load(out)["log_q_density"])


def test_estimate_quiet_prints_nothing_but_writes(runs, cli):
    (runs / "flow" / "estimate.json").unlink()
    code, out, err = cli(["estimate", runs / "flow", "--quiet"])
    assert code == 0 and out == "" and err == ""
    assert "log_z" in json.loads((runs / "flow" / "estimate.json").read_text())


def test_an_edited_config_naming_another_method_is_refused(runs, tmp_path, user_error):
    import shutil

    run = tmp_path / "edited"
    shutil.copytree(runs / "flow", run)
    text = (run / "config.toml").read_text().replace('name = "flow"', 'name = "bogus"')
    (run / "config.toml").write_text(text)
    user_error(["sample", run, "-n", "2"], "bogus")


@pytest.mark.parametrize("kernel,flagged", [("baoab", True), ("hmc", False)])
def test_unadjusted_kernels_are_flagged(kernel, flagged, tmp_path, cli, tiny):
    assert cli(["fit", "--target", "gaussian:dim=2", "--out", tmp_path / "r", *tiny.mcmc,
                "--set", f"method.kernel={kernel}"])[0] == 0
    report = json.loads(cli(["estimate", tmp_path / "r", "--json"])[1])
    assert ("unadjusted_kernel" in report) == flagged
    assert ("unadjusted_kernel" in report["conventions"]) == flagged


@pytest.mark.parametrize("out", ["", "."])
def test_an_empty_out_is_refused(out, user_error, tiny):
    user_error(["fit", "--target", "gaussian:dim=2", "--out", out, *tiny.mcmc], "--out")
    user_error(["fit", "--data", "builtin:moons:n=100", "--out", out, *tiny.data], "--out")


def test_image_runs_report_a_frechet_distance_with_its_floor(tmp_path, cli, tiny):
    # All 1797 digits: 180 held out, so the FD² of 32 features compares halves of 90.
    code, _, err = cli(["fit", "--data", "builtin:digits", "--out", tmp_path / "d",
                        "--set", "model.net=mlp", *tiny.data, "--set", "eval.samples=200"])
    assert code == 0, err
    code, out, err = cli(["estimate", tmp_path / "d", "--json"])
    assert code == 0, err
    result = json.loads(out)
    fd = result["frechet_distance"]
    assert fd["value"] > 0 and fd["stderr"] > 0 and fd["floor"]["value"] > 0
    assert fd["features"]["data"] == "digits" and fd["features"]["held_out_accuracy"] > 0.9
    assert "squared Frechet distance" in result["conventions"]["frechet_distance"]
    # a 3-step model is far from the data: well above the data-vs-data floor
    assert fd["value"] > fd["floor"]["value"] + 3 * fd["floor"]["stderr"]
