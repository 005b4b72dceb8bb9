"""Which images each chunk of a job holds: chunks may grow while the job runs.

A new job's chunks have ``chunk_size`` images (on a fresh cluster, with no measured rate,
the fewest: PODIUM_CHUNK_SIZE). Once the workers report a rate, dispatching makes the
job's next chunks larger (up to the job's ``max_chunk_size``): a job of 100,000 images no
longer runs at the small chunks' speed to its end. Near the end each chunk takes a share of
what is left, so that the workers finish together rather than one running a large last
chunk alone. An upload held back, with none of its chunks in flight, sends the files that
arrived as one smaller chunk (``partial`` dispatch, ``HeldBack``). Held by its own limits on
unprocessed files, what arrived is its room: its later chunks take a quarter of it. Held by
Redis's memory, what arrived says little of its room (a passing high-water mark may find two
files in): they keep at least half their size. Either way growth no longer exceeds it, so
such cuts stay few however many files the upload has. Each change of size starts a segment
at the dispatch frontier, so a chunk's images never change once it was sent:

    chunk_size 16, chunk_layout "3:48:256 5:560:1024"
    chunks 0-2: 16 images from 0; chunks 3-4: 256 from 48; chunk 5 on: 1024 from 560

The Lua in ``scripts`` reads the same two fields the same way (``CHUNK_LAYOUT_LUA``).
"""

from __future__ import annotations

import dataclasses
import enum
import re

_SEGMENT = re.compile(r"(\d+):(\d+):(\d+)")
FIELDS = ("chunk_size", "chunk_layout")  # of the job hash


class HeldBack(enum.IntEnum):
    """Why an upload's files that fill no whole chunk yet should go out as a smaller one."""

    NO = 0  # not held back: whole chunks only
    BY_ITS_LIMITS = 1  # its unprocessed files reached PODIUM_MAX_PENDING_UPLOADS(_BYTES)
    BY_REDIS_MEMORY = 2  # Redis is above its high-water mark (other jobs may hold it there)


@dataclasses.dataclass(frozen=True)
class Segment:
    first_chunk: int
    first_index: int
    size: int


@dataclasses.dataclass(frozen=True)
class ChunkLayout:
    segments: tuple[Segment, ...]

    @classmethod
    def read(cls, chunk_size: int, layout: str = "") -> ChunkLayout:
        """From the job hash's ``chunk_size`` and ``chunk_layout`` fields."""
        later = tuple(Segment(*map(int, m.groups())) for m in _SEGMENT.finditer(layout))
        return cls((Segment(0, 0, max(1, chunk_size)), *later))

    @classmethod
    def stored(cls, chunk_size: bytes | str | None, layout: bytes | str | None) -> ChunkLayout:
        """From HMGET's answer for ``FIELDS``."""
        text = layout.decode() if isinstance(layout, bytes) else layout or ""
        return cls.read(int(chunk_size or 1), text)

    def span(self, chunk: int) -> tuple[int, int]:
        """(first index, size) of ``chunk`` (the last chunk may list fewer images)."""
        seg = [s for s in self.segments if s.first_chunk <= chunk][-1]
        return seg.first_index + (chunk - seg.first_chunk) * seg.size, seg.size

    def chunk_of(self, index: int) -> int:
        seg = [s for s in self.segments if s.first_index <= index][-1]
        return seg.first_chunk + (index - seg.first_index) // seg.size

    def count(self, total: int) -> int:
        """Chunks that ``total`` images fill (as laid out so far)."""
        return self.chunk_of(total - 1) + 1 if total > 0 else 0

    @property
    def newest_size(self) -> int:
        return self.segments[-1].size


# The same reading in Lua, for the scripts: chunk_segments(chunk_size, chunk_layout) and
# the functions above over its answer.
CHUNK_LAYOUT_LUA = """
local function chunk_segments(size, layout)
  local segs = {{0, 0, math.max(1, tonumber(size) or 1)}}
  for c, i, z in string.gmatch(layout or '', '(%d+):(%d+):(%d+)') do
    segs[#segs + 1] = {tonumber(c), tonumber(i), tonumber(z)}
  end
  return segs
end
local function chunk_span(segs, n)
  local s = segs[1]
  for k = 2, #segs do if segs[k][1] <= n then s = segs[k] end end
  return s[2] + (n - s[1]) * s[3], s[3]
end
local function chunk_of(segs, index)
  local s = segs[1]
  for k = 2, #segs do if segs[k][2] <= index then s = segs[k] end end
  return s[1] + math.floor((index - s[2]) / s[3])
end
local function chunk_count(segs, total)
  if total <= 0 then return 0 end
  return chunk_of(segs, total - 1) + 1
end
"""
