"""Stop requests that cannot be lost.

Python runs a signal handler between bytecodes of whatever code is running, so a ``KeyboardInterrupt`` raised
there can land in a callback whose exceptions Python ignores (JAX's garbage-collection callback, a
``__del__``): the run would go on as if the signal never came. The handler here therefore also records the
request, and the driver and the unit cache call ``raise_if_requested`` between compiled calls and units.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested: int | None = None  # the signal number of a stop request, once one came


def _request(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = signum
    raise KeyboardInterrupt


def install() -> None:
    """SIGTERM (``kill``, ``timeout``) and Ctrl-C end the run as Ctrl-C does, at the latest at the next
    compiled call or unit boundary. Only from the main thread (elsewhere Python refuses signal handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _request)
        signal.signal(signal.SIGINT, _request)


def raise_if_requested() -> None:
    """Raise ``KeyboardInterrupt`` if a stop request came and its first ``KeyboardInterrupt`` was swallowed."""
    if _requested is not None:
        raise KeyboardInterrupt
