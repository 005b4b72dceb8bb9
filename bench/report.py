"""Tables for people and a JSON file for machines, from one run's results."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from rich.table import Table

from bench.figures import MILLISECONDS, BenchResults
from bench.stats import Summary
from bench.targets import TargetResult

JSON_FORMAT_VERSION = 1
MIN_SHOWN_CPU_MS = 0.05


def _digits(unit: str, value: float) -> int:
    if value >= 100 or (unit == MILLISECONDS and value >= 10):
        return 0
    return 2 if value < 10 else 1


def _median_and_spread(summary: Summary, unit: str) -> tuple[str, str]:
    digits = _digits(unit, summary.median)
    median = f"{summary.median:.{digits}f}"
    if summary.n == 1:
        return median, "n=1"
    return median, f"{summary.low:.{digits}f}–{summary.high:.{digits}f} (n={summary.n})"


def figures_table(results: BenchResults) -> Table:
    table = Table(title="Podium bench: medians of repeated runs (spread: min–max)")
    for column, justify in (("figure", "left"), ("median", "right"), ("unit", "left"), ("spread", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("note", overflow="fold")
    for figure in results.figures.values():
        shown = figure.shown
        if shown is None:
            table.add_row(figure.label, "—", figure.unit, "", figure.note)
            continue
        median, spread = _median_and_spread(shown, figure.unit)
        table.add_row(figure.label, median, figure.unit, spread, figure.note)
    return table


def sweep_table(results: BenchResults) -> Table:
    """Triton direct images/s: one row per client batch size, one column per concurrency."""
    concurrencies = sorted({cell["concurrency"] for cell in results.triton_sweep})
    batches = sorted({cell["batch"] for cell in results.triton_sweep})
    rates = {(cell["concurrency"], cell["batch"]): cell["images_per_s"] for cell in results.triton_sweep}
    table = Table(title="Triton direct sweep (img/s, one window each)")
    table.add_column("client batch \\ concurrency")
    for concurrency in concurrencies:
        table.add_column(str(concurrency), justify="right")
    for batch in batches:
        cells = [rates.get((c, batch)) for c in concurrencies]
        table.add_row(str(batch), *("—" if rate is None else f"{rate:.1f}" for rate in cells))
    return table


def cpu_table(rows: list[dict[str, float]], what: str = "end to end, 224x224") -> Table:
    """CPU milliseconds per image of a job, by component (median of rounds)."""
    components = sorted({key for row in rows for key in row})
    medians = {key: statistics.median(row.get(key, 0.0) for row in rows) for key in components}
    total = sum(medians.values())
    table = Table(title=f"Where the CPU goes: {what} (CPU ms per image, median of rounds)")
    table.add_column("component")
    table.add_column("CPU ms / image", justify="right")
    table.add_column("share", justify="right")
    for key, value in sorted(medians.items(), key=lambda item: -item[1]):
        if value < MIN_SHOWN_CPU_MS:
            continue  # idle bystanders (the other cluster, the baseline service)
        table.add_row(key, f"{value:.2f}", f"{value / total:.0%}" if total else "")
    table.add_row("total", f"{total:.2f}", "")
    return table


def targets_table(targets: list[TargetResult]) -> Table:
    table = Table(title="Targets (ratios between figures of this run)")
    for column in ("target", "required", "measured", "per-round", "result"):
        table.add_column(column, overflow="fold")
    styles = {"PASS": "[bold green]PASS[/]", "FAIL": "[bold red]FAIL[/]", "n/a": "[dim]n/a[/]"}
    for target in targets:
        table.add_row(target.name, target.requirement, target.measured, target.spread, styles[target.verdict])
    return table


def results_json(results: BenchResults, targets: list[TargetResult], seconds: float) -> dict:
    return {
        "format_version": JSON_FORMAT_VERSION,
        "run_seconds": round(seconds, 1),
        "machine": results.machine,
        "settings": results.settings,
        "figures": {
            key: {
                "label": figure.label,
                "unit": figure.unit if figure.unit != MILLISECONDS else "s",
                "note": figure.note,
                **(figure.summary.to_json() if figure.summary else {"median": None}),
            }
            for key, figure in results.figures.items()
        },
        "targets": [
            {
                "name": t.name,
                "requirement": t.requirement,
                "measured": t.measured,
                "value": t.value,
                "limit": t.limit,
                "result": t.verdict,
                "per_round": t.spread,
            }
            for t in targets
        ],
        "raw_sweeps": results.raw_sweeps,
        "triton_sweep": results.triton_sweep,
        "rounds": results.rounds,
        "fairness_runs": results.fairness_runs,
        "scale_runs": results.scale_runs,
        "cpu_ms_per_image_end_to_end_224": results.cpu_per_image,
        "cpu_ms_per_image_pipeline_standin": results.pipeline_cpu,
        "notes": results.notes,
    }


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
