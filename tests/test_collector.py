"""The collector keeps to young generations while fetches run, and is restored after the last."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from exporter.collector import NEVER, _YoungCollectionsOnly


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_full_collections_pause_only_during_the_block(thresholds: tuple[int, int, int]) -> None:
    policy = _YoungCollectionsOnly()
    with policy.during():
        assert gc.get_threshold() == (thresholds[0], thresholds[1], NEVER)
    assert gc.get_threshold() == thresholds


def test_restored_when_the_block_raises(thresholds: tuple[int, int, int]) -> None:
    policy = _YoungCollectionsOnly()
    with pytest.raises(RuntimeError), policy.during():
        raise RuntimeError("fetch failed")
    assert gc.get_threshold() == thresholds


def test_overlapping_fetches_restore_after_the_last(thresholds: tuple[int, int, int]) -> None:
    policy = _YoungCollectionsOnly()
    first_in, second_out = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with policy.during():
            first_in.set()
            second_out.wait(5)
            seen.append(gc.get_threshold())  # the other fetch ended; this one still runs

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with policy.during():
        pass
    second_out.set()
    thread.join(5)
    assert seen == [(thresholds[0], thresholds[1], NEVER)]
    assert gc.get_threshold() == thresholds
