"""Pixels to a Triton on this machine through system shared memory instead of the wire.

A request of 16 images carries 2.4 MB that the client serialises into protobuf and Triton
parses again (~0.6 CPU-ms per image on the worker's side alone, measured). In shared memory
the worker writes the pixels once and the request names where they are: tritonclient's
system shared memory API (register a region once, then refer to it by name). The regions
are files in /dev/shm made here (tritonclient's helper would start Python's resource
tracker process in every worker).

- A process owns a few regions (``podium-PID-TOKEN-N``), all of one size; a request takes a
  free one and gives it back only after its response has arrived, so no request ever
  reads pixels that the next one is writing.
- Regions are registered with Triton on first use. A Triton that restarted has forgotten
  them: a request that finds its region unknown registers them again and is sent once more.
- A Triton that cannot open them (another machine, another IPC namespace) turns them off
  for the process: its requests go over the wire, as to a remote Triton.
- ``close`` unregisters and unlinks them; what a killed process left, in /dev/shm and in
  Triton, is swept by the next process that sets up its own.
"""

from __future__ import annotations

import ipaddress
import logging
import mmap
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
PREFIX = "podium-"
_NAME = re.compile(r"^podium-(\d+)-[0-9a-f]+-\d+$")
# One 224x224 RGB image; a process's first request sizes its slots at least this large.
_DEFAULT_IMAGE_BYTES = 224 * 224 * 3
# Triton's words when a request names a region it does not know (it restarted).
_FORGOTTEN = ("unable to find", "not found", "no such", "invalid shared memory")


