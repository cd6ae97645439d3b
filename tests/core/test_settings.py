"""Declarative bounds: every bounded setting of both wings refuses out-of-range values."""

import dataclasses
import math

import pytest

from heatbath.core.errors import UserError
from heatbath.core.settings import (Bounds, apply_overrides, bounds_of, check_all_bounds,
                                    set_value)
from heatbath.energy.config import EnergyRunConfig
from heatbath.generative.config import RunConfig

CONFIGS = (RunConfig, EnergyRunConfig)


def every_setting():
    """(config factory, 'section.key', default value, declared-or-implied bounds) for every
    setting of both wings."""
    for factory in CONFIGS:
        config = factory()
        for section_field in dataclasses.fields(config):
            section = getattr(config, section_field.name)
            for f in dataclasses.fields(section):
                yield (factory, f"{section_field.name}.{f.name}", getattr(section, f.name),
                       bounds_of(section, f.name))


CASES = [(factory, key, value) for factory, key, _, bounds in every_setting()
         if bounds is not None for value in bounds.outside()]


def test_every_integer_setting_declares_bounds_except_seeds():
    """A new integer setting without bounds fails here (floats default to 'finite')."""
    unbounded = {key for _, key, default, bounds in every_setting()
                 if isinstance(default, int) and not isinstance(default, bool) and bounds is None}
    assert unbounded == {"train.seed", "method.seed"}


@pytest.mark.parametrize("factory", CONFIGS)
def test_defaults_are_inside_their_bounds(factory):
    check_all_bounds(factory())


@pytest.mark.parametrize("factory,key,value", CASES, ids=[f"{k}={v}" for _, k, v in CASES])
def test_out_of_range_value_is_refused_naming_the_setting(factory, key, value):
    config = factory()
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        set_value(config, key, [value] if isinstance(getattr_key(config, key), list) else value)
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        apply_overrides(config, [f"{key}={value}"])


def getattr_key(config, key):
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def test_settings_built_in_python_are_checked_too():
    config = RunConfig()
    config.train.grad_clip = -1.0
    with pytest.raises(UserError, match="train.grad_clip must be > 0"):
        check_all_bounds(config)


def test_bounds_describe_their_interval():
    assert Bounds(0, 1, high_open=True).describe() == "in [0, 1)"
    assert Bounds(low=1).describe() == ">= 1"
    assert not Bounds().contains(math.nan)
    assert not Bounds(0, 1).contains(True)   # a bool is not a number here


def test_non_numeric_list_items_are_refused():
    with pytest.raises(UserError, match="model.mults"):
        apply_overrides(RunConfig(), ["model.mults=[1,x]"])
    config = RunConfig()
    apply_overrides(config, ["model.mults=[1,2,4]"])
    assert config.model.mults == [1, 2, 4]
