"""The estimates table: value ± stderr, 95 % CI, distance floors, exact values and z-scores.

estimate.json entries are either plain numbers/strings or objects {"value", "stderr", "ci95",
...}; distances carry a "floor" object (the same distance between two halves of the data, i.e.
what a perfect model would score). An estimate more than Z_FLAG standard errors from a known
exact value is flagged: at that distance "unlucky" is no longer a credible explanation.
"""

from __future__ import annotations

import json
import math
from html import escape

Z_FLAG = 3.0
_SPECIAL = {"exact", "tail"}   # shown as a column / a note rather than as rows


def fmt(value) -> str:
    """Numbers the way the table shows them (6 significant digits; ints as they are)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value) -> float | None:
    """A finite float from a number or a {"value": number} object, else None."""
    if isinstance(value, dict):
        value = value.get("value")
    return float(value) if is_number(value) else None


def exact_values(estimate: dict | None, run_info: dict) -> dict[str, float]:
    """Known exact answers: run.json's target.exact, overridden by estimate.json's "exact"."""
    target = run_info.get("target")
    sources = [target.get("exact") if isinstance(target, dict) else None,
               (estimate or {}).get("exact")]
    exact: dict[str, float] = {}
    for source in sources:
        if isinstance(source, dict):
            exact.update({k: v for k, v in ((k, _number(v)) for k, v in source.items())
                          if v is not None})
    return exact


def z_score(entry, exact: float | None) -> float | None:
    """(value − exact) / stderr, or None when either side is missing or stderr is not positive."""
    if exact is None or not isinstance(entry, dict):
        return None
    value, stderr = _number(entry.get("value")), _number(entry.get("stderr"))
    if value is None or stderr is None or stderr <= 0:
        return None
    return (value - exact) / stderr


def compared(estimate: dict, exact: dict[str, float]) -> list[tuple[str, float, float, float]]:
    """(name, value, stderr, exact) for every estimate with an error bar and an exact value."""
    rows = []
    for name, entry in estimate.items():
        if name in exact and z_score(entry, exact[name]) is not None:
            rows.append((name, float(entry["value"]), float(entry["stderr"]), exact[name]))
    return rows


def estimates_table(estimate: dict, exact: dict[str, float]) -> str:
    """The HTML table (and the weight-tail note, if any) for an estimate.json dictionary."""
    names = [k for k in estimate if k not in _SPECIAL]
    names += [k for k in exact if k not in estimate]   # exact answers nothing estimated
    show_floor = any(isinstance(v, dict) and "floor" in v for v in estimate.values())
    show_exact = bool(exact)
    header = ["quantity", "value", "± stderr", "95 % CI"]
    header += ["floor"] * show_floor + ["exact", "z"] * show_exact
    lines = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    for name in names:
        cells = _value_cells(estimate.get(name, "—"))
        if show_floor:
            cells.append(_floor_cell(estimate.get(name)))
        if show_exact:
            cells += _exact_cells(estimate.get(name), exact.get(name))
        lines.append(f"<tr><td>{escape(name)}</td>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines) + _tail_note(estimate.get("tail"))


def _value_cells(entry) -> list[str]:
    if isinstance(entry, dict) and "value" in entry:
        ci = entry.get("ci95")
        ci_text = (f"[{fmt(ci[0])}, {fmt(ci[1])}]" if isinstance(ci, list) and len(ci) == 2
                   else "")
        return [f"<td>{escape(fmt(entry['value']))}</td>",
                f"<td>{escape(fmt(entry.get('stderr', '')))}</td>", f"<td>{escape(ci_text)}</td>"]
    if isinstance(entry, dict):
        text = "; ".join(f"{k}: {fmt(v)}" for k, v in entry.items())
    elif isinstance(entry, list):
        text = json.dumps(entry)
    else:
        text = fmt(entry)
    return [f"<td>{escape(text)}</td>", "<td></td>", "<td></td>"]


def _floor_cell(entry) -> str:
    floor = entry.get("floor") if isinstance(entry, dict) else None
    if not isinstance(floor, dict) or "value" not in floor:
        return "<td></td>"
    text = fmt(floor["value"]) + (f" ± {fmt(floor['stderr'])}" if "stderr" in floor else "")
    return f"<td>{escape(text)}</td>"


def _exact_cells(entry, exact: float | None) -> list[str]:
    exact_cell = f"<td>{escape(fmt(exact))}</td>" if exact is not None else "<td></td>"
    z = z_score(entry, exact)
    if z is None:
        return [exact_cell, "<td></td>"]
    if abs(z) > Z_FLAG:
        return [exact_cell, f'<td class="zflag" title="more than {Z_FLAG:g} standard errors '
                            f'from exact">{z:+.2f} ⚠</td>']
    return [exact_cell, f"<td>{z:+.2f}</td>"]


def _tail_note(tail) -> str:
    if not isinstance(tail, dict):
        return ""
    k_hat, reliable = tail.get("k_hat"), tail.get("reliable")
    css = "" if reliable else ' class="warn"'
    verdict = "reliable" if reliable else "unreliable"
    text = f"Importance-weight tail: Pareto k̂ = {fmt(k_hat)} ({verdict})"
    if tail.get("message"):
        text += f". {tail['message']}"
    return f"\n<p{css}>{escape(text)}</p>"
