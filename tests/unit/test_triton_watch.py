"""The supervisor's watch over a Triton that runs but fails every request to a model."""

from __future__ import annotations

import json
from unittest import mock

from podium.cluster.triton_watch import TritonWatch, model_request_counts

MODEL = "resnet50_sports:1"


def feed(watch: TritonWatch, samples: list[tuple[float, tuple[int, int]]]) -> list[str | None]:
    return [watch.wedged(t, {MODEL: counts, "other:1": (0, 0)}) for t, counts in samples]


def test_only_failures_for_a_whole_window_is_a_wedge():
    watch = TritonWatch(window_s=30)
    said = feed(watch, [(0, (100, 0)), (10, (100, 2)), (20, (100, 5)), (29, (100, 9)), (30, (100, 12))])
    assert said == [None, None, None, None, MODEL]


def test_one_success_in_the_window_is_no_wedge():
    watch = TritonWatch(window_s=30)
    said = feed(watch, [(0, (100, 0)), (10, (100, 4)), (20, (101, 8)), (30, (101, 12)), (45, (101, 16))])
    assert said == [None] * 5
    # From the last success on, a whole window of failures again is one.
    assert feed(watch, [(50, (101, 20))]) == [MODEL]


def test_a_model_nobody_asks_and_a_few_failures_are_no_wedge():
    watch = TritonWatch(window_s=30, min_failures=3)
    assert feed(watch, [(0, (5, 0)), (40, (5, 0)), (80, (5, 2))]) == [None, None, None]


def test_a_restarted_triton_starts_the_window_again():
    watch = TritonWatch(window_s=30)
    # The counts fell: a new process (the supervisor restarted a dead one); its failures count from there.
    said = feed(watch, [(0, (100, 0)), (20, (100, 9)), (25, (0, 0)), (40, (0, 6)), (54, (0, 9))])
    assert said == [None] * 5
    assert feed(watch, [(56, (0, 12))]) == [MODEL]


def test_the_window_doubles_after_each_restart_for_a_wedge_until_an_answer():
    watch = TritonWatch(window_s=30, max_window_s=100)
    watch.restarted()
    assert watch.window == 60
    watch.restarted()
    watch.restarted()
    assert watch.window == 100
    assert feed(watch, [(0, (0, 0)), (60, (0, 20))]) == [None, None]  # within the longer window
    assert feed(watch, [(70, (1, 20))]) == [None]
    assert watch.window == 30


def test_counts_are_read_from_the_statistics_api():
    stats = {
        "model_stats": [
            {
                "name": "resnet50_sports",
                "version": "1",
                "inference_stats": {"success": {"count": 7}, "fail": {"count": 2}},
            },
            {"name": "idle", "version": "3", "inference_stats": {"success": {}, "fail": {}}},
        ]
    }
    response = mock.MagicMock()
    response.__enter__.return_value = response
    response.read.return_value = json.dumps(stats).encode()
    with mock.patch("urllib.request.urlopen", return_value=response) as urlopen:
        assert model_request_counts(8000) == {MODEL: (7, 2), "idle:3": (0, 0)}
    assert urlopen.call_args.args[0] == "http://127.0.0.1:8000/v2/models/stats"
