"""Results as the contract's records, and the JSONL and CSV files they are written to
(Parquet: podium.cli.parquet).

CSV has one row per image and no room for a map: an explained job's "cam" is in JSONL only.
"""

from __future__ import annotations

import csv
import enum
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path, PurePosixPath

from podium.client.records import ImageResult, Job, own
from podium.client.states import state_name
from podium.core.jobs import walk_entries
from podium.core.proto import podium_pb2 as pb

CSV_COLUMNS = ("path", "status", "label", "index", "probability", "error", "top_k")


# Map cells are 1/255 steps: four decimals tell every step apart.
CAM_DECIMALS = 4


def result_record(result: ImageResult) -> dict:
    """One result line: {"path", "status": "ok"|"error", "top_k": [...], "error": str|null},
    and for an explained job's ok images "cam": {"class_index", "grid": [rows, cols], "values"}."""
    result = own(ImageResult, result)
    ok = result.status == pb.IMAGE_STATUS_OK
    record = {
        "path": result.path,
        "status": "ok" if ok else "error",
        "top_k": [
            {"label": p.label, "index": p.index, "probability": round(float(p.probability), 7)} for p in result.top_k
        ],
        "error": None if ok else result.error,
    }
    if ok and result.cam is not None:
        cam = result.cam
        record["cam"] = {
            "class_index": cam.class_index,
            "grid": [cam.rows, cam.cols],
            "values": [round(float(v), CAM_DECIMALS) for v in cam.values],
        }
    return record


def with_meta(record: dict, index: int, meta: list[dict[str, str]]) -> dict:
    """A manifest job's record with its CSV row's other columns as "meta"."""
    if index < len(meta):
        record["meta"] = meta[index]
    return record


def with_unsent(records: Iterable[dict], folder: Path, job: Job) -> Iterator[dict]:
    """The job's records, then an error line for each file of ``folder`` the upload never sent
    (the job stopped first: --max-failed, a cancel): every file gets exactly one line."""
    seen = set()
    for record in records:
        seen.add(record["path"])
        yield record
    reason = f"not uploaded: job {job.id} had ended ({state_name(job.state)}" + (
        f": {job.error})" if job.error else ")"
    )
    for entry in walk_entries(folder):
        if entry.path not in seen:
            yield {"path": entry.path, "status": "error", "top_k": [], "error": reason}


def job_record(job: Job) -> dict:
    """A job as `podium jobs --json` and `podium status --json` print it (times: Unix seconds)."""
    return {
        "id": job.id,
        "name": job.spec.name,
        "state": state_name(job.state),
        "mode": job.mode,
        "total": job.total,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "cached": job.cached,
        "unchanged": job.unchanged,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at or None,
        "error": job.error or None,
        "model": job.spec.model,
        "top_k": job.spec.top_k,
        "explain": job.spec.explain,
        "source": job.spec.source,
        "max_failed": job.spec.max_failed or None,
        "webhook": job.spec.webhook or None,
        "incremental": job.spec.incremental or None,
    }


class ResultFormat(str, enum.Enum):
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"

    @classmethod
    def of(cls, output: str | None, given: ResultFormat | None = None) -> ResultFormat:
        """The format asked for, else the one ``output``'s suffix names (.csv, .parquet), else JSONL."""
        if given is not None:
            return given
        suffix = PurePosixPath(output or "").suffix.lower().lstrip(".")
        return cls(suffix) if suffix in (cls.CSV.value, cls.PARQUET.value) else cls.JSONL


def write_results(path: Path, records: Iterable[dict], fmt: ResultFormat | None = None) -> Iterator[dict]:
    """Write records to ``path`` as JSONL or CSV (by default, as its suffix says), yielding each as written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        if ResultFormat.of(str(path), fmt) is ResultFormat.CSV:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for record in records:
                writer.writerow(csv_row(record))
                yield record
        else:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                yield record


def write_lines(path: Path | None, lines: Iterable[str]) -> int:
    """JSON lines to ``path`` (stdout if None); how many."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") if path is not None else nullcontext(sys.stdout) as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    return count


def csv_row(record: dict) -> dict:
    top = record["top_k"][0] if record["top_k"] else {}
    return {
        "path": record["path"],
        "status": record["status"],
        "label": top.get("label", ""),
        "index": top.get("index", ""),
        "probability": top.get("probability", ""),
        "error": record["error"] or "",
        "top_k": json.dumps(record["top_k"], ensure_ascii=False),
    }