def is_local(url: str) -> bool:
    """Whether ``url`` (host:port) names this machine: localhost or a loopback address."""
    host = url.rsplit(":", 1)[0] if url.count(":") == 1 or url.startswith("[") else url
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Slot:
    """One region: a file in /dev/shm (what POSIX shm_open names, which Triton opens), mapped here."""

    name: str
    size: int
    memory: mmap.mmap

    @classmethod
    def create(cls, name: str, size: int, shm_dir: Path = SHM_DIR) -> Slot:
        # Owner-only: a Triton running as another user cannot open it and gets pixels by gRPC.
        fd = os.open(shm_dir / name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            # Reserved now: a full /dev/shm fails here (ENOSPC), not as SIGBUS at a later write.
            os.posix_fallocate(fd, 0, size)
            memory = mmap.mmap(fd, size)
        except BaseException:
            os.unlink(shm_dir / name)
            raise
        finally:
            os.close(fd)
        return cls(name, size, memory)

    @property
    def key(self) -> str:
        return "/" + self.name

    def write(self, pixels: np.ndarray | list[np.ndarray]) -> None:
        """A request's pixels into the region: an array at once, or a list of arrays of one shape
        and dtype each into its row, with no stacked copy first. ``triton.request_rows`` checked
        the shapes (copyto would broadcast a smaller array into a row)."""
        if isinstance(pixels, np.ndarray):
            np.copyto(np.ndarray(pixels.shape, pixels.dtype, buffer=self.memory), pixels)
            return
        rows = np.ndarray((len(pixels), *pixels[0].shape), pixels[0].dtype, buffer=self.memory)
        for row, image in zip(rows, pixels, strict=True):
            np.copyto(row, image)

    def destroy(self, shm_dir: Path = SHM_DIR) -> None:
        self.memory.close()
        (shm_dir / self.name).unlink(missing_ok=True)


class SharedMemorySlots:
    """A process's shared-memory regions for requests to one Triton."""

    def __init__(
        self,
        url: str,
        slots: int,
        images_per_request: int,
        timeout_s: float,
        client: grpcclient.InferenceServerClient | None = None,
    ) -> None:
        self._client = client or grpcclient.InferenceServerClient(url)
        self._count = max(1, slots)
        self._images = max(1, images_per_request)
        self._timeout_s = timeout_s
        self._token = secrets.token_hex(4)
        self._slots: list[Slot] = []
        self._free: list[Slot] = []
        self._registered = False
        self._off = False
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)

    @property
    def off(self) -> bool:
        return self._off

    def take(self, nbytes: int) -> Slot | None:
        """A free region of at least ``nbytes`` for one request (waits for one), to be given
        back once its response is in; None when the request goes over the wire (too large,
        or shared memory is off). Raises InferenceServerException while Triton is away."""
        with self._returned:
            if self._off:
                return None
            if not self._slots:
                self._create(nbytes)
                if self._off:
                    return None
            if nbytes > self._slots[0].size:
                return None
            if not self._registered:
                self._register()
                if self._off:
                    return None
            self._returned.wait_for(lambda: bool(self._free))
            return self._free.pop()

    def give_back(self, slot: Slot) -> None:
        with self._returned:
            if slot in self._slots:  # not closed meanwhile
                self._free.append(slot)
                self._returned.notify()

    def forgotten(self, exc: InferenceServerException) -> bool:
        """Whether Triton refused a request because it does not know the region (it restarted)."""
        message = (exc.message() or "").lower()
        return "shared memory" in message and any(word in message for word in _FORGOTTEN)

    def register_again(self) -> None:
        with self._lock:
            self._registered = False
            self._register()

    def close(self) -> None:
        with self._lock:
            slots, self._slots, self._free = self._slots, [], []
            registered, self._registered = self._registered, False
        for slot in slots:
            if registered:
                try:
                    self._client.unregister_system_shared_memory(slot.name, client_timeout=self._timeout_s)
                except InferenceServerException:
                    pass  # Triton is gone: it forgot the region; the next sweep also catches it
            slot.destroy()
        self._client.close()

    # --- inside ----------------------------------------------------------------------------

    def _create(self, nbytes: int) -> None:
        sweep_stale(self._client, self._timeout_s)
        size = max(nbytes, self._images * _DEFAULT_IMAGE_BYTES)
        try:
            for number in range(self._count):
                self._slots.append(Slot.create(f"{PREFIX}{os.getpid()}-{self._token}-{number}", size))
        except OSError as exc:
            log.warning("cannot make shared memory for Triton (%s); sending pixels over gRPC", exc)
            for slot in self._slots:
                slot.destroy()
            self._slots, self._off = [], True
            return
        self._free = list(self._slots)

    def _register(self) -> None:
        """Register every slot (the lock is held). A Triton that is away raises, converted by
        the caller's retry; one that cannot open the regions turns shared memory off."""
        for slot in self._slots:
            try:
                self._client.register_system_shared_memory(
                    slot.name, slot.key, slot.size, client_timeout=self._timeout_s
                )
            except InferenceServerException as exc:
                message = (exc.message() or "").lower()
                if "already" in message:
                    continue  # registered before Triton's answer to an earlier try was lost
                if "unavailable" in str(exc.status() or "").lower() or "deadline" in str(exc.status() or "").lower():
                    raise
                log.warning("Triton cannot use this worker's shared memory (%s); sending pixels over gRPC", exc)
                self._off = True
                return
        self._registered = True
        log.info("%d shared-memory regions of %d bytes registered with Triton", len(self._slots), self._slots[0].size)


def sweep_stale(client: grpcclient.InferenceServerClient, timeout_s: float, shm_dir: Path = SHM_DIR) -> list[str]:
    """Remove the regions of processes that are gone: their files, and Triton's registrations;
    returns their names."""
    gone: set[str] = set()
    for path in shm_dir.glob(PREFIX + "*"):
        if _owner_gone(path.name):
            path.unlink(missing_ok=True)
            gone.add(path.name)
    try:
        status = client.get_system_shared_memory_status(as_json=True, client_timeout=timeout_s)
        for name in (status or {}).get("regions", {}):
            if _owner_gone(name):
                client.unregister_system_shared_memory(name, client_timeout=timeout_s)
                gone.add(name)
    except InferenceServerException as exc:
        log.debug("could not sweep Triton's shared memory registrations: %s", exc)
    return sorted(gone)


def _owner_gone(name: str) -> bool:
    match = _NAME.match(name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
