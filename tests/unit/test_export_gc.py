"""Export collects cyclic garbage less often while it runs, and puts the collector back as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kubectl_state.core.workflows.export import _GC_GENERATION0, _fewer_garbage_collections


@pytest.fixture
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


def test_the_youngest_generation_is_collected_less_often_during_an_export(
        default_thresholds: tuple[int, int, int]) -> None:
    with _fewer_garbage_collections():
        assert gc.get_threshold() == (_GC_GENERATION0, 10, 10)
    assert gc.get_threshold() == default_thresholds


def test_the_thresholds_come_back_when_the_export_fails(default_thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), _fewer_garbage_collections():
        raise RuntimeError("the export failed")
    assert gc.get_threshold() == default_thresholds


def test_a_higher_threshold_set_by_the_caller_is_kept(default_thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(_GC_GENERATION0 * 2, 5, 5)
    with _fewer_garbage_collections():
        assert gc.get_threshold() == (_GC_GENERATION0 * 2, 5, 5)
    assert gc.get_threshold() == (_GC_GENERATION0 * 2, 5, 5)
