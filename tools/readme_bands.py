"""Rewrite the README's two error-band tables from hfvram/data/error_bands.json.

    python -m hfvram.accuracy --write-bands   # regenerate the data file from validation/
    python tools/readme_bands.py              # then the README's tables follow it

The first table lists the entries whose basis is "measured" (the rest fell back to their engine's total, as the
README says); the second the coverage per engine. tests/test_bands.py checks that both match the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = {("vllm", "total"): "total (fixed parts inside the budget)", "kv_cache@vllm": "kv_cache (bytes per token)",
          "kv_cache@trtllm": "kv_cache (bytes per token)", "non_torch@tp1": "non_torch, 1 GPU",
          "non_torch@tp>1": "non_torch, TP > 1"}


def _amount(entry: dict, side: str) -> str:
    v = entry[side]
    return f"{v / 2**30:.2f} GiB" if entry.get("scale") == "bytes" else f"{100 * v:.1f}%"


def measured_table(data: dict) -> list[str]:
    rows = ["| engine | component | below | above | cases | sources |", "|---|---|---:|---:|---:|---:|"]
    for engine, e in data["engines"].items():
        entries = [("total", e["total"])] + list(e["components"].items())
        for name, entry in entries:
            if entry.get("basis") != "measured":
                continue
            label = LABELS.get((engine, name)) or LABELS.get(f"{name}@{engine}") or LABELS.get(name) or name
            rows.append(f"| {engine} | {label} | {_amount(entry, 'below')} | {_amount(entry, 'above')} | "
                        f"{entry['cases']} | {len(entry['sources'])} |")
    return rows


def coverage_table(data: dict) -> list[str]:
    rows = ["| engine | held-out cases | inside the band | coverage | source held out too |",
            "|---|---:|---:|---:|---:|"]
    for engine, e in data["engines"].items():
        c = e["coverage"]
        rows.append(f"| {engine} | {c['cases']} | {c['inside']} | {100 * c['share']:.0f}% | "
                    f"{100 * c['share_source_held_out']:.0f}% |")
    return rows


def replace_table(lines: list[str], header: str, new: list[str]) -> None:
    i = next(k for k, line in enumerate(lines) if line.startswith(header))
    j = i
    while j < len(lines) and lines[j].startswith("|"):
        j += 1
    lines[i:j] = new


def main() -> None:
    data = json.loads((ROOT / "hfvram" / "data" / "error_bands.json").read_text())
    path = ROOT / "README.md"
    lines = path.read_text().split("\n")
    replace_table(lines, "| engine | component | below | above | cases | sources |", measured_table(data))
    replace_table(lines, "| engine | held-out cases | inside the band |", coverage_table(data))
    path.write_text("\n".join(lines))
    print(re.sub(r"\n{2,}", "\n", "\n".join(measured_table(data) + [""] + coverage_table(data))))


if __name__ == "__main__":
    main()
