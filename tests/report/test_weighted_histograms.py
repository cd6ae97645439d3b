"""Weighted histograms in reports: weights whose mass lies outside what is drawn (past the
bins' quantiles, or past the configurations plotted) leave that curve out, without a
division by zero."""

import warnings

import numpy as np

from heatbath.report.plots_energy import energy_histogram
from heatbath.report.plots_particles import MAX_CONFIGURATIONS, distance_histogram


def test_energy_weights_all_outside_the_bins_draw_no_reweighted_curve():
    energy = np.concatenate([np.linspace(0.0, 1.0, 2000), [50.0]])
    weights = np.zeros_like(energy)
    weights[-1] = 1.0          # all the mass on the one sample beyond the 99.9 % quantile
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert energy_histogram(energy, weights).startswith("data:image")


def test_particle_weights_past_the_plotted_configurations_are_left_out():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(MAX_CONFIGURATIONS + 5, 4, 2))
    weights = np.zeros(len(x))
    weights[-1] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert distance_histogram([("raw", x, None),
                                   ("reweighted", x, weights)]).startswith("data:image")
