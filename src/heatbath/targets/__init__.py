"""Targets: what a model learns. Data sets (samples) and energies (Boltzmann densities)."""
