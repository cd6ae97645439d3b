"""The budget-aware cosine rate: torch's closed form without a budget, zero where a budget ends."""

import math

import pytest
import torch

from heatbath.core.optim import BudgetCosine


def _optimizer(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], lr=lr)


def test_without_a_budget_the_rates_are_torchs_cosine():
    ours, theirs = _optimizer(), _optimizer()
    schedule = BudgetCosine(ours, steps=40)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, 40)
    for _ in range(40):
        theirs.step()
        schedule.step()
        reference.step()
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"],
                                                           abs=1e-12)
    assert ours.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)


def test_a_budget_that_ends_first_takes_the_rate_to_zero():
    optimizer = _optimizer(0.5)
    schedule = BudgetCosine(optimizer, steps=100_000, budget=1000)
    schedule.step(spent=250)      # a quarter of the budget, a negligible share of the steps
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)) / 2)
    schedule.step(spent=1000)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)
    schedule.step(spent=1200)     # past the budget the rate stays at zero, never negative
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)


def test_steps_that_end_first_rule_when_evaluations_are_cheap():
    optimizer = _optimizer(1.0)
    schedule = BudgetCosine(optimizer, steps=4, budget=10**9)
    schedule.step(spent=10)
    schedule.step(spent=20)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
