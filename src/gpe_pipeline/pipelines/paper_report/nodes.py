"""The report of a paper_report run: which of the paper's claims held, with every number taken from the run's outputs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from gpe_pipeline.readings import markdown_table
from gpe_pipeline.run_limits import limits_of_run
from gpe_pipeline.seed_summary import COMBINED_RULE, SPREAD, spread_for_report
from gpe_pipeline.variants import DECODER_VS_GME, GENERATION_BUDGET, ITERATIONS, LEVELS

SHARING = (DECODER_VS_GME, ITERATIONS, GENERATION_BUDGET)  # the experiments that read the trainings in variants.LEVELS


def experiment_seconds(node_seconds: dict[str, float], experiment: str) -> float:
    """Wall-clock seconds of an experiment's nodes (its namespace and its variants'), as the run timed them."""
    return sum(seconds for node, seconds in node_seconds.items() if node == experiment or node.startswith(f"{experiment}."))


def write_report(run_context: dict[str, Any], parameters: dict[str, Any], metadata: dict[str, Any], **outputs: Any) -> str:
    """The markdown report: the run, a verdict table of every claim, the limits of the run, one section per experiment.

    parameters: the run's (every section); metadata: the shared dataset's (for "Limits of this run").

    outputs: "<experiment>__findings" (the experiment's findings combined over its seeds) and "<experiment>__summary"
    (its table's rows over the seeds, seed_summary.summary_table), in the paper's order.
    """
    experiments = list(dict.fromkeys(key.partition("__")[0] for key in outputs))
    findings = {name: outputs[f"{name}__findings"] for name in experiments}
    summaries = {name: outputs[f"{name}__summary"] for name in experiments}
    seconds = run_context.get("node_seconds", {})
    machine = run_context.get("machine", {})
    claims = [(findings[name]["experiment"], item) for name in experiments for item in findings[name]["claims"]]
    tally = Counter(item["verdict"] for _, item in claims)
    seed_counts = ", ".join(f"{findings[name]['experiment']} {findings[name].get('seeds', 1)}" for name in experiments)
    study = experiment_seconds(seconds, LEVELS)  # the trainings E3, E4 and E6 share (variants.LEVELS)
    per_experiment = ", ".join(
        f"{findings[name]['experiment']} {experiment_seconds(seconds, name):.0f} s" for name in experiments
    ) + (f", the trainings E3, E4 and E6 share {study:.0f} s" if study else "")
    lines = [
        "# Which of the paper's claims held on this run",
        "",
        "Written by `write_report` from this run's outputs only: every number below is read from the experiments'",
        "tables and findings (data/08_reporting/<experiment>/), and every verdict follows the rule stated beside it.",
        "",
        "| run | |",
        "|---|---|",
        f"| command | `{run_context.get('command', '')}` (environment `{run_context.get('environment', '')}`) |",
        f"| commit | `{run_context.get('commit', '')}` (uncommitted changes: {run_context.get('dirty', 'unknown')}) |",
        f"| started | {run_context.get('started', '')} |",
        f"| machine | {machine.get('cpu', '')}, {machine.get('cpu_cores', '')} cores; GPU: {machine.get('gpu', '')} |",
        f"| software | torch {machine.get('torch', '')}, Python {machine.get('python', '')} |",
        f"| wall-clock | {sum(experiment_seconds(seconds, name) for name in experiments) + study:.0f} s for the "
        f"experiments ({per_experiment}) |",
        f"| seeds | {seed_counts} |",
        "",
        "## Verdicts",
        "",
        f"{len(claims)} claims: " + ", ".join(f"{count} {verdict}" for verdict, count in sorted(tally.items())) + ".",
        "",
        f"A claim's verdict is {COMBINED_RULE}. Each seed's measurements are in its experiment's section below.",
        "",
        "| | claim | the paper | verdict | per seed | rule or reason (per seed) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {experiment} | {item['claim']} | {item['paper']} | **{item['verdict']}** | "
            f"{', '.join(item.get('seed_verdicts', [item['verdict']]))} | {item['reason']} |"
            for experiment, item in claims
        ),
    ]
    lines += ["", "## Limits of this run", "", *(f"- {line}" for line in limits_of_run(parameters, metadata))]
    for name in experiments:
        found = findings[name]
        lines += [
            "",
            f"## {found['experiment']}: {found.get('title', name)}",
            "",
            f"`kedro run --pipeline={name}`; {experiment_seconds(seconds, name):.0f} s of wall-clock in this run"
            + (f" besides the {study:.0f} s of the trainings E3, E4 and E6 share, which it reads" if name in SHARING else "")
            + ", "
            f"{found.get('seeds', 1)} seeds. Outputs: data/08_reporting/{name}/ (results.csv: every seed's rows; "
            "summary.csv; figure.png; findings.json; seed_<k>/ for each seed's own table and findings).",
            "",
            f"![{found['experiment']}]({name}/figure.png)",
            "",
            f"Each row, {SPREAD}:",
            "",
            markdown_table(table_for_report(spread_for_report(summaries[name]))),
            "",
            "Measured, per seed:",
            "",
            *(
                f"- {item['claim']}: " + "; ".join(
                    f"seed {seed} ({verdict}): {measured}"
                    for seed, (verdict, measured) in enumerate(
                        zip(item.get("seed_verdicts", [item["verdict"]]), item.get("seed_measured", [item["measured"]]), strict=True)
                    )
                )
                for item in found["claims"]
            ),
        ]
        lines += [f"\n{note}" for note in found.get("notes", [])]
    return "\n".join(lines) + "\n"


def table_for_report(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as the report shows it (a copy; at most 40 rows)."""
    return table.head(40).copy()
