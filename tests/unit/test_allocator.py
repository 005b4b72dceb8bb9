"""glibc malloc settings (podium.core.allocator): applied to a worker's pool process, handed
to Triton's stub through its environment, and never over what the operator set."""

from __future__ import annotations

import ctypes.util

import pytest

from podium.cluster.triton import tritonserver_env
from podium.core import allocator
from podium.core.allocator import MALLOC_ENVIRONMENT, malloc_environment, tune_malloc


def test_the_settings_keep_a_requests_pixels_in_the_heap():
    # 64 images of 224x224x3 (the largest request) in one block below the mapping threshold.
    assert 64 * 224 * 224 * 3 <= allocator.MMAP_THRESHOLD_BYTES <= allocator.TRIM_THRESHOLD_BYTES
    assert MALLOC_ENVIRONMENT == {
        "MALLOC_MMAP_THRESHOLD_": str(allocator.MMAP_THRESHOLD_BYTES),
        "MALLOC_TRIM_THRESHOLD_": str(allocator.TRIM_THRESHOLD_BYTES),
    }


def test_what_the_operator_set_wins():
    assert malloc_environment({}) == MALLOC_ENVIRONMENT
    assert malloc_environment({"MALLOC_MMAP_THRESHOLD_": "131072"}) == {
        "MALLOC_TRIM_THRESHOLD_": str(allocator.TRIM_THRESHOLD_BYTES)
    }


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library found to load")
def test_tuning_applies_on_glibc_and_not_over_the_operators_setting(monkeypatch):
    for name in MALLOC_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert tune_malloc() is True  # the test machines run glibc
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert tune_malloc() is False


def test_tritonserver_gets_the_settings_unless_already_set(monkeypatch):
    for name in MALLOC_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert MALLOC_ENVIRONMENT.items() <= tritonserver_env().items()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert "MALLOC_MMAP_THRESHOLD_" not in tritonserver_env()  # the inherited value stays
