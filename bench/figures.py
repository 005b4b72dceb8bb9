"""What a run measured: named figures (median and spread), the sweeps, and the per-round raw data."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.stats import Summary

# Figure keys; targets and the chart refer to them.
RAW = "raw_onnxruntime"
RAW_WITH_DECODE = "raw_onnxruntime_with_decode"
INFERENCE_LATENCY = "inference_latency_batch1"
TRITON = "triton_direct"
E2E_SPORTS = "end_to_end_224"
E2E_MIXED = "end_to_end_mixed"
E2E_CLI = "end_to_end_cli"
BASELINE = "one_request_per_image"
LATENCY_SINGLE = "latency_1_image_job"
LATENCY_SINGLE_SERVER = "latency_1_image_job_server"
LATENCY_SMALL = "latency_10_image_job"
LATENCY_SMALL_SERVER = "latency_10_image_job_server"
FAIRNESS = "fairness_10_image_job_during_big_job"
DECODE_224 = "decode_preprocess_224"
DECODE_MIXED = "decode_preprocess_mixed"
INT8_RAW = "int8_raw_onnxruntime"
INT8_E2E = "int8_end_to_end_224"
DECODE_24MP_EXACT = "decode_24mp_exact"
DECODE_24MP_FAST = "decode_24mp_fast"
DECODE_24MP_EXACT_MEMORY = "decode_24mp_exact_peak"
DECODE_24MP_FAST_MEMORY = "decode_24mp_fast_peak"
FAST_AGREEMENT = "fast_vs_exact_top1_agreement"  # where exact's margin > bench.camera.DECIDED_MARGIN
FAST_AGREEMENT_ALL = "fast_vs_exact_top1_agreement_all"
FAST_MAX_DIFF = "fast_vs_exact_max_abs_diff"
REENCODED_MAX_DIFF = "reencoded_q95_max_abs_diff"  # the fidelity judge's sensitivity, for scale
E2E_CAMERA = "end_to_end_24mp"  # path mode
E2E_224_PATH = "end_to_end_224_path"  # beside it, the yardstick of the 24 MP target
CAMERA_WORKERS_PEAK = "end_to_end_24mp_workers_peak_rss"  # both workers' process trees, summed
E2E_EXPLAINED = "end_to_end_224_explained"
MAP_FILE_BYTES = "result_file_bytes_per_image_for_map"
# The stand-in model's cluster pair (bench/scale.py).
CACHE_OFF = "standin_distinct_cache_off"
CACHE_MISSES = "standin_distinct_cache_on"
CACHE_HITS = "standin_duplicates_cache_on"
CACHE_OVERHEAD = "result_cache_overhead_share"
SCALE_FIRST_TENTH = "scale_{mode}_first_tenth"
SCALE_LAST_TENTH = "scale_{mode}_last_tenth"
SCALE_REDIS_BYTES = "scale_{mode}_redis_bytes_per_image"
SCALE_REDIS_PEAK = "scale_{mode}_redis_peak_over_idle"  # Redis used_memory through the job, above its idle value
SCALE_SINK_BYTES = "scale_{mode}_result_file_bytes_per_image"
RESULTS_ROWS = "scale_results_rows_per_s"  # a completed job's lines read back as `podium results` does
SCALE_MODES = ("path", "upload")
# The pipeline against the decode floor (bench/pipeline.py), stand-in model, 224x224 JPEGs.
DECODE_FLOOR = "decode_floor_224"
PIPELINE_STANDIN = "standin_path_mode_224"
PIPELINE_OVERHEAD = "pipeline_cpu_per_image_beyond_decode"
# Client CPU (serialisation + gRPC) per image at N images per Triton request, and the batch
# size Triton formed (PODIUM_IMAGES_PER_REQUEST; the stand-in model, so the client's cost shows).
IMAGES_PER_REQUEST = (1, 4, 16)
REQUEST_CPU = "client_cpu_per_image_{n}_per_request"
TRITON_BATCH = "triton_mean_batch_{n}_per_request"

THROUGHPUT = "img/s"
SECONDS = "s"
MILLISECONDS = "ms"  # stored in seconds, shown in ms
MIB = "MiB"
PERCENT = "%"
PROBABILITY = "Δp"
BYTES = "B"


@dataclass(frozen=True)
class Figure:
    """One measured figure. ``summary`` holds img/s or seconds, whatever ``unit`` shows."""

    key: str
    label: str
    unit: str
    summary: Summary | None
    note: str = ""

    @property
    def shown(self) -> Summary | None:
        """The summary in the unit the tables show."""
        if self.summary is None:
            return None
        return self.summary.scaled(1000.0) if self.unit == MILLISECONDS else self.summary


@dataclass
class BenchResults:
    figures: dict[str, Figure] = field(default_factory=dict)
    # "fp32"/"int8" -> [{"batch", "images_per_s"}]; [{"concurrency", "batch", "images_per_s"}]
    raw_sweeps: dict[str, list[dict]] = field(default_factory=dict)
    triton_sweep: list[dict] = field(default_factory=list)
    # One dict per interleaved round: figure key -> that round's value (paired ratios).
    rounds: list[dict[str, float]] = field(default_factory=list)
    fairness_runs: list[dict] = field(default_factory=list)
    scale_runs: list[dict] = field(default_factory=list)  # bench.scale.ScaleRun, one per mode
    # Per round: CPU ms per image of the 224x224 end-to-end job, by component.
    cpu_per_image: list[dict[str, float]] = field(default_factory=list)
    # Per round: CPU ms per image of the stand-in path-mode job, by component, and the decode's.
    pipeline_cpu: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    def add(self, key: str, label: str, unit: str, samples: list[float] | None, note: str = "") -> Figure:
        figure = Figure(key, label, unit, Summary.of(samples) if samples else None, note)
        self.figures[key] = figure
        return figure

    def median(self, key: str) -> float | None:
        figure = self.figures.get(key)
        return figure.summary.median if figure and figure.summary else None
