"""What `podium submit DIR` sends: small files several to a message, large ones in chunks,
every file once, in the folder's order; and how the gateway reads such a stream back."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from gateway.servicer import _file_chunks
from podium.client import requests as upload
from podium.core.errors import InvalidArgument
from podium.core.jobs import walk_files
from podium.core.proto import podium_pb2 as pb


@pytest.fixture
def small_limits(monkeypatch):
    """Chunks of 1,000 bytes, messages of at most 2,500 bytes or 4 files."""
    monkeypatch.setattr(upload, "UPLOAD_CHUNK_BYTES", 1000)
    monkeypatch.setattr(upload, "BATCH_BYTES", 2500)
    monkeypatch.setattr(upload, "BATCH_FILES", 4)


def write(folder: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    contents = {}
    for number, (name, size) in enumerate(sizes.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        contents[name] = bytes((number + i) % 251 for i in range(size))
        path.write_bytes(contents[name])
    return contents


def chunks_of(message: pb.UploadRequest) -> list[pb.FileChunk]:
    kind = message.WhichOneof("item")
    return [message.file] if kind == "file" else list(message.files.chunks)


def files_sent(messages: list[pb.UploadRequest]) -> dict[str, bytes]:
    """The files the stream carries, joined as the gateway joins them (in stream order)."""
    joined: dict[str, bytes] = {}
    for message in messages:
        for chunk in chunks_of(message):
            joined[chunk.path] = joined.get(chunk.path, b"") + chunk.data
    return joined


def test_small_files_travel_several_to_a_message_in_the_folders_order(tmp_path, small_limits):
    contents = write(tmp_path, {f"class_{n % 2}/{n:02d}.jpg": 300 for n in range(10)})
    messages = list(upload.upload_requests(tmp_path, pb.JobSpec(name="j"), None))
    assert messages[0].WhichOneof("item") == "spec"
    body = messages[1:]
    assert [m.WhichOneof("item") for m in body] == ["files", "files", "files"]  # 4 + 4 + 2 files
    paths = [chunk.path for m in body for chunk in chunks_of(m)]
    assert paths == list(walk_files(tmp_path)) == sorted(contents)
    assert all(chunk.last for m in body for chunk in chunks_of(m))
    assert files_sent(body) == contents


def test_a_message_stays_within_its_bytes(tmp_path, small_limits):
    contents = write(tmp_path, {f"{n:02d}.png": 900 for n in range(7)})
    body = list(upload.upload_requests(tmp_path, pb.JobSpec(), None))[1:]
    assert all(sum(len(c.data) for c in chunks_of(m)) <= upload.BATCH_BYTES for m in body)
    assert [len(chunks_of(m)) for m in body] == [2, 2, 2, 1]
    assert body[-1].WhichOneof("item") == "file"  # one file alone: the message older gateways know
    assert files_sent(body) == contents


def test_a_large_file_goes_in_chunks_after_the_small_files_before_it(tmp_path, small_limits):
    contents = write(tmp_path, {"a.jpg": 100, "b.jpg": 2500, "c.jpg": 1000, "d.jpg": 50})
    body = list(upload.upload_requests(tmp_path, pb.JobSpec(), None))[1:]
    sequence = [(c.path, len(c.data), c.last) for m in body for c in chunks_of(m)]
    assert sequence == [
        ("a.jpg", 100, True),
        ("b.jpg", 1000, False),
        ("b.jpg", 1000, False),
        ("b.jpg", 500, True),
        ("c.jpg", 1000, False),  # exactly a chunk: an empty last chunk ends it, as before
        ("c.jpg", 0, True),
        ("d.jpg", 50, True),
    ]
    assert files_sent(body) == contents


def test_progress_is_reported_per_file_once_its_message_was_taken(tmp_path, small_limits):
    write(tmp_path, {"a.jpg": 10, "b.jpg": 20, "c.jpg": 1500, "d.jpg": 30})
    reported: list[tuple[str, int]] = []
    stream = upload.upload_requests(tmp_path, pb.JobSpec(), lambda path, sent: reported.append((path, sent)))
    next(stream)  # the spec
    first = next(stream)  # a and b, packed: nothing reported before the message was taken
    assert [c.path for c in chunks_of(first)] == ["a.jpg", "b.jpg"] and reported == []
    list(stream)
    assert reported == [("a.jpg", 10), ("b.jpg", 20), ("c.jpg", 1500), ("d.jpg", 30)]


def test_held_files_are_skipped_and_counted(tmp_path, small_limits):
    write(tmp_path, {"a.jpg": 10, "b.jpg": 20, "c.jpg": 30})
    reported: list[tuple[str, int]] = []
    body = list(upload.upload_requests(tmp_path, pb.JobSpec(), lambda *r: reported.append(r), held={"b.jpg"}))[1:]
    assert [c.path for m in body for c in chunks_of(m)] == ["a.jpg", "c.jpg"]
    assert sorted(reported) == [("a.jpg", 10), ("b.jpg", 0), ("c.jpg", 30)]


def test_an_unreadable_file_travels_as_its_error_among_the_others(tmp_path, small_limits, monkeypatch):
    write(tmp_path, {"a.jpg": 10, "b.jpg": 20, "c.jpg": 30})
    real_open = builtins.open

    def refusing_open(path, *args, **kwargs):
        if str(path).endswith("b.jpg"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    body = list(upload.upload_requests(tmp_path, pb.JobSpec(), None))[1:]
    chunks = [c for m in body for c in chunks_of(m)]
    assert [(c.path, c.last, c.client_error) for c in chunks] == [
        ("a.jpg", True, ""),
        ("b.jpg", True, "Permission denied"),
        ("c.jpg", True, ""),
    ]


def relayed(pieces: list[tuple[str, int, bool]]) -> list[pb.UploadRequest]:
    """What submit_chunks sends for these (path, bytes, last) pieces, as a browser's upload yields them."""
    chunks = [pb.FileChunk(path=path, data=b"x" * size, last=last) for path, size, last in pieces]
    messages = list(upload.chunk_requests(pb.JobSpec(name="web"), chunks))
    assert messages[0].spec.name == "web"
    return messages[1:]


