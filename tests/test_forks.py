"""Work shared with forked helpers: every result, in order, errors at their turn, no child left."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from contextlib import closing
from pathlib import Path

import pdfgen
import pikepdf
import pytest

from squeezer.engines import forks
from squeezer.engines.pdf import verify

pytestmark = pytest.mark.skipif(not forks.available(), reason="forked helpers are Linux-only")


def _children() -> set[int]:
    """This process's live children (zombies count: a child not reaped is left behind)."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        found.update(int(pid) for pid in (task / "children").read_text().split())
    return found


@pytest.fixture
def no_child_left():
    before = _children()
    yield
    assert _children() - before == set()


def test_results_come_in_item_order_and_helpers_do_a_share(no_child_left):
    here = os.getpid()

    def work(i: int) -> tuple[int, int]:
        time.sleep(0.01 * (i % 3))
        return i * i, os.getpid()

    got = list(forks.shared_map(work, range(40), 3))
    assert [value for value, _ in got] == [i * i for i in range(40)]
    workers = {pid for _, pid in got}
    assert here in workers and len(workers) > 1  # the children took tickets too


def test_an_error_in_a_helper_is_raised_at_its_turn(no_child_left):
    here = os.getpid()

    def work(i: int) -> int:
        # the parent sleeps on each of its items, so the children take most of them
        if os.getpid() == here:
            time.sleep(0.05)
        elif i >= 5:
            raise ValueError(f"item {i} in a helper")
        return i

    got = []
    with pytest.raises(ValueError, match="in a helper"):
        for value in forks.shared_map(work, range(30), 2):
            got.append(value)
    assert got == list(range(len(got)))  # everything before the error, in order


def test_the_items_of_a_helper_that_died_are_done_here(tmp_path, no_child_left):
    here = os.getpid()
    died = tmp_path / "died"

    def work(i: int) -> tuple[int, int]:
        if os.getpid() == here:
            time.sleep(0.02)  # so the helper takes tickets
        elif i >= 3:
            died.write_text(str(i))
            os.kill(os.getpid(), signal.SIGKILL)  # a crash in the middle of an item
        return i, os.getpid()

    got = list(forks.shared_map(work, range(20), 2))
    assert died.exists()
    assert [i for i, _ in got] == list(range(20))
    assert got[int(died.read_text())][1] == here  # the item it died on was redone here


def test_closing_early_kills_and_reaps_the_helpers(no_child_left):
    def work(i: int) -> int:
        time.sleep(0.02)
        return i

    with closing(forks.shared_map(work, range(1000), 2)) as results:
        assert next(results) == 0
        assert _children()  # the helper is running


def test_one_process_is_a_plain_map_here():
    assert list(forks.shared_map(lambda _: os.getpid(), range(5), 1)) == [os.getpid()] * 5


# --- verification on helpers: the same verdict, whichever process looked at the page -------

@pytest.fixture
def changed_late_page(tmp_path, monkeypatch):
    """A 12-page document and a copy whose 9th page (text- and look-sampled) differs; small
    documents are checked in one process, so the byte threshold is lifted."""
    monkeypatch.setattr(verify, "FORK_BYTES", 0)
    original = tmp_path / "original.pdf"
    pdfgen.text_pdf(original, pages=12, lines=8)
    changed = tmp_path / "changed.pdf"
    with pikepdf.open(original) as pdf:
        pdf.pages[8].Contents = pdf.make_stream(pdfgen.text_ops(["an entirely different page"]))
        pdf.save(changed)
    return original, changed


@pytest.mark.parametrize("processes", [1, 2])
def test_verification_finds_a_changed_page_in_any_process(changed_late_page, processes,
                                                          no_child_left, monkeypatch):
    original, changed = changed_late_page
    forked = []
    start = forks._Helper.start
    monkeypatch.setattr(forks._Helper, "start",
                        classmethod(lambda cls, *a: forked.append(1) or start(*a)))
    reference = verify.Reference.of(original)
    assert verify.check(original, reference, 12, processes=processes).ok
    verdict = verify.check(changed, reference, 12, processes=processes)
    assert (verdict.ok, verdict.reason) == (False, "text of page 9 changed")
    assert len(forked) == 2 * (processes - 1)  # a helper per check with 2 processes


def test_verification_on_helpers_compares_the_look(changed_late_page, no_child_left):
    original, changed = changed_late_page
    reference = verify.Reference.of(original)
    assert reference is not None and 8 in reference.renders
    verdict = verify.check(changed, reference, 12, compare_text=False, min_similarity=0.99,
                           processes=2)
    assert not verdict.ok and verdict.reason.startswith("page 9 looks different (SSIM ")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Python 3.12 started warning about it")
def test_forking_beside_other_threads_does_not_warn(no_child_left):
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert list(forks.shared_map(lambda i: i * 2, range(6), 2)) == [0, 2, 4, 6, 8, 10]
    finally:
        stop.set()
        other.join()
    assert [str(w.message) for w in seen if "fork" in str(w.message)] == []
