"""`heatbath demo`: its configuration path end to end on a few steps, and its headline line.

The full demo (minutes) is not run here; `demo_config(steps=...)` takes the same code path.
"""

from __future__ import annotations

import json
import re

from heatbath.datasets.toys import checkerboard_entropy_per_dim
from heatbath.generative.demo import DEMO_SOURCE, demo_config, nll_line, run_demo

NLL_LINE = re.compile(r"^held-out NLL/dim (\d+\.\d{3}) ± (\d+\.\d{3}) nats "
                      r"\(± 1 s\.e\.; exact entropy ln 32 / 2 = 1\.733\)$", re.MULTILINE)


def test_nll_line_puts_the_estimate_beside_the_exact_entropy():
    line = nll_line({"nll_per_dim": {"value": 1.75049, "stderr": 0.0213}})
    assert line == "held-out NLL/dim 1.750 ± 0.021 nats (± 1 s.e.; exact entropy ln 32 / 2 = 1.733)"


def test_demo_config_path_runs_end_to_end(tmp_path, capsys):
    config = demo_config(steps=30)
    assert config.data.source == DEMO_SOURCE and config.train.steps == 30
    config.eval.likelihood_max, config.eval.samples = 100, 500   # scoring is most of the cost
    run_dir = run_demo(tmp_path / "demo", quiet=False, config=config)
    out = capsys.readouterr().out
    match = NLL_LINE.search(out)
    assert match, out
    result = json.loads((run_dir / "estimate.json").read_text())
    nll = result["nll_per_dim"]
    assert float(match.group(1)) == round(nll["value"], 3)
    assert float(match.group(2)) == round(nll["stderr"], 3)
    assert result["n"] == config.eval.likelihood_max
    # A model's expected held-out NLL is a cross-entropy, never below the data's entropy: a value
    # more than 4 standard errors under it would mean a broken likelihood.
    assert nll["value"] > checkerboard_entropy_per_dim() - 4 * nll["stderr"]
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<h2>Density images</h2>" in report and "<h2>Estimates</h2>" in report
    assert f"report: {run_dir / 'report.html'}" in out


def test_demo_falls_back_to_independent_coupling_without_pot(monkeypatch):
    from heatbath.generative import demo

    monkeypatch.setattr(demo, "ot_available", lambda: False)
    assert demo.demo_config().train.coupling == "independent"
    monkeypatch.setattr(demo, "ot_available", lambda: True)
    assert demo.demo_config().train.coupling == "ot"
