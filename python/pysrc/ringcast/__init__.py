"""ringcast: zero-copy shared-memory publish/subscribe for Linux.

A publisher writes messages into a ring in a named POSIX shared-memory segment;
subscribers in other processes (Python, Rust, C, C++) attach by name and read the
messages in place. A topic has one publisher, or up to ``max_publishers`` of them, each
writing its own lane (``Sample.publisher`` says whose a message is). A ``Block`` sample supports the buffer protocol without a copy, so
``numpy.frombuffer(sample, dtype)`` is a view of the slot itself.

>>> import ringcast
>>> pub = ringcast.Publisher("doc-demo", slots=8, slot_size=64, prefix="rcdoctest")
>>> sub = ringcast.Subscriber("doc-demo", prefix="rcdoctest")
>>> pub.send(b"hello")
0
>>> with sub.recv(timeout=1.0) as s:
...     bytes(s), s.seq
(b'hello', 0)
>>> pub.close()
"""

import asyncio as _asyncio
import threading as _threading
import time as _time

from . import _ringcast
from ._ringcast import (
    AlreadyExists,
    Busy,
    Closed,
    Corrupt,
    Disconnected,
    Error,
    Evicted,
    Full,
    InvalidConfig,
    InvalidName,
    Lagged,
    Loan,
    Mismatch,
    NotASegment,
    NotFound,
    PermissionDenied,
    Publisher,
    PublishersFull,
    UntrustedOwner,
    ResourceExhausted,
    Sample,
    Timeout,
    TooLarge,
    TypeMismatch,
    __version__,
)


def _resolve(fut):
    if not fut.done():
        fut.set_result(None)


class Subscriber(_ringcast.Subscriber):
    __doc__ = _ringcast.Subscriber.__doc__

    async def recv_async(self):
        """The next message, awaited on the running asyncio loop without blocking it.

        The process's ringcast reactor thread (one per process, whatever the number of
        subscribers) wakes the loop when a message may be there. Raises as ``recv``.
        Cancel-safe: a cancelled ``recv_async`` consumes nothing.
        """
        loop = _asyncio.get_running_loop()
        while True:
            fut = loop.create_future()

            def wake(fut=fut):  # runs on the reactor thread
                loop.call_soon_threadsafe(_resolve, fut)

            sample = self._poll_recv(wake)
            if sample is not None:
                return sample
            try:
                await fut
            except _asyncio.CancelledError:
                self._disarm()
                raise


class WaitSet:
    """One thread waits on several subscribers at once.

    ``add(sub)`` / ``remove(sub)``; ``wait(timeout=None)`` returns the members a receive
    would not block on (a message, a lag report, the end), ``[]`` after the timeout.
    Receive from them with ``try_recv()``. Every member must have released its sample
    before ``wait`` (``Busy`` otherwise). The waiting is done by the process's ringcast
    reactor thread (futex_waitv on every member's topic); ``wait`` releases the GIL and
    Ctrl-C interrupts it.
    """

    def __init__(self):
        self._members = []
        self._bell = _threading.Event()

    def add(self, sub):
        if any(m is sub for m in self._members):
            raise ValueError("this subscriber is in the wait set already")
        self._members.append(sub)

    def remove(self, sub):
        for i, m in enumerate(self._members):
            if m is sub:
                del self._members[i]
                sub._disarm()
                return
        raise ValueError("this subscriber is not in the wait set")

    def __len__(self):
        return len(self._members)

    def wait(self, timeout=None):
        if not self._members and timeout is None:
            raise ValueError("an empty wait set without a timeout would wait for ever")
        deadline = None if timeout is None else _time.monotonic() + timeout
        ring = self._bell.set
        try:
            while True:
                self._bell.clear()
                ready = [m for m in self._members if m._poll_ready(ring)]
                if ready:
                    return ready
                left = None if deadline is None else deadline - _time.monotonic()
                if left is not None and left <= 0:
                    return []
                # The reactor rings when a member may be ready, and once per liveness
                # slice (so a member whose publisher died is seen to be ready).
                self._bell.wait(left)
        finally:
            for m in self._members:
                m._disarm()

__all__ = [
    "AlreadyExists",
    "Busy",
    "Closed",
    "Corrupt",
    "Disconnected",
    "Error",
    "Evicted",
    "Full",
    "InvalidConfig",
    "InvalidName",
    "Lagged",
    "Loan",
    "Mismatch",
    "NotASegment",
    "NotFound",
    "PermissionDenied",
    "Publisher",
    "PublishersFull",
    "UntrustedOwner",
    "ResourceExhausted",
    "Sample",
    "Subscriber",
    "Timeout",
    "TooLarge",
    "TypeMismatch",
    "WaitSet",
    "__version__",
]
