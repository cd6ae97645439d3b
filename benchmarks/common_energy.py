"""Table helpers shared by the energy benchmarks."""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

import torch


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_table(name: str, title: str, table: str, command: str) -> None:
    header = (f"# {title}\n\nCommand: `.venv/bin/python {command}`  \n"
              f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
              f"Python {sys.version.split()[0]}, {platform.machine()}, "
              f"{datetime.date.today().isoformat()}\n\n")
    (Path(__file__).parent / f"{name}.md").write_text(header + table + "\n")


def add_ratio_column(rows: list[dict], key: str, name: str) -> None:
    """Append `name`: each row's `key` divided by the best (smallest) one, as '1.0x'."""
    best = max(min(float(r[key]) for r in rows), 1e-300)
    for row in rows:
        row[name] = f"{float(row[key]) / best:.1f}x"
