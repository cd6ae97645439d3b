"""Every Python snippet of the README runs, in order, in a fresh working directory; and the
README names every entry of every registry."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def test_there_are_snippets_for_both_halves():
    joined = "\n".join(SNIPPETS)
    assert "sample_energy" in joined and "draw_samples" in joined and "fit_data" in joined


def test_every_python_snippet_runs(tmp_path, monkeypatch):
    import torch

    torch.manual_seed(0)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for index, code in enumerate(SNIPPETS):
        exec(compile(code, f"README.md python snippet {index + 1}", "exec"), namespace)
    # The snippets' own claims, checked against exact answers.
    assert abs(namespace["z"]) < 4                                   # AIS log Z vs Kaufman
    assert abs(namespace["delta_f"].z_score(0.0)) < 4               # BAR on ΔF = 0
    walk_log_z, system = namespace["walk_log_z"], namespace["system"]
    assert abs(walk_log_z.z_score(system.log_z(1.0))) < 4             # exact path weights
    assert namespace["walk_ess"] > 0.95                               # the closed-form drift
    radius = namespace["radius"]
    assert abs(radius.value - 2.0) < 0.05 and radius.stderr > 0      # the ring's radius


@pytest.mark.parametrize("registry", ["samplers", "methods", "paths", "nets", "targets"])
def test_the_readme_names_every_registered_entry(registry):
    from heatbath.energy.methods import METHODS
    from heatbath.nets import NETS
    from heatbath.paths import PATHS
    from heatbath.samplers import SAMPLERS
    from heatbath.targets.registry import TARGETS

    names = {"samplers": SAMPLERS, "methods": METHODS, "paths": PATHS, "nets": NETS,
             "targets": TARGETS}[registry]
    missing = [name for name in names if f"`{name}" not in TEXT]
    assert not missing, f"README does not document {registry}: {missing}"
