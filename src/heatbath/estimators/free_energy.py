"""Free-energy differences from work values: EXP (Zwanzig) and BAR (Bennett), reduced units.

Work values are dimensionless (in kT): for x ~ state 0, w_F = u₁(x) − u₀(x); for x ~ state 1,
w_R = u₀(x) − u₁(x). Both estimators return ΔF = f₁ − f₀ with f = −ln Z.

The numbers reproduce pymbar 4 (`pymbar.other_estimators.exp` and `.bar` with its default
"BAR" uncertainty) to rounding, so results can be compared with the literature that uses it;
pymbar itself is not needed. MBAR lives in `heatbath.estimators.mbar`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate
from heatbath.estimators._inputs import normalised_exp, vector
from heatbath.estimators.importance import log_mean_stderr
from heatbath.estimators.mbar import MBARResult, mbar

__all__ = ["exp_estimator", "bar", "mbar", "MBARResult"]

_MAX_BRACKET_WIDENINGS = 200
_RTOL = 4.0 * np.finfo(np.float64).eps  # the tightest relative tolerance brentq accepts


def exp_estimator(w_F) -> Estimate:
    """Zwanzig exponential averaging: ΔF = −ln (1/T) Σ exp(−w_F).

    stderr = sd(x) / (√T · mean(x)) with x = exp(−w_F) and the population sd (ddof=0), as in
    pymbar's `exp`. Biased and high-variance when the work distribution is wide; prefer BAR
    when reverse work values exist.
    """
    w = vector(w_F, "w_F", min_length=2)
    value = -float(logsumexp(-w) - math.log(w.size))
    stderr = log_mean_stderr([normalised_exp(-w)], [1.0], ddof=0)
    return Estimate(value, stderr, w.size)


def bar(w_F, w_R) -> Estimate:
    """Bennett acceptance ratio ΔF from forward and reverse work values.

    Solves the BAR self-consistency condition (Shirts, Bair, Hooker & Pande, PRL 91, 140601,
    2003) for ΔF with Brent's bracketing root finder; the bracket starts at the two EXP estimates
    and is widened until the monotone condition changes sign. stderr: Bennett's asymptotic
    variance (1976, Eq. 10a, corrected), pymbar's default "BAR" uncertainty:

        Var = ⟨f_F²⟩/(T_F⟨f_F⟩²) + ⟨f_R²⟩/(T_R⟨f_R⟩²) − 1/T_F − 1/T_R,
        f_F = 1/(1 + exp(w_F + M − ΔF)),  f_R = 1/(1 + exp(w_R − M + ΔF)),  M = ln(T_F/T_R).
    """
    wf = vector(w_F, "w_F", min_length=2)
    wr = vector(w_R, "w_R", min_length=2)
    lo, hi = _bracket(wf, wr)
    value = brentq(lambda df: _bar_condition(wf, wr, df), lo, hi, xtol=1e-15, rtol=_RTOL,
                   maxiter=500)
    return Estimate(float(value), _bar_stderr(wf, wr, value), wf.size + wr.size,
                    extra={"n_forward": int(wf.size), "n_reverse": int(wr.size)})


def _bar_condition(wf: np.ndarray, wr: np.ndarray, delta_f: float) -> float:
    """ln Σ_F f(M + w_F − ΔF) − ln Σ_R f(ΔF − M + w_R) with f(x) = 1/(1 + eˣ); zero at the BAR ΔF.

    Increasing in ΔF, so a sign change brackets the unique root. log f(x) = −log(1 + eˣ) is
    evaluated with logaddexp, which never overflows.
    """
    m = math.log(wf.size / wr.size)
    log_numerator = logsumexp(-np.logaddexp(0.0, m + wf - delta_f))
    log_denominator = logsumexp(-np.logaddexp(0.0, wr - m + delta_f))
    return float(log_numerator - log_denominator)


def _bracket(wf: np.ndarray, wr: np.ndarray) -> tuple[float, float]:
    """[lo, hi] with the BAR condition negative at lo and positive at hi."""
    upper = -float(logsumexp(-wf) - math.log(wf.size))      # EXP forward estimate
    lower = float(logsumexp(-wr) - math.log(wr.size))       # −(EXP reverse estimate)
    lo, hi = min(lower, upper), max(lower, upper)
    width = max(hi - lo, 0.1)
    for _ in range(_MAX_BRACKET_WIDENINGS):
        below, above = _bar_condition(wf, wr, lo), _bar_condition(wf, wr, hi)
        if below <= 0.0 <= above:
            return lo, hi
        if below > 0.0:
            lo -= width
        if above < 0.0:
            hi += width
        width *= 2.0
    raise UserError("BAR could not bracket ΔF: the forward and reverse work values are "
                    "inconsistent (check their signs: w_F = u1 - u0 on state-0 samples, "
                    "w_R = u0 - u1 on state-1 samples)")


def _bar_stderr(wf: np.ndarray, wr: np.ndarray, delta_f: float) -> float:
    """Bennett's asymptotic stderr; each ⟨f²⟩/⟨f⟩² is a ratio of log-sum-exps, so it is stable."""
    m = math.log(wf.size / wr.size)
    log_f_forward = -np.logaddexp(0.0, wf + m - delta_f)
    log_f_reverse = -np.logaddexp(0.0, wr - m + delta_f)
    variance = (_relative_second_moment(log_f_forward) / wf.size
                + _relative_second_moment(log_f_reverse) / wr.size
                - 1.0 / wf.size - 1.0 / wr.size)
    return math.sqrt(max(variance, 0.0))


def _relative_second_moment(log_f: np.ndarray) -> float:
    """⟨f²⟩ / ⟨f⟩² from log f."""
    n = log_f.size
    return math.exp(logsumexp(2.0 * log_f) - 2.0 * logsumexp(log_f) + math.log(n))
