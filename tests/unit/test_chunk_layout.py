"""A job's chunk layout: Python's reading and the scripts' Lua agree chunk by chunk."""

from __future__ import annotations

import fakeredis
import pytest

from podium.stores.jobstore.chunk_layout import CHUNK_LAYOUT_LUA, ChunkLayout

LAYOUTS = [
    (16, ""),
    (1, ""),
    (16, "3:48:256"),
    (16, "3:48:256 5:560:1024"),
    (2, "1:2:4 2:6:8 4:22:32"),
    (16, "0:0:64"),  # grown before the first chunk went out
]

PROBE = (
    CHUNK_LAYOUT_LUA
    + """
local segs = chunk_segments(ARGV[1], ARGV[2])
local out = {}
for n = 0, 12 do
  local first, size = chunk_span(segs, n)
  out[#out + 1] = first .. ':' .. size
end
for index = 0, 3000, 7 do out[#out + 1] = tostring(chunk_of(segs, index)) end
for total = 0, 3000, 13 do out[#out + 1] = tostring(chunk_count(segs, total)) end
return out
"""
)


def python_probe(layout: ChunkLayout) -> list[str]:
    spans = [f"{first}:{size}" for first, size in map(layout.span, range(13))]
    return (
        spans
        + [str(layout.chunk_of(index)) for index in range(0, 3001, 7)]
        + [str(layout.count(total)) for total in range(0, 3001, 13)]
    )


@pytest.mark.parametrize(("size", "text"), LAYOUTS)
def test_lua_and_python_lay_chunks_out_alike(size, text):
    lua = fakeredis.FakeRedis().eval(PROBE, 0, size, text)
    assert [answer.decode() for answer in lua] == python_probe(ChunkLayout.read(size, text))


def test_chunks_tile_the_images_without_gaps_or_overlaps():
    layout = ChunkLayout.read(16, "3:48:256 5:560:1024")
    assert [layout.span(c) for c in range(7)] == [
        (0, 16),
        (16, 16),
        (32, 16),
        (48, 256),
        (304, 256),
        (560, 1024),
        (1584, 1024),
    ]
    for chunk in range(7):
        first, size = layout.span(chunk)
        assert {layout.chunk_of(i) for i in range(first, first + size)} == {chunk}
    assert layout.count(0) == 0 and layout.count(48) == 3 and layout.count(49) == 4 and layout.count(561) == 6
    assert layout.newest_size == 1024


def test_a_layout_is_read_from_the_job_hash_as_stored():
    assert ChunkLayout.stored(b"8", None) == ChunkLayout.read(8)
    assert ChunkLayout.stored(b"8", b" 2:16:32") == ChunkLayout.read(8, "2:16:32")
    assert ChunkLayout.stored(None, None).span(3) == (3, 1)
