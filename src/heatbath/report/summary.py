"""The header of the report: name, kind, status, step, and a one-paragraph plain-English summary.

run.json is written by other code and may lack fields (or hold unexpected types), so no lookup
may raise: top-level fields are read with `.get` (sub-dictionaries after an isinstance check),
and nested paths through `_get`.
"""

from __future__ import annotations

from heatbath.report import html
from heatbath.report.table import exact_values, fmt, z_score


def _get(mapping, *keys):
    """mapping[k1][k2]..., or None as soon as a level is missing or not a dictionary."""
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def header(info: dict, estimate: dict | None) -> str:
    name = str(info.get("name") or "unnamed run")
    meta = (f"kind: {info.get('kind')} · status: {info.get('status', 'unknown')} · "
            f"step: {info.get('step', '?')}")
    text = summary_text(info, estimate or {})
    return (f"<header>\n<h1>{html.escape(name)}</h1>\n" + html.paragraph(meta, "meta") + "\n"
            + html.paragraph(text) + "\n</header>")


def summary_text(info: dict, estimate: dict) -> str:
    described = _describe_data(info) if info.get("kind") == "data" else _describe_energy(info)
    return " ".join(part for part in (described, _status(info), _headline(info, estimate)) if part)


def _describe_data(info: dict) -> str:
    data = info.get("data") if isinstance(info.get("data"), dict) else {}
    text = f"A data run learning '{data.get('name', 'unknown data')}'"
    details = [f"{data['kind']} data" if data.get("kind") else "",
               f"event shape {info['event_shape']}" if info.get("event_shape") else "",
               _counts(data)]
    details = [d for d in details if d]
    text += f" ({', '.join(details)})" if details else ""
    path = _get(info, "path", "name") or _get(info, "path", "kind")
    prediction = _get(info, "path", "prediction")
    if prediction:
        text += f", predicting {prediction}"
    return text + (f" along the {path} path." if path else ".")


def _counts(data: dict) -> str:
    if data.get("n_train") is None:
        return ""
    heldout = data.get("n_heldout")
    return f"{data['n_train']} training" + (f" / {heldout} held-out examples" if heldout else
                                            " examples")


def _describe_energy(info: dict) -> str:
    target = info.get("target") if isinstance(info.get("target"), dict) else {}
    text = f"An energy run sampling exp(−U)/Z for target '{target.get('name', 'unknown')}'"
    details = [str(target["spec"]) if target.get("spec") else "",
               {True: "discrete", False: "continuous"}.get(target.get("discrete"), ""),
               f"event shape {target['event_shape']}" if target.get("event_shape") else "",
               f"convention: {target['convention']}" if target.get("convention") else ""]
    details = [d for d in details if d]
    text += f" ({'; '.join(details)})" if details else ""
    return text + (f" with method '{info['method']}'." if info.get("method") else ".")


def _status(info: dict) -> str:
    step = info.get("step", "?")
    if info.get("status") == "complete":
        return f"Training is complete after {step} steps."
    return f"Training is in progress (step {step}); this report is a snapshot."


def _headline(info: dict, estimate: dict) -> str:
    """One headline number with its error bar, when estimate.json has it."""
    for key, label in (("bits_per_dim", "held-out bits/dim"), ("nll_per_dim", "held-out NLL/dim"),
                       ("bits_bound_per_dim", "upper bound on held-out bits/dim (ELBO)"),
                       ("log_z", "log Z")):
        entry = estimate.get(key)
        if isinstance(entry, dict) and "value" in entry:
            text = f"Estimated {label}: {fmt(entry['value'])} ± {fmt(entry.get('stderr', '?'))}"
            exact = exact_values(estimate, info).get(key)
            z = z_score(entry, exact)
            if exact is not None:
                text += f" (exact {fmt(exact)}" + (f", z = {z:+.2f})" if z is not None else ")")
            return text + "."
    return ""
