"""A job's results as the page shows them: compact rows, filters, sorting, pages.

Rows of finished jobs are kept (least recently viewed dropped first, up to a row budget),
so that paging and filtering a 100,000-image job reads its results from the gateway once;
a running job's rows are read again on each view, since more keep coming.
"""

from __future__ import annotations

import enum
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from podium.client.records import ImageResult, own
from podium.core.proto import podium_pb2 as pb

# Rows held across all finished jobs (~0.5 KB each).
MAX_CACHED_ROWS = 400_000


@dataclass(frozen=True, slots=True)
class Row:
    index: int
    path: str
    ok: bool
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    error: str
    cam_rows: int = 0
    cam_cols: int = 0
    cam: bytes = b""  # the map's cells in 1/255 steps, row-major (as the gateway quantises them)

    @property
    def label(self) -> str:
        return self.labels[0] if self.labels else ""

    @property
    def probability(self) -> float:
        return self.probabilities[0] if self.probabilities else 0.0

    @classmethod
    def of(cls, result: ImageResult) -> Row:
        result = own(ImageResult, result)
        ok = result.status == pb.IMAGE_STATUS_OK
        cam = result.cam if ok else None
        return cls(
            index=result.index,
            path=result.path,
            ok=ok,
            labels=tuple(p.label for p in result.top_k),
            probabilities=tuple(round(float(p.probability), 7) for p in result.top_k),
            error="" if ok else result.error,
            cam_rows=cam.rows if cam else 0,
            cam_cols=cam.cols if cam else 0,
            cam=bytes(min(255, max(0, round(v * 255))) for v in cam.values) if cam else b"",
        )


class Sort(str, enum.Enum):
    ORDER = "order"  # as submitted
    PATH = "path"
    LABEL = "label"
    CONFIDENT = "confident"  # highest top-1 probability first
    UNSURE = "unsure"  # lowest first


_SORT_KEYS: dict[Sort, Callable[[Row], object]] = {
    Sort.ORDER: lambda row: row.index,
    Sort.PATH: lambda row: row.path,
    Sort.LABEL: lambda row: (row.label, -row.probability),
    Sort.CONFIDENT: lambda row: (-row.probability, row.index),
    Sort.UNSURE: lambda row: (not row.ok, row.probability, row.index),
}


@dataclass(frozen=True)
class Query:
    label: str = ""
    min_probability: float = 0.0
    errors_only: bool = False
    sort: Sort = Sort.ORDER
    page: int = 1
    page_size: int = 60

    def keeps(self, row: Row) -> bool:
        if self.errors_only:
            return not row.ok
        if self.label and row.label != self.label:
            return False
        return not self.min_probability or (row.ok and row.probability >= self.min_probability)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    matching: int  # rows the filter keeps, over all pages
    page: int
    pages: int
    labels: list[str]  # the top-1 labels present, for the filter's choices


def page_of(rows: list[Row], query: Query) -> Page:
    kept = [row for row in rows if query.keeps(row)]
    if query.sort is not Sort.ORDER:
        kept.sort(key=_SORT_KEYS[query.sort])
    pages = max(1, math.ceil(len(kept) / query.page_size))
    page = min(max(1, query.page), pages)
    start = (page - 1) * query.page_size
    labels = sorted({row.label for row in rows if row.ok})
    return Page(kept[start : start + query.page_size], len(kept), page, pages, labels)


class RowCache:
    """Finished jobs' rows by job id, least recently used dropped past the row budget."""

    def __init__(self, max_rows: int = MAX_CACHED_ROWS) -> None:
        self._jobs: OrderedDict[str, list[Row]] = OrderedDict()
        self._max_rows = max_rows
        self._lock = threading.Lock()

    def rows(self, job_id: str, finished: bool, read: Callable[[], Iterable[ImageResult]]) -> list[Row]:
        with self._lock:
            if job_id in self._jobs:
                self._jobs.move_to_end(job_id)
                return self._jobs[job_id]
        rows = [Row.of(result) for result in read()]
        if finished:
            with self._lock:
                self._jobs[job_id] = rows
                while sum(len(held) for held in self._jobs.values()) > self._max_rows and len(self._jobs) > 1:
                    self._jobs.popitem(last=False)
        return rows

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
