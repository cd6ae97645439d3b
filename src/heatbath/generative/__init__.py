"""The data wing: learn to reverse a noising process from samples (config, fit, sample, estimate)."""
