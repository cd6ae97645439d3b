"""The foundation both wings stand on: errors, Estimate, RNG, specs, settings, run directories."""
