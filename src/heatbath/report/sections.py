"""The sections of report.html, each built from whichever files of the run were readable.

A section whose inputs are missing is left out. Plotting runs inside `guarded`, so odd data
(wrong shapes, NaNs everywhere) becomes a "could not plot" note instead of a crash.
"""

from __future__ import annotations

import numpy as np

from heatbath.report import html, plots_data, plots_energy, plots_particles
from heatbath.report.figures import training_curves
from heatbath.report.io import RunFiles, normalised_weights
from heatbath.report.summary import header
from heatbath.report.table import compared, estimates_table, exact_values


def guarded(files: RunFiles, what: str, build) -> str:
    """build() or "" plus a note, so one failing plot cannot take the whole report down."""
    try:
        return build() or ""
    except Exception as exc:  # noqa: BLE001 - any plotting failure is reported, not raised
        files.notes.append(f"could not plot {what}: {exc}")
        return ""


def all_sections(files: RunFiles) -> list[str]:
    """The report body in order; the notes section is built last, after every note is known."""
    body = [header(files.info, files.estimate),
            guarded(files, "estimates", lambda: estimates_section(files)),
            guarded(files, "training curves", lambda: curves_section(files))]
    if files.info.get("kind") == "data":
        body.append(guarded(files, "samples beside data", lambda: data_section(files)))
        body.append(guarded(files, "density images", lambda: density_section(files)))
        body.append(guarded(files, "particles", lambda: data_particles_section(files)))
    else:
        body += energy_sections(files)
    if files.config_text is not None:
        body.append(html.section("Configuration", html.preformatted(files.config_text)))
    if files.notes:
        body.insert(1, html.section("Notes", html.bullet_list(files.notes, "notes")))
    return [part for part in body if part]


def estimates_section(files: RunFiles) -> str:
    if files.estimate is None:
        return ""
    exact = exact_values(files.estimate, files.info)
    return html.section("Estimates", estimates_table(files.estimate, exact))


def curves_section(files: RunFiles) -> str:
    uri = training_curves(files.metrics) if files.metrics else None
    return html.section("Training curves", html.figure(uri, "metrics against step")) if uri else ""


def _data_arrays(files: RunFiles):
    """(samples, held-out data) of a data run, None where the file is missing or unreadable."""
    return (files.samples or {}).get("x"), (files.heldout or {}).get("x")


def data_section(files: RunFiles) -> str:
    if plots_particles.is_particles(_data_arrays(files)[0]):
        return ""   # particle runs have their own section (pair distances, configurations)
    figures = plots_data.samples_beside_data(*_data_arrays(files))
    if not figures:
        return ""
    return html.section("Samples beside data", *(html.figure(u, c) for c, u in figures))


def density_section(files: RunFiles) -> str:
    """2-D histograms of vector runs; image runs show their density as the image grids."""
    if plots_particles.is_particles(_data_arrays(files)[0]):
        return ""
    figures = plots_data.density_images(*_data_arrays(files))
    if not figures:
        return ""
    return html.section("Density images", *(html.figure(u, c) for c, u in figures))


def energy_sections(files: RunFiles) -> list[str]:
    arrays = files.samples or {}
    try:
        weights = _weights(arrays)
    except Exception as exc:  # noqa: BLE001 - unusable weights: plot unweighted, say so
        files.notes.append(f"could not use the log weights of samples.npz: {exc}")
        weights = None
    return [guarded(files, "energies and weights", lambda: _weights_section(arrays, weights)),
            guarded(files, "estimates vs exact", lambda: _exact_section(files)),
            guarded(files, "spin configurations", lambda: _spins_section(arrays)),
            guarded(files, "free-energy profiles", lambda: _profiles_section(files)),
            guarded(files, "particles", lambda: _energy_particles_section(arrays, weights)),
            guarded(files, "Ramachandran plot", lambda: _ramachandran_section(files, weights))]


def _weights(arrays: dict) -> np.ndarray | None:
    log_w = arrays.get("log_w")
    n = len(arrays["energy"]) if np.ndim(arrays.get("energy")) >= 1 else np.size(log_w)
    return normalised_weights(log_w, n)


def _weights_section(arrays: dict, weights) -> str:
    parts = []
    if np.ndim(arrays.get("energy")) >= 1:
        uri = plots_energy.energy_histogram(arrays["energy"], weights,
                                            arrays.get("reference_energy"))
        parts.append(html.figure(uri, "energies: raw and reweighted") if uri else "")
    if weights is not None:
        parts.append(html.figure(plots_energy.log_weight_histogram(weights),
                                 "normalised log importance weights"))
    parts = [p for p in parts if p]
    return html.section("Energies and weights", *parts) if parts else ""


def _exact_section(files: RunFiles) -> str:
    if files.estimate is None:
        return ""
    rows = compared(files.estimate, exact_values(files.estimate, files.info))
    uri = plots_energy.estimates_vs_exact(rows)
    caption = "estimates with 95 % error bars; exact values in red"
    return html.section("Estimates vs exact", html.figure(uri, caption)) if uri else ""


def data_particles_section(files: RunFiles) -> str:
    samples, heldout = _data_arrays(files)
    if not plots_particles.is_particles(samples):
        return ""
    series = [("samples", samples, None)]
    if plots_particles.is_particles(heldout):
        series.append(("held-out data", heldout, None))
    parts = [html.figure(plots_particles.distance_histogram(series),
                         "pair distances of samples and held-out data"),
             html.figure(plots_particles.configuration_views(samples, "sample"),
                         "sampled configurations")]
    if plots_particles.is_particles(heldout):
        parts.append(html.figure(plots_particles.configuration_views(heldout, "data"),
                                 "held-out configurations"))
    return html.section("Particles", *parts)


def _energy_particles_section(arrays: dict, weights) -> str:
    x = arrays.get("x")
    if not plots_particles.is_particles(x):
        return ""
    series = [("raw samples", x, None)]
    if weights is not None:
        series.append(("reweighted", x, weights))
    reference = arrays.get("reference_x")
    if plots_particles.is_particles(reference):
        series.append(("reference (training samples)", reference, None))
    return html.section(
        "Particles",
        html.figure(plots_particles.distance_histogram(series),
                    "pair distances: raw, reweighted and reference"),
        html.figure(plots_particles.configuration_views(x, "sample"), "sampled configurations"))


def _spins_section(arrays: dict) -> str:
    x = arrays.get("x")
    if not plots_energy.is_spin_lattice(x):
        return ""
    return html.section("Spin configurations",
                        html.figure(plots_energy.spin_grid(x), "sampled spin configurations"))


def _profiles_section(files: RunFiles) -> str:
    profiles = (files.estimate or {}).get("free_energy_profiles")
    uri = plots_energy.free_energy_profiles(profiles)
    caption = "βF(v) = −ln P(v) from the weighted samples, 95 % bands; exact in red"
    return html.section("Free-energy profiles", html.figure(uri, caption)) if uri else ""


def _ramachandran_section(files: RunFiles, weights) -> str:
    arrays = files.samples or {}
    target = files.info.get("target")
    if not isinstance(target, dict) or target.get("name") != "aldp":
        return ""
    if "phi" not in arrays or "psi" not in arrays:
        return ""
    uri = plots_energy.ramachandran(arrays["phi"], arrays["psi"], weights)
    return html.section("Ramachandran plot", html.figure(uri, "backbone dihedrals (φ, ψ)"))
