"""`podium bench`: side-by-side throughput, latency and fairness figures on this machine.

Everything that compares is measured in one run, on the same model files, because the
development machines are small, shared and noisy: only ratios taken minutes apart mean
anything. ``bench.run.run_bench`` is the whole job; the modules beside it each measure
one thing; ``bench.command`` is the typer command, light at import.
"""

from bench.options import BenchOptions

__all__ = [
    "BenchOptions",
    "command",
]
