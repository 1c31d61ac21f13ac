"""An experiment over several seeds: its per-seed tables, findings and figures combined into one of each.

Each seed's summary (the experiment's summarise function, unchanged) gives a table, a figure and findings with its
claims; the combination keeps every row with its seed, summarises each row over the seeds (mean, min and max),
draws every seed on one figure, and gives each claim one verdict by COMBINED_RULE beside the per-seed ones.
Plain Python; nothing here imports Kedro.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gpe_pipeline.plotting import overlay_seeds
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE

COMBINED_RULE = (
    "each seed's verdict by the rule stated beside the claim, combined: held when it held in every seed, did not hold "
    "when it did not hold in any seed and was measured in every one, not measurable when it was measurable in no "
    "seed, mixed (k of n) otherwise (k: the seeds in which it held)"
)
SPREAD = "mean [min, max] over the seeds"


def combined_verdict(verdicts: list[str]) -> str:
    """One verdict from the per-seed ones by COMBINED_RULE: held, did not hold, not measurable or mixed (k of n)."""
    if not verdicts:
        raise ValueError("combined_verdict needs the verdict of at least one seed")
    for verdict in (HELD, NOT_HELD, NOT_MEASURABLE):
        if all(v == verdict for v in verdicts):
            return verdict
    return f"mixed ({verdicts.count(HELD)} of {len(verdicts)})"


def combine_claims(per_seed: list[list[dict[str, str]]]) -> list[dict[str, Any]]:
    """Each claim's combined verdict beside its per-seed verdicts and measurements (claims matched by position)."""
    counts = {len(claims) for claims in per_seed}
    if len(counts) != 1:
        raise ValueError(f"every seed must test the same claims, got {sorted(counts)} claims")
    combined = []
    for position, first in enumerate(per_seed[0]):
        items = [claims[position] for claims in per_seed]
        titles = {item["claim"] for item in items}
        if len(titles) != 1:
            raise ValueError(f"claim {position} differs between seeds: {sorted(titles)}")
        verdicts = [item["verdict"] for item in items]
        combined.append(
            {
                **first,
                "verdict": combined_verdict(verdicts),
                "seed_verdicts": verdicts,
                "seed_measured": [item["measured"] for item in items],
                "measured": first["measured"] if len(items) == 1 else "; ".join(
                    f"seed {seed}: {item['measured']}" for seed, item in enumerate(items)
                ),
            }
        )
    return combined


def _row_keys(table: pd.DataFrame) -> list[tuple[Any, int]]:
    """Each row's key: its first column's value and which occurrence of that value it is."""
    seen: dict[Any, int] = {}
    keys = []
    for value in table.iloc[:, 0]:
        seen[value] = seen.get(value, -1) + 1
        keys.append((value, seen[value]))
    return keys


def _spread(values: list[Any]) -> dict[str, Any]:
    """mean, min, max and the count of the finite values among one cell's per-seed values."""
    numbers = np.array([float(v) for v in values if v is not None and not pd.isna(v)], dtype=float)
    numbers = numbers[np.isfinite(numbers)]
    if numbers.size == 0:
        return {"mean": np.nan, "min": np.nan, "max": np.nan, "n": 0}
    return {"mean": float(numbers.mean()), "min": float(numbers.min()), "max": float(numbers.max()), "n": int(numbers.size)}


def summary_table(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per row of the first seed's table: its text columns, each numeric column's mean, min, max over the
    seeds (and how many seeds had a finite value, where not all did), each yes/no column's count of yes."""
    first = tables[0]
    by_key = [dict(zip(_row_keys(table), table.to_dict("records"), strict=True)) for table in tables]
    rows = []
    for key in _row_keys(first):
        cells = [rows_of_seed[key] for rows_of_seed in by_key if key in rows_of_seed]
        row: dict[str, Any] = {"seeds": len(cells)}
        for column in first.columns:
            values = [cell.get(column) for cell in cells]
            kind = first[column].dtype
            if pd.api.types.is_bool_dtype(kind):
                row[column] = f"{sum(bool(v) for v in values)} of {len(values)}"
            elif pd.api.types.is_numeric_dtype(kind):
                spread = _spread(values)
                row.update({f"{column}_mean": spread["mean"], f"{column}_min": spread["min"], f"{column}_max": spread["max"]})
                if spread["n"] != len(values):
                    row[f"{column}_finite"] = spread["n"]
            else:
                distinct = list(dict.fromkeys(str(v) for v in values))
                row[column] = distinct[0] if len(distinct) == 1 else " / ".join(distinct)
        rows.append(row)
    return pd.DataFrame(rows)


def spread_for_report(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as the report shows it: each numeric column as 'mean [min, max]' (and 'k of n finite' if not all)."""
    shown: dict[str, list[str]] = {}
    columns = [c for c in summary.columns if not c.endswith(("_min", "_max", "_finite"))]
    for column in columns:
        if column.endswith("_mean"):
            name = column.removesuffix("_mean")
            cells = []
            for _, row in summary.iterrows():
                mean, low, high = row[column], row[f"{name}_min"], row[f"{name}_max"]
                text = "" if pd.isna(mean) else (f"{mean:.4g}" if low == high else f"{mean:.4g} [{low:.4g}, {high:.4g}]")
                finite = row.get(f"{name}_finite")
                if finite is not None and not pd.isna(finite):
                    text = f"{text} ({int(finite)} of {int(row['seeds'])} finite)".strip()
                cells.append(text)
            shown[name] = cells
        else:
            shown[column] = [str(v) for v in summary[column]]
    return pd.DataFrame(shown)


def combine_seeds(**per_seed: Any) -> tuple[pd.DataFrame, pd.DataFrame, Figure, dict[str, Any]]:
    """Every seed's rows (a seed column first), the summary over seeds, one figure of all seeds, the combined findings.

    per_seed: "seed_<k>__table", "seed_<k>__figure", "seed_<k>__findings" for k = 0 .. n - 1 (an experiment's
    summarise outputs for each seed).
    """
    seeds = sorted({int(key.split("__")[0].removeprefix("seed_")) for key in per_seed})
    if seeds != list(range(len(seeds))):
        raise ValueError(f"seeds must be 0 .. n - 1, got {seeds}")
    tables = [per_seed[f"seed_{k}__table"] for k in seeds]
    findings = [per_seed[f"seed_{k}__findings"] for k in seeds]
    table = pd.concat([t.assign(seed=k)[["seed", *t.columns]] for k, t in zip(seeds, tables, strict=True)], ignore_index=True)
    first = findings[0]
    combined = {
        **{key: value for key, value in first.items() if key not in ("claims", "notes")},
        "seeds": len(seeds),
        "claims": combine_claims([f["claims"] for f in findings]),
        "combined_rule": COMBINED_RULE,
        "notes": list(first.get("notes", [])),
        "per_seed": findings,
    }
    figure = overlay_seeds([per_seed[f"seed_{k}__figure"] for k in seeds])
    return table, summary_table(tables), figure, combined
