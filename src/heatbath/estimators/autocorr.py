"""Integrated autocorrelation time and the MCMC effective sample size.

τ_int = 1 + 2 Σ_{t≥1} ρ(t), summed up to Sokal's automatic window: the smallest W with
W ≥ c·τ_int(W), c = 5. The autocorrelation is averaged over independent chains (FFT per chain).
ESS = n_total / τ_int, reported as a fraction of the number of draws.
"""

from __future__ import annotations

import numpy as np

from heatbath.core.estimate import Estimate


def autocorrelation(traces: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation ρ(t), averaged over chains; traces is (chains, steps)."""
    traces = np.asarray(traces, dtype=np.float64)
    steps = traces.shape[1]
    centred = traces - traces.mean(axis=1, keepdims=True)
    size = 1 << (2 * steps - 1).bit_length()
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :steps].mean(axis=0)
    if acov[0] <= 0:
        return np.ones(1)
    return acov / acov[0]


def sokal_window(traces: np.ndarray, c: float = 5.0) -> tuple[float, int]:
    """(τ_int, W): τ_int(W) = 1 + 2 Σ_{1≤t≤W} ρ(t) at the smallest W ≥ c·τ_int(W)."""
    rho = autocorrelation(traces)
    taus = 2.0 * np.cumsum(rho) - 1.0
    window = np.arange(len(taus))
    ok = window >= c * taus
    index = int(np.argmax(ok)) if ok.any() else len(taus) - 1
    return float(max(taus[index], 1.0)), index


def integrated_time(traces: np.ndarray, c: float = 5.0) -> float:
    return sokal_window(traces, c)[0]


def integrated_time_stderr(traces: np.ndarray, c: float = 5.0) -> tuple[float, float]:
    """(τ_int, its standard error) by Madras & Sokal (1988): Var τ ≈ 2(2W + 1)τ²/n, n = chains ×
    steps (averaging ρ over independent chains divides one chain's variance by their number)."""
    traces = np.asarray(traces, dtype=np.float64)
    tau, window = sokal_window(traces, c)
    return tau, tau * float(np.sqrt(2.0 * (2 * window + 1) / traces.size))


def mcmc_ess(traces: np.ndarray) -> Estimate:
    """ESS fraction 1/τ_int of a (chains, steps) trace; the stderr from the spread of per-chain
    τ estimates (a rough but honest measure of how well τ is determined)."""
    traces = np.asarray(traces, dtype=np.float64)
    tau = integrated_time(traces)
    per_chain = np.array([integrated_time(t[None]) for t in traces]) if len(traces) > 1 else None
    n = traces.size
    if per_chain is None:
        return Estimate(1.0 / tau, 0.0, n, extra={"tau_int": tau})
    fractions = 1.0 / per_chain
    stderr = float(fractions.std(ddof=1) / np.sqrt(len(fractions)))
    value = 1.0 / tau
    ci = (max(0.0, value - 1.96 * stderr), min(1.0, value + 1.96 * stderr))
    return Estimate(value, stderr, n, ci95=ci, extra={"tau_int": tau})


def chain_mean_estimate(traces: np.ndarray) -> Estimate:
    """Mean of an observable over independent chains; stderr from the spread of chain means."""
    traces = np.asarray(traces, dtype=np.float64)
    means = traces.mean(axis=1)
    stderr = float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("inf")
    return Estimate(float(means.mean()), stderr, traces.size)
