"""Other networks than ResNet50, side by side: each small registry network served end to end
against raw onnxruntime on the same ONNX file (docs/models.md's table).

The networks are exported untrained (speed does not depend on the weights) into the FP32
cluster's repository before it starts, each under ``bench_<network>``, so one cluster
serves them all; their jobs are the 224x224 JPEG set, uploaded with ``model=``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench import end_to_end
from bench.figures import THROUGHPUT
from export.raw_speed import RawOnnxRuntime
from export.served import ServedModel, served_model
from podium.stores.modelrepo.layout import CONFIG_FILENAME

NETWORKS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
RAW_BATCH = 16


def model_name(network: str) -> str:
    return f"bench_{network}"


def figure_keys(network: str) -> tuple[str, str]:
    """(end to end, raw onnxruntime) figure keys of ``network``."""
    return f"network_{network}", f"network_{network}_raw"


def add_networks(repository: Path, progress) -> dict[str, ServedModel]:
    """Export each network into ``repository`` unless an earlier run did; their served models."""
    from export import export_model  # imports torch

    served = {}
    for network in NETWORKS:
        name = model_name(network)
        if not (repository / name / CONFIG_FILENAME).exists():
            progress(f"export: an untrained {network} as {name}")
            export_model(checkpoint=None, untrained=True, arch=network, model_repository=repository, model_name=name)
        served[network] = served_model(repository, name)
    return served


def measure_networks(run, client, served: dict[str, ServedModel], folder: Path) -> None:
    """Per network: end-to-end jobs of ``folder`` and raw onnxruntime, interleaved by round."""
    for network, model in served.items():
        end_to_end.run_job(client, folder, model=model.model_name)  # warm-up: Triton's first batches
        raw = RawOnnxRuntime(model)
        rates, raws = [], []
        for _ in range(run.sizes.repeats):
            rates.append(end_to_end.run_job(client, folder, model=model.model_name).images_per_s)
            raws.append(raw.measure(RAW_BATCH, run.sizes.best_window_s).images_per_s)
        run.log(f"network {network}: end to end {rates[-1]:.1f} img/s, raw onnxruntime {raws[-1]:.1f} img/s")
        end, bare = figure_keys(network)
        ratio = statistics.median(rates) / max(statistics.median(raws), 1e-9)
        run.results.add(
            end, f"{network}: end to end, 224x224 JPEGs (untrained, FP32)", THROUGHPUT, rates, f"{ratio:.2f}x raw"
        )
        run.results.add(bare, f"{network}: raw onnxruntime, batch {RAW_BATCH}, no decoding", THROUGHPUT, raws)
