"""Delta jobs: a source classified by its changes since the last completed run of the same name.

The gateway lists the source with each entry's version (files: size, mtime and inode; S3:
ETag and size) and compares it with the listing the last completed job of that name and
API key left beside its result files. Entries that are new, changed, or without a version
are classified; the others' rows are copied from that job's files into this job's, after
its own images (``podium.stores.resultsink.listing``). A run with another model version, top_k or maps,
or whose baseline is gone (expired, deleted, its files removed), classifies everything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gateway.manifest import line_error, stored_line
from podium.core.errors import FailedPrecondition, InvalidArgument, NotFound
from podium.core.jobs import FileEntry, Job, JobMode, JobState, is_s3_url
from podium.core.jobs.files import file_version
from podium.stores.jobstore import JobStore
from podium.stores.resultsink import Sink, open_sink, part_names
from podium.stores.resultsink.listing import carry_rows, read_listing, write_listing
from podium.stores.resultsink.parts import part_first

log = logging.getLogger(__name__)

MAX_DELTA_NAME_CHARS = 200


@dataclass(frozen=True)
class Baseline:
    """The run a delta job compares with: its job and its listing (path -> version, row index)."""

    job: Job
    listing: dict[str, tuple[str, int]]


def find_baseline(store: JobStore, job: Job) -> Baseline | None:
    """The last completed run of ``job``'s name whose answers ``job``'s would equal, or None."""
    earlier = store.last_delta_job(job.owner, job.incremental)
    if earlier is None or earlier.state is not JobState.COMPLETED or not earlier.results_url:
        return None
    same = (earlier.model_name, earlier.model_version, earlier.top_k, earlier.explain)
    if not job.model_version or same != (job.model_name, job.model_version, job.top_k, job.explain):
        log.info("delta job %s: %s ran with other options; everything is classified", job.id, earlier.id)
        return None
    try:
        return Baseline(earlier, read_listing(open_sink(earlier.results_url), earlier.id))
    except NotFound:
        log.info("delta job %s: the files of %s are gone; everything is classified", job.id, earlier.id)
        return None


def checked_delta(name: str, mode: JobMode, results_url: str) -> None:
    """A delta job's name, checked before its job is made."""
    if not name:
        return
    if mode is JobMode.UPLOAD:
        raise InvalidArgument(
            "a delta job (--incremental) compares the listing of a source the gateway reads",
            hint="submit a --server-path folder, an s3:// prefix or a --manifest",
        )
    if not results_url:
        raise FailedPrecondition(
            "delta jobs carry rows over between result files, and this gateway keeps none",
            hint="set the gateway's PODIUM_RESULTS_URL (file:///PATH or s3://BUCKET/PREFIX)",
        )
    if len(name) > MAX_DELTA_NAME_CHARS:
        raise InvalidArgument(f"a delta job's name must be at most {MAX_DELTA_NAME_CHARS} characters")


def manifest_entry(line: str, roots: list[str], buckets: list[str], versions: bool) -> FileEntry:
    """A manifest line as a job entry; with ``versions``, a local file's version (an s3://
    line has none: without a listing, each would cost a HEAD request; it is classified)."""
    error = line_error(line, roots, buckets)
    version = ""
    if versions and error is None and not is_s3_url(line):
        try:
            version = file_version(os.stat(line, follow_symlinks=False))
        except OSError:
            pass  # the worker reports why it cannot be read
    return FileEntry(stored_line(line), error, version)


@dataclass
class DeltaPlan:
    """A delta job's listing, split as it streams: what to classify, what to carry over.
    Inactive (any other job), it passes every entry and keeps nothing."""

    active: bool
    baseline: Baseline | None
    classified: list[tuple[str, str]] = field(default_factory=list)  # (path, version) in job order
    unchanged: list[tuple[str, str, int]] = field(default_factory=list)  # (path, version, earlier index)

    def split(self, entries: Iterable[FileEntry]) -> Iterator[FileEntry]:
        """The entries to classify, in order; the unchanged ones are kept aside."""
        if not self.active:
            yield from entries
            return
        listing = self.baseline.listing if self.baseline else {}
        for entry in entries:
            earlier = listing.get(entry.path)
            if earlier is not None and not entry.error and entry.version and earlier[0] == entry.version:
                self.unchanged.append((entry.path, entry.version, earlier[1]))
            else:
                self.classified.append((entry.path, entry.version))
                yield entry

    def carry(self, sink: Sink, job_id: str) -> list[FileEntry]:
        """Copy the unchanged entries' rows into the job's files (numbered after its own
        images) and write its listing; returns the entries whose rows were not found (an
        earlier job's files changed by hand), to be classified after all. Call once the
        listing ended."""
        total = len(self.classified)
        ordered = sorted(self.unchanged, key=lambda entry: entry[2])
        earlier = [index for _, _, index in ordered]
        found: set[int] = set()
        if self.baseline is not None and ordered:
            source = open_sink(self.baseline.job.results_url)
            found = carry_rows(source, self.baseline.job.id, job_id, earlier, total)
            if len(found) < len(earlier):  # numbered again, after the entries now classified
                sink.remove(job_id, [name for name in part_names(sink, job_id) if part_first(name) >= total])
                first = total + len(earlier) - len(found)
                carry_rows(source, self.baseline.job.id, job_id, sorted(found), first)
        carried = [entry for entry in ordered if entry[2] in found]
        missing = [FileEntry(path, version=version) for path, version, index in ordered if index not in found]
        first_carried = total + len(missing)
        listing = [(path, version, index) for index, (path, version) in enumerate(self.classified)]
        listing += [(entry.path, entry.version, total + i) for i, entry in enumerate(missing)]
        listing += [(path, version, first_carried + i) for i, (path, version, _) in enumerate(carried)]
        self.unchanged = carried
        write_listing(sink, job_id, listing)
        return missing
