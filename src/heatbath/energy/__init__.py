"""The energy half: learn or run a sampler for exp(−U)/Z, then estimate with error bars."""
