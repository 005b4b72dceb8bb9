"""bench.png: throughputs, latencies and the Triton sweep of one run, side by side."""

from __future__ import annotations

from pathlib import Path

from bench import figures as f
from bench.figures import BenchResults
from bench.targets import TargetResult

THROUGHPUT_KEYS = (
    f.RAW,
    f.RAW_WITH_DECODE,
    f.TRITON,
    f.E2E_SPORTS,
    f.E2E_EXPLAINED,
    f.E2E_MIXED,
    f.BASELINE,
    f.INT8_RAW,
    f.INT8_E2E,
)
LATENCY_KEYS = (f.INFERENCE_LATENCY, f.LATENCY_SINGLE, f.LATENCY_SMALL, f.FAIRNESS)
SHORT_LABELS = {
    f.RAW: "raw ORT",
    f.RAW_WITH_DECODE: "raw ORT\n+decode",
    f.TRITON: "Triton\ndirect",
    f.E2E_SPORTS: "end to end\n224x224",
    f.E2E_EXPLAINED: "end to end\nexplained",
    f.E2E_MIXED: "end to end\nmixed sizes",
    f.BASELINE: "1 request\nper image",
    f.INT8_RAW: "INT8\nraw ORT",
    f.INT8_E2E: "INT8 end\nto end",
    f.INFERENCE_LATENCY: "1 inference\n(batch 1)",
    f.LATENCY_SINGLE: "1-image\njob",
    f.LATENCY_SMALL: "10-image\njob",
    f.FAIRNESS: "10-image job\nduring big",
}


def write_chart(path: Path, results: BenchResults, targets: list[TargetResult], title: str) -> None:
    import matplotlib  # heavy, and only this needs it

    matplotlib.use("Agg")  # no display; set here, not at import, so importing bench changes nothing
    import matplotlib.pyplot as plt

    figure, (throughput, latency, sweep) = plt.subplots(1, 3, figsize=(18, 5.5), width_ratios=(2.2, 1.3, 1.3))
    _bars(throughput, results, THROUGHPUT_KEYS, scale=1.0)
    throughput.set_ylabel("images/s (median, bars: min–max)")
    throughput.set_title("Throughput")
    _bars(latency, results, LATENCY_KEYS, scale=1.0, log=True)
    latency.set_ylabel("seconds (median, log scale)")
    latency.set_title("Latency and fairness")
    for target in targets:
        if target.limit is not None and target.name.startswith(("1-image", "10-image")):
            latency.axhline(target.limit, linestyle="--", linewidth=1, color="grey")
            latency.annotate(
                f"limit: {target.name}",
                (1.0, target.limit),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                fontsize=7,
                color="grey",
            )
    _sweep(sweep, results)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axes, results: BenchResults, keys: tuple[str, ...], scale: float, log: bool = False) -> None:
    present = [(results.figures[k], results.figures[k].summary) for k in keys if k in results.figures]
    present = [(fig, summary) for fig, summary in present if summary is not None]
    medians = [summary.median * scale for _, summary in present]
    below = [m - summary.low * scale for m, (_, summary) in zip(medians, present)]
    above = [summary.high * scale - m for m, (_, summary) in zip(medians, present)]
    positions = range(len(present))
    axes.bar(positions, medians, yerr=[below, above], capsize=4, color="#4c72b0")
    axes.set_xticks(list(positions), [SHORT_LABELS.get(fig.key, fig.key) for fig, _ in present], fontsize=8)
    if log:
        axes.set_yscale("log")
    for x, value, top in zip(positions, medians, above):
        # Above the error bar, so that the number stays readable.
        axes.annotate(
            f"{value:.3g}",
            (x, value + top),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )


def _sweep(axes, results: BenchResults) -> None:
    from matplotlib.ticker import NullFormatter

    batches = sorted({cell["batch"] for cell in results.triton_sweep})
    for batch in batches:
        cells = sorted((c for c in results.triton_sweep if c["batch"] == batch), key=lambda c: c["concurrency"])
        points = [(c["concurrency"], c["images_per_s"]) for c in cells if c["images_per_s"] is not None]
        if points:
            axes.plot(*zip(*points), marker="o", label=f"client batch {batch}")
    raw = results.median(f.RAW)
    if raw:
        axes.axhline(raw, linestyle="--", color="black", linewidth=1, label="raw onnxruntime (best)")
    rates = [c["images_per_s"] for c in results.triton_sweep if c["images_per_s"] is not None]
    axes.set_ylim(0, max([*rates, raw or 0.0, 1.0]) * 1.15)  # room above the raw line and the legend
    axes.set_xscale("log", base=2)
    concurrencies = sorted({cell["concurrency"] for cell in results.triton_sweep})
    axes.set_xticks(concurrencies, [str(c) for c in concurrencies])
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("requests in flight")
    axes.set_ylabel("images/s")
    axes.set_title("Triton direct sweep")
    axes.legend(fontsize=8)
