"""A stop request (SIGTERM, Ctrl-C) whose KeyboardInterrupt Python swallows still stops the run.

Python runs signal handlers between bytecodes of whatever is running; when that is a callback whose exceptions
it ignores (JAX's garbage-collection callback, a ``__del__``), the KeyboardInterrupt is lost. CI once saw a
SIGTERMed run go on to the end that way."""

from __future__ import annotations

import gc
import signal

import pytest

from plasticlab import interrupt
from plasticlab.experiments.base import RunContext
from plasticlab.training import drive

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point of the test


class _StopInsideDel:
    """Delivers a stop request where Python ignores the exception (it prints "Exception ignored in")."""

    def __del__(self) -> None:
        interrupt._request(signal.SIGTERM, None)


def _swallowed_stop_request() -> None:
    _StopInsideDel()
    gc.collect()


@pytest.fixture(autouse=True)
def no_request(monkeypatch):
    monkeypatch.setattr(interrupt, "_requested", None)


def test_a_request_swallowed_inside_del_is_kept():
    _swallowed_stop_request()  # returns normally: the KeyboardInterrupt was ignored
    assert interrupt._requested == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
        interrupt.raise_if_requested()


def test_the_driver_stops_at_the_next_call_after_a_swallowed_request():
    calls = []

    def advance(state, start, stop):
        calls.append(stop)
        if stop == 2:
            _swallowed_stop_request()
        return state + 1, None

    with pytest.raises(KeyboardInterrupt):
        drive(advance, 0, [1, 2, 3, 4], lambda s, k, out: None, progress=False)
    assert calls == [1, 2]


def test_the_unit_cache_starts_no_unit_after_a_swallowed_request(tmp_path):
    ctx = RunContext(tmp_path / "run", None, progress=False, fingerprint="f", name="t")
    assert ctx.unit("a", lambda: (_swallowed_stop_request(), 1)[1]) == 1  # the unit in progress finishes, kept
    with pytest.raises(KeyboardInterrupt):
        ctx.unit("b", lambda: 2)
    assert ctx.computed == ["a"]


def test_without_a_request_nothing_is_raised():
    interrupt.raise_if_requested()
    assert drive(lambda s, a, b: (s + 1, None), 0, [1, 2], lambda s, k, out: None, progress=False)[0] == 2
