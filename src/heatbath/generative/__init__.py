"""The data wing: learn to reverse a noising process from samples.

config (RunConfig sections), fit (train into a run directory), run (load one back as a
`LoadedRun`), sample (draw from it), estimate (held-out likelihood and distances), plus field
(network + path = a vector field), objective (losses), train (the loop), resolve ("auto"
settings) and analytic_field (the exact Gaussian model, for tests and examples).
"""

from importlib import import_module

# name -> module: imported on first use, so `import heatbath.generative.config` stays light.
_PUBLIC = {"RunConfig": "config", "fit_data": "fit", "load_run": "run", "LoadedRun": "run",
           "sample_run": "sample", "GeneratedSamples": "sample", "estimate_data_run": "estimate",
           "Field": "field", "GaussianDataField": "analytic_field"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'heatbath.generative' has no attribute {name!r}")
    return getattr(import_module(f"heatbath.generative.{_PUBLIC[name]}"), name)