def test_relayed_whole_files_travel_several_to_a_message(small_limits):
    body = relayed([(f"{n}.jpg", 300, True) for n in range(10)])
    assert [len(chunks_of(m)) for m in body] == [4, 4, 2]
    assert [c.path for m in body for c in chunks_of(m)] == [f"{n}.jpg" for n in range(10)]


def test_a_relayed_files_pieces_go_alone_in_order_even_its_small_last(small_limits):
    pieces = [("a", 10, True), ("b", 1000, False), ("b", 5, True), ("c", 20, True), ("d", 0, True)]
    body = relayed(pieces)
    assert [[(c.path, len(c.data), c.last) for c in chunks_of(m)] for m in body] == [
        [("a", 10, True)],
        [("b", 1000, False)],
        [("b", 5, True)],  # the end of a file begun before: never held back with the next
        [("c", 20, True), ("d", 0, True)],
    ]
    assert body[0].WhichOneof("item") == "file"


def test_a_relayed_message_stays_within_its_bytes(small_limits):
    body = relayed([(f"{n}.png", 900, True) for n in range(5)])
    assert [len(chunks_of(m)) for m in body] == [2, 2, 1]
    assert all(sum(len(c.data) for c in chunks_of(m)) <= upload.BATCH_BYTES for m in body)


class _Watch:
    def received(self, requests):
        yield from requests


def test_the_gateway_reads_a_packed_message_as_its_chunks_in_order():
    stream = [
        pb.UploadRequest(file=pb.FileChunk(path="a", data=b"1", last=True)),
        pb.UploadRequest(
            files=pb.FileChunks(
                chunks=[
                    pb.FileChunk(path="b", data=b"2", last=True),
                    pb.FileChunk(path="c", last=True, client_error="unreadable"),
                ]
            )
        ),
        pb.UploadRequest(file=pb.FileChunk(path="d", data=b"4", last=False)),
    ]
    chunks = list(_file_chunks(iter(stream), _Watch()))
    assert [(c.path, c.data, c.last, c.client_error) for c in chunks] == [
        ("a", b"1", True, ""),
        ("b", b"2", True, ""),
        ("c", b"", True, "unreadable"),
        ("d", b"4", False, ""),
    ]


def test_the_gateway_refuses_a_second_spec():
    stream = [pb.UploadRequest(file=pb.FileChunk(path="a", last=True)), pb.UploadRequest(spec=pb.JobSpec())]
    with pytest.raises(InvalidArgument, match="only the first message"):
        list(_file_chunks(iter(stream), _Watch()))
