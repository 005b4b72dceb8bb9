"""What one `podium bench` run measures, and how big: the full run and the --quick smoke test."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from podium.core.modelmeta import DEFAULT_MODEL_NAME

DEFAULT_OUTPUT_DIR = Path("bench/results")


@dataclass(frozen=True)
class Sizes:
    """How much work each phase does (the full run's million-image job alone takes ~20 minutes
    on 2 cores; ``--scale-images`` makes it smaller)."""

    dataset_images: int  # the 224x224 JPEG set (like the 100-sports data set)
    mixed_images: int  # the mixed-size photo folder
    big_job_images: int  # the job a small one must not wait behind
    small_job_images: int  # the small job of the latency and fairness figures
    repeats: int  # throughput figures
    latency_repeats: int
    raw_batches: tuple[int, ...]
    triton_concurrency: tuple[int, ...]
    triton_batches: tuple[int, ...]
    warmup_s: float  # before each closed-loop window
    sweep_window_s: float  # one cell of a sweep
    best_window_s: float  # one repeat of the best configuration
    fairness_delay_s: float  # how long the big job runs before the small one arrives
    camera_photos: int  # photos of many sizes for fast decoding's agreement with exact
    camera_job_images: int  # 24 MP photos in the end-to-end camera job
    cache_images: int  # distinct images of the result cache's cost and win (stand-in model)
    scale_images: int  # the scale job (stand-in model) in path mode
    scale_upload_images: int  # the scale job in upload mode (every file goes through the gateway)
    pipeline_images: int  # the stand-in's path-mode job against the decode floor


FULL = Sizes(
    dataset_images=1000,
    mixed_images=300,
    big_job_images=2000,
    small_job_images=10,
    repeats=3,
    latency_repeats=10,
    raw_batches=(1, 4, 8, 16, 32),
    triton_concurrency=(1, 2, 4, 8, 16),
    # 16: what a worker sends (PODIUM_IMAGES_PER_REQUEST); the CPU targets have no batcher
    # to merge smaller requests into the raw model's best batch (docs/performance.md, 00k).
    triton_batches=(1, 4, 8, 16),
    warmup_s=1.0,
    sweep_window_s=3.0,
    best_window_s=5.0,
    fairness_delay_s=3.0,
    camera_photos=200,
    camera_job_images=48,
    cache_images=2000,
    scale_images=1_000_000,
    scale_upload_images=100_000,
    pipeline_images=6000,
)

QUICK = Sizes(
    dataset_images=64,
    mixed_images=24,
    big_job_images=200,
    small_job_images=10,
    repeats=1,
    latency_repeats=3,
    raw_batches=(1, 8),
    triton_concurrency=(1, 4),
    triton_batches=(1, 8),
    warmup_s=0.5,
    sweep_window_s=1.5,
    best_window_s=2.0,
    fairness_delay_s=1.0,
    camera_photos=24,
    camera_job_images=4,
    cache_images=200,
    scale_images=2000,
    scale_upload_images=2000,
    pipeline_images=200,
)


@dataclass(frozen=True)
class BenchOptions:
    """One run's settings. Cluster knobs left at None keep the cluster's own defaults."""

    output_dir: Path = DEFAULT_OUTPUT_DIR
    model_repository: Path | None = None  # None: export one into output_dir/work
    checkpoint: Path | None = None  # None: a seeded untrained model (speed does not depend on weights)
    model_name: str = DEFAULT_MODEL_NAME
    quick: bool = False
    repeats: int | None = None  # None: the preset's
    latency_repeats: int | None = None
    int8: bool = True  # export and measure cpu-int8 when that target exists
    scale: bool = True  # the stand-in model's phase: the result cache's cost and win, the scale job
    scale_images: int | None = None  # None: the preset's path-mode scale job
    workers: int | None = None
    inflight: int | None = None
    chunk_size: int | None = None
    max_queued_chunks: int | None = None
    triton_queue_delay_us: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # more PODIUM_* settings for gateway and workers

    @property
    def sizes(self) -> Sizes:
        preset = QUICK if self.quick else FULL
        return replace(
            preset,
            repeats=self.repeats or preset.repeats,
            latency_repeats=self.latency_repeats or preset.latency_repeats,
            scale_images=self.scale_images or preset.scale_images,
        )

    @property
    def work_dir(self) -> Path:
        """Generated models and images, reused by later runs."""
        return self.output_dir / "work"
