"""Free-energy profiles against a reference run (`heatbath estimate RUN --reference REF_RUN`).

Where no enumeration gives the exact βF(m) and βF(U/N) (every lattice beyond ~20 sites), the
check is another run of the same target that is trusted for other reasons — typically a long
Markov-chain run (`--method mcmc`, many chains, Wolff or heat-bath sweeps). The reference's own
profiles (its estimates, with its own error bars: spread of chains, or the delta method for
weighted runs) are put beside the run's at the values both visited, with

    z(v) = (βF_run(v) − βF_ref(v)) / √(se_run(v)² + se_ref(v)²)

per value, and the largest |z| over the values both estimate with a finite error. Both
profiles are unshifted −ln P(v), so they compare directly. Values the reference never visited
get null: nothing estimates their βF there.
"""

from __future__ import annotations

import math
from pathlib import Path

from heatbath.core.errors import UserError

CONVENTION = ("free_energy_profiles.<name>.reference: the reference run's own beta*F(v) and "
              "stderr at this run's values (null where it did not visit v); reference_z: "
              "(run - reference) / sqrt(se_run^2 + se_ref^2) per value; reference_max_abs_z: "
              "the largest |z| over values both estimate with finite errors")


def _same_target(target, ref_dir: Path, reference) -> None:
    if (reference.name, reference.params) != (target.name, target.params):
        raise UserError(f"--reference {ref_dir} samples {reference.name} "
                        f"{reference.params}, not this run's {target.name} {target.params}; "
                        f"give a run of the same target")


def aligned(values: list, profile: dict) -> tuple[list, list]:
    """The profile's βF and stderr at `values` (rounded as the profiles round), None where
    it has no estimate."""
    lookup = {round(v, 9): (b, s) for v, b, s in zip(profile["values"], profile["beta_f"],
                                                     profile["stderr"])}
    found = [lookup.get(round(v, 9), (None, None)) for v in values]
    return [f[0] for f in found], [f[1] for f in found]


def compare(profile: dict, reference: dict) -> dict:
    """The run's profile with the reference's beside it and the z-scores (module doc)."""
    beta_f, stderr = aligned(profile["values"], reference)
    zs = []
    for own, own_se, ref, ref_se in zip(profile["beta_f"], profile["stderr"], beta_f, stderr):
        scale = None if ref is None else math.hypot(own_se, ref_se)
        zs.append(None if not scale or not math.isfinite(scale) else (own - ref) / scale)
    finite = [abs(z) for z in zs if z is not None]
    return {**profile, "reference": {"beta_f": beta_f, "stderr": stderr, "n": reference["n"]},
            "reference_z": zs, "reference_max_abs_z": max(finite) if finite else None}


def with_reference(report: dict, run_dir: Path, ref_dir: Path, target, seed: int = 0) -> dict:
    """`report` (estimate --json of run_dir) with every profile compared to ref_dir's."""
    from heatbath.energy.estimate import estimate_energy_run
    from heatbath.energy.run import load_energy_run

    ref_dir = Path(ref_dir)
    _, reference, _, _ = load_energy_run(ref_dir, "--reference (a run of the same target)")
    _same_target(target, ref_dir, reference)
    profiles = report.get("free_energy_profiles")
    if not profiles:
        raise UserError(f"{run_dir} has no free-energy profiles to compare (spin lattices with "
                        f"weights or >= 2 chains have them); drop --reference")
    theirs = estimate_energy_run(ref_dir, seed=seed).get("free_energy_profiles") or {}
    missing = [name for name in profiles if name not in theirs]
    if missing:
        raise UserError(f"--reference {ref_dir} has no free-energy profiles (a Markov-chain "
                        f"run needs >= 2 chains); use a weighted run or more chains")
    compared = {name: compare(profile, theirs[name]) for name, profile in profiles.items()}
    conventions = {**report.get("conventions", {}), "reference": CONVENTION}
    return {**report, "free_energy_profiles": compared, "reference_run": str(ref_dir.resolve()),
            "conventions": conventions}
