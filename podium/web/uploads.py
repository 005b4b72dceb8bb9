"""A folder uploaded from the browser, passed on to SubmitUpload as it arrives.

The page sends one request whose body is the files one after another, each behind a
header line: ``{"path": "a/b.jpg", "size": 1234}\\n`` then exactly ``size`` bytes. The
browser builds that body as a Blob of the File objects, so it reads the files from disk
as it sends them; this side parses it as it streams in and hands 1 MiB pieces to the
gRPC stream through a short queue (whole small files several to a message, as the CLI
sends them). Neither side holds the folder in memory.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import anyio

from podium.client.records import Job
from podium.core.errors import InvalidArgument, PodiumError, Unavailable
from podium.core.proto import podium_pb2 as pb

CHUNK_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 8192
QUEUE_CHUNKS = 8
PUT_POLL_S = 0.5


@dataclass
class FrameParser:
    """Turns the body's bytes, fed in any pieces, into FileChunks of at most CHUNK_BYTES."""

    pending: bytearray = field(default_factory=bytearray)
    path: str | None = None
    left: int = 0
    files: int = 0

    def feed(self, data: bytes) -> Iterator[pb.FileChunk]:
        self.pending += data
        while True:
            if self.path is None:
                newline = self.pending.find(b"\n")
                if newline < 0:
                    if len(self.pending) > MAX_HEADER_BYTES:
                        raise InvalidArgument("malformed upload: a file header is too long")
                    return
                self.path, self.left = _header(bytes(self.pending[:newline]))
                del self.pending[: newline + 1]
                self.files += 1
                if self.left == 0:
                    yield pb.FileChunk(path=self.path, data=b"", last=True)
                    self.path = None
                continue
            if len(self.pending) < min(self.left, CHUNK_BYTES):
                return
            take = min(self.left, CHUNK_BYTES)
            piece = bytes(self.pending[:take])
            del self.pending[:take]
            self.left -= take
            yield pb.FileChunk(path=self.path, data=piece, last=self.left == 0)
            if self.left == 0:
                self.path = None

    def finish(self) -> None:
        if self.path is not None or self.pending:
            raise InvalidArgument("the upload broke off in the middle of a file")
        if not self.files:
            raise InvalidArgument("the upload holds no file: choose a folder or some images")


def _header(line: bytes) -> tuple[str, int]:
    try:
        header = json.loads(line)
        path, size = header["path"], header["size"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("malformed upload: a file header is not {path, size}") from None
    if not isinstance(path, str) or not path or not isinstance(size, int) or size < 0:
        raise InvalidArgument("malformed upload: a file header is not {path, size}")
    return path, size


class UploadAborted(Unavailable):
    """The browser went away mid-upload: the gRPC stream is broken off, the job not finished."""


_END = object()


async def relay_upload(
    body: AsyncIterator[bytes],
    submit: Callable[[Iterator[pb.FileChunk]], Job],
    on_file: Callable[[str, bytes], None] | None = None,
    on_file_max_bytes: int = 16 * 1024**2,
) -> Job:
    """Parse ``body`` and feed ``submit`` (a blocking SubmitUpload, run in a thread) as it
    streams in; ``on_file(path, data)`` sees each whole file of at most ``on_file_max_bytes``,
    in the thread (for thumbnails): a larger one is let through without being gathered, so
    a file of any size costs the page a few MiB. Returns the job, or raises its PodiumError."""
    pieces: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    outcome: dict[str, object] = {}
    done = threading.Event()

    def chunks() -> Iterator[pb.FileChunk]:
        held: bytearray | None = bytearray()  # None: this file is too large to gather
        while True:
            item = pieces.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            if on_file is not None:
                if held is not None and len(held) + len(item.data) <= on_file_max_bytes:
                    held += item.data
                else:
                    held = None
                if item.last:
                    if held is not None:
                        on_file(item.path, bytes(held))
                    held = bytearray()
            yield item

    def run() -> None:
        try:
            outcome["job"] = submit(chunks())
        except BaseException as exc:  # noqa: BLE001 - handed to the request's coroutine
            outcome["error"] = exc
        finally:
            done.set()

    async def put(item: object) -> bool:
        """False once the call has ended (refused, or failed): stop reading."""
        while not done.is_set():
            try:
                await anyio.to_thread.run_sync(pieces.put, item, True, PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    thread = threading.Thread(target=run, name=f"podium-web-upload-{secrets.token_hex(3)}", daemon=True)
    thread.start()
    parser = FrameParser()
    try:
        async for data in body:
            for chunk in parser.feed(data):
                if not await put(chunk):
                    break
            if done.is_set():
                break
        if not done.is_set():
            parser.finish()
            await put(_END)
    except PodiumError as exc:
        await put(UploadAborted(str(exc)))
        await anyio.to_thread.run_sync(done.wait)
        raise
    except BaseException:
        await put(UploadAborted("the browser went away"))
        raise
    await anyio.to_thread.run_sync(done.wait)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["job"]  # type: ignore[return-value]
