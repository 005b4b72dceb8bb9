"""`podium bench`: side-by-side throughput, latency and fairness figures on this machine.

Everything that compares is measured in one run, on the same model files, because the
development machines are small, shared and noisy: only ratios taken minutes apart mean
anything. ``run_bench`` is the whole job; the modules beside it each measure one thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.options import BenchOptions

if TYPE_CHECKING:
    from bench.run import run_bench

__all__ = ["BenchOptions", "run_bench"]


def __getattr__(name: str):
    # run_bench pulls in the cluster, gRPC and onnxruntime; `podium --help` should not.
    if name == "run_bench":
        from bench.run import run_bench

        return run_bench
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
