"""Every registered path builds, resolves its defaults from the registry, and samples."""

import pytest
import torch

from heatbath.generative.analytic_field import GaussianDataField
from heatbath.generative.config import RunConfig
from heatbath.generative.resolve import make_path, resolve_config
from heatbath.paths import PATHS, PREDICTIONS, build_path
from heatbath.samplers import SamplerSettings, draw_samples
from heatbath.samplers.grids import GRIDS


# Discrete paths (masked) have no schedule or noise: tests/generative/test_lattice_masked.py
@pytest.mark.parametrize("name", sorted(n for n, k in PATHS.items() if not k.discrete))
def test_registry_defaults_are_valid_choices(name):
    kind = PATHS[name]
    assert kind.prediction in PREDICTIONS and kind.grid in GRIDS
    config = RunConfig()
    config.path.name = name
    resolve_config(config, (2,), "vector")
    assert (config.path.prediction, config.path.time_sampling, config.sample.grid) == \
        (kind.prediction, kind.time_sampling, kind.grid)
    path = make_path(config, 1.0, None)
    if kind.process is not None:
        assert path.is_phase_space and path.process.name == kind.process
    else:
        assert path.schedule.name == kind.schedule
    assert path.noise.is_gaussian == (kind.noise == "gaussian")


@pytest.mark.parametrize("name", sorted(n for n, k in PATHS.items()
                                        if k.noise == "gaussian" and k.process is None))
def test_exact_field_sampled_on_every_gaussian_path_is_finite(name):
    mean, cov = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    field = GaussianDataField(build_path(name), mean, cov)
    x = draw_samples(field, 64, (2,), SamplerSettings("heun", nfe=9), dtype=torch.float64).x
    assert torch.isfinite(x).all()


def test_unknown_path_lists_the_registry():
    with pytest.raises(ValueError) as info:
        build_path("bogus")
    assert all(name in str(info.value) for name in PATHS)
