"""Noticing an embedded Triton that runs but can no longer answer.

The Python backend runs each model instance in a stub process. After a freeze (SIGSTOP
and SIGCONT of Triton's process group, as a paused machine or container gets) tritonserver
often aborts, and the supervisor restarts it as any dead child; but now and then it lives
on with a stub it calls "not healthy" and fails every request to that model for good:
this backend version never restarts a stub. The workers wait for Triton as for an outage,
and nothing ends it. ``TritonWatch`` reads Triton's statistics instead: a model whose
failed requests grew while none succeeded for ``window_s`` is wedged, and the supervisor
restarts Triton.
"""

from __future__ import annotations

import json
import urllib.request
from collections import deque
from dataclasses import dataclass, field

# (succeeded, failed) inference requests of each model version since Triton started.
Counts = dict[str, tuple[int, int]]

WEDGED_AFTER_S = 30.0
PROBE_INTERVAL_S = 5.0


def model_request_counts(http_port: int, timeout_s: float = 2.0) -> Counts:
    """Each model version's (succeeded, failed) requests, from Triton's statistics API;
    OSError or ValueError when Triton does not answer it."""
    url = f"http://127.0.0.1:{http_port}/v2/models/stats"
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        stats = json.load(response)
    counts: Counts = {}
    for model in stats.get("model_stats", []):
        inference = model.get("inference_stats", {})
        succeeded = int(inference.get("success", {}).get("count", 0))
        failed = int(inference.get("fail", {}).get("count", 0))
        counts[f"{model.get('name')}:{model.get('version')}"] = (succeeded, failed)
    return counts


@dataclass
class TritonWatch:
    """Samples of Triton's counts; ``wedged`` names a model that failed every request, at
    least ``min_failures`` of them, over the last ``window`` seconds (a model nobody asks is
    never wedged; a frozen Triton answers no sample and is left to its freeze).

    After each restart for a wedge the window doubles (up to ``max_window_s``) until a
    request succeeds again: a model that fails every request for another reason (a broken
    export) does not have Triton restarted every half minute."""

    window_s: float = WEDGED_AFTER_S
    max_window_s: float = 600.0
    min_failures: int = 3
    window: float = field(init=False)
    _samples: deque[tuple[float, Counts]] = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        self.window = self.window_s

    def wedged(self, now: float, counts: Counts) -> str | None:
        if self._samples:
            last = self._samples[-1][1]
            if _went_back(last, counts):
                self._samples.clear()  # a new Triton: its counts start again
            elif any(counts[model][0] > last.get(model, (0, 0))[0] for model in counts):
                self.window = self.window_s  # answers again
        self._samples.append((now, counts))
        # Keep one sample at least a window old, and none older than that one.
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        since, first = self._samples[0]
        if now - since < self.window:
            return None
        for model, (succeeded, failed) in counts.items():
            succeeded_then, failed_then = first.get(model, (0, 0))
            if succeeded == succeeded_then and failed - failed_then >= self.min_failures:
                return model
        return None

    def restarted(self) -> None:
        """Triton was restarted for a wedge: start again, with a longer window."""
        self._samples.clear()
        self.window = min(self.window * 2, self.max_window_s)


def _went_back(before: Counts, after: Counts) -> bool:
    """Whether any count fell: Triton restarted between the samples."""
    for model, (succeeded, failed) in before.items():
        succeeded_now, failed_now = after.get(model, (0, 0))
        if succeeded_now < succeeded or failed_now < failed:
            return True
    return False
