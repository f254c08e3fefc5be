"""The collector keeps to young generations while fetches run, and is restored after the last;
what a command imports is frozen."""

from __future__ import annotations

import gc
import importlib
import sys
import threading
from collections.abc import Iterator

import pytest

from exporter.collector import NEVER, _YoungCollectionsOnly, imports_frozen


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


class _Made:
    """An object the collector tracks (an instance with a __dict__)."""


def _import_anew(name: str) -> None:
    sys.modules.pop(name, None)
    importlib.import_module(name)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Nothing frozen before the test, and nothing it froze left so after it."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_imports_frozen_pauses_collections_then_freezes_what_was_made() -> None:
    assert gc.isenabled()
    with imports_frozen():
        assert not gc.isenabled()
        _import_anew("colorsys")
        made = [_Made() for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)


@pytest.mark.usefixtures("unfrozen")
def test_imports_frozen_freezes_nothing_when_nothing_was_imported() -> None:
    """A process that runs commands again (tests call `main` many times) freezes once."""
    with imports_frozen():
        made = [_Made() for _ in range(1000)]
    assert gc.get_freeze_count() == 0 and len(made) == 1000


@pytest.mark.usefixtures("unfrozen")
def test_imports_frozen_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with imports_frozen():
            _import_anew("colorsys")
        assert not gc.isenabled()
    finally:
        gc.enable()
