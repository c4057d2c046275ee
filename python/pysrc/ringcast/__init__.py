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
    AlreadyServed,
    Busy,
    ClientFull,
    ClientGone,
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
    NoResponse,
    CallFailed,
    NoServer,
    NotASegment,
    NotFound,
    PermissionDenied,
    Publisher,
    PublishersFull,
    UntrustedOwner,
    Request,
    ResourceExhausted,
    Response,
    Sample,
    Timeout,
    TooLarge,
    TooManyClients,
    TooManyInFlight,
    TypeMismatch,
    __version__,
)


def _resolve(fut):
    if not fut.done():
        fut.set_result(None)


class Subscriber(_ringcast.Subscriber):
    __doc__ = _ringcast.Subscriber.__doc__

    def close(self):
        """Detaches now (see the class docs); pending ``recv_async`` waits raise
        ``Closed``."""
        _close_and_wake(self, _ringcast.Subscriber.close)

    def __exit__(self, *exc):
        self.close()
        return False

    async def recv_async(self):
        """The next message, awaited on the running asyncio loop without blocking it.

        The process's ringcast reactor thread (one per process, whatever the number of
        subscribers) wakes the loop when a message may be there. Raises as ``recv``.
        Cancel-safe: a cancelled ``recv_async`` consumes nothing. Several awaits on one
        subscriber at once are each woken and poll in turn; as for any receive, a poll
        that finds the next message first releases the sample the subscriber holds (or
        raises ``Busy`` while a view of it is alive).
        """

        def poll(wake):
            sample = self._poll_recv(wake)
            return _PENDING if sample is None else sample

        return await _poll_until(self, poll, None)


class _Waiters:
    """The asyncio waits on one handle (a server or a client). The process's reactor keeps
    one waker per handle, so every wait arms it with the same ``ring``, which wakes them
    all (each polls again, and the one whose turn it is re-arms it)."""

    def __init__(self):
        self.waiting = {}  # key -> (loop, future, call or None)

    def ring(self):  # on the reactor thread, or the loop's
        for loop, fut, _ in list(self.waiting.values()):
            _wake(loop, fut)


def _wake(loop, fut):
    """Resolves ``fut`` on ``loop``; nothing if that loop is closed (its wait can never
    resume, and must not keep the others from being woken)."""
    try:
        loop.call_soon_threadsafe(_resolve, fut)
    except RuntimeError:
        pass


def _waiters(handle):
    w = handle.__dict__.get("_ringcast_waiters")
    if w is None:
        w = handle.__dict__["_ringcast_waiters"] = _Waiters()
    return w


_PENDING = object()


async def _poll_until(handle, poll, deadline, call=None):
    """Polls ``poll(wake)`` (``_PENDING``: not yet, the reactor armed to call ``wake``) on
    the running loop until it has a result; ``deadline`` (the loop's clock, or ``None``)
    raises ``Timeout`` after one last poll. A cancelled (or timed-out) wait consumes
    nothing, and the last wait on ``handle`` to leave withdraws the arm."""
    loop = _asyncio.get_running_loop()
    waiters = _waiters(handle)
    key = object()
    try:
        while True:
            fut = loop.create_future()
            # A wait whose loop was closed under it never resumes to leave: drop it.
            for k, (lp, _, _) in list(waiters.waiting.items()):
                if lp.is_closed():
                    waiters.waiting.pop(k, None)
            waiters.waiting[key] = (loop, fut, call)
            got = poll(waiters.ring)
            if call is not None and len(waiters.waiting) > 1:
                # This receive may have set aside responses for other calls awaited now:
                # their waiters look again.
                for k, (lp, f, c) in list(waiters.waiting.items()):
                    if k is not key and c is not None and handle._has_set_aside(c):
                        _wake(lp, f)
            if got is not _PENDING:
                return got
            if deadline is not None and loop.time() >= deadline:
                raise Timeout("nothing within the timeout")
            timer = None if deadline is None else loop.call_at(deadline, _resolve, fut)
            try:
                await fut
            finally:
                if timer is not None:
                    timer.cancel()
    finally:
        waiters.waiting.pop(key, None)
        if not waiters.waiting:
            handle._disarm()  # never raises


def _close_and_wake(handle, close):
    """Closes ``handle`` and wakes its pending async waits: each polls again and raises
    ``Closed`` instead of waiting for a wake-up that can no longer come."""
    close(handle)
    w = handle.__dict__.get("_ringcast_waiters")
    if w is not None:
        w.ring()


def _deadline(timeout):
    if timeout is None:
        return None
    if not timeout >= 0:
        raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout}")
    return _asyncio.get_running_loop().time() + timeout


class Server(_ringcast.Server):
    __doc__ = _ringcast.Server.__doc__

    def close(self):
        """Closes the server (its clients' calls end with ``Disconnected``); pending
        ``recv_async`` waits raise ``Closed``."""
        _close_and_wake(self, _ringcast.Server.close)

    def __exit__(self, *exc):
        self.close()
        return False

    async def recv_async(self, timeout=None):
        """``recv`` awaited on the running asyncio loop without blocking it: the process's
        ringcast reactor thread wakes the loop when a request may be there (greetings of
        new clients are answered on the way). ``timeout`` in seconds (``None``: for ever)
        raises ``Timeout``; a closed server raises ``Closed``. The previous request's
        bytes are released (``Busy`` while a view of them is alive). Cancel-safe: a
        cancelled ``recv_async`` consumes no request."""
        deadline = _deadline(timeout)

        def poll(wake):
            r = self._poll_recv(wake)
            return _PENDING if r is None else r

        return await _poll_until(self, poll, deadline)


class Client(_ringcast.Client):
    __doc__ = _ringcast.Client.__doc__

    def close(self):
        """Disconnects; pending ``call_async`` / ``recv_async`` waits raise ``Closed``."""
        _close_and_wake(self, _ringcast.Client.close)

    def __exit__(self, *exc):
        self.close()
        return False

    def stream(self, data, timeout=None):
        """Sends ``data`` and yields each response of its stream until the server ends
        it; ``timeout`` bounds each wait (``Timeout``). Each response is released when the
        next is received: copy what you keep."""
        call = self.send(data, timeout)
        try:
            while True:
                response = self.recv(call, timeout)
                if response is None:
                    return
                yield response
        finally:
            self.cancel(call)

    async def recv_async(self, call, timeout=None):
        """``recv`` awaited on the running asyncio loop without blocking it: the next
        response to ``call`` (from ``send``), ``None`` once its stream has ended. The
        process's ringcast reactor thread wakes the loop when a response may be there,
        and once per liveness slice (a dead server raises ``Disconnected`` within the
        liveness bound). ``timeout`` raises ``Timeout`` (the call stays in flight).
        Several calls of one client may be awaited at once; the client holds one
        response at a time, so copy (``bytes(r)``) what you keep before the next await on
        it returns. Cancel-safe: a cancelled ``recv_async`` consumes nothing."""
        deadline = _deadline(timeout)

        def poll(wake):
            r = self._poll_recv(call, wake)
            return _PENDING if r is False else r

        return await _poll_until(self, poll, deadline, call)

    async def call_async(self, data, timeout=None):
        """``call`` awaited on the running asyncio loop without blocking it: sends ``data``
        and returns its first ``Response``, driven by the process's ringcast reactor
        thread (no worker thread). ``timeout`` bounds the whole call (``Timeout``); a
        dead server raises ``Disconnected`` within the liveness bound; ``NoResponse``,
        ``TooLarge``, ``TooManyInFlight`` as ``call``. Many calls may be awaited at once
        (up to the client's ``max_in_flight``); the client holds one response at a time,
        so copy (``bytes(r)``) what you keep before awaiting the next. A full server
        queue is waited out on the reactor too. Cancel-safe: a cancelled
        ``call_async`` abandons its call (its response is dropped on arrival) and
        consumes nothing of other calls."""
        deadline = _deadline(timeout)

        def send(wake):
            call = self._poll_send(data, wake)
            return _PENDING if call is None else call

        call = await _poll_until(self, send, deadline)
        try:
            def poll(wake):
                r = self._poll_recv(call, wake)
                return _PENDING if r is False else r

            response = await _poll_until(self, poll, deadline, call)
        finally:
            # A call wants its first response only.
            try:
                self.cancel(call)
            except Closed:
                pass
        if response is None:
            raise NoResponse("the server ended the request with no response")
        return response


class WaitSet:
    """One thread waits on several subscribers, servers and clients at once.

    ``add(member)`` / ``remove(member)``; ``wait(timeout=None)`` returns the members a
    receive would not wait on, ``[]`` after the timeout: a ``Subscriber`` with a message, a
    lag report or the end (receive with ``try_recv()``); a ``Server`` with a request or a
    new client's greeting (``try_recv()``, which answers a greeting and returns ``None``
    for it); a ``Client`` with a response there or set aside for a call, or whose server
    is gone (``recv(call, timeout=0)``, or ``Disconnected``). Every member must have
    released its sample, request or response before ``wait`` (``Busy`` otherwise). The
    waiting is done by the process's ringcast reactor thread (futex_waitv on every
    member's topic); ``wait`` releases the GIL and Ctrl-C interrupts it. Do not await a
    member's ``*_async`` methods while it is in a wait being waited on: they share its
    one reactor arm.
    """

    def __init__(self):
        self._members = []
        self._bell = _threading.Event()

    def add(self, member):
        if not isinstance(member, (_ringcast.Subscriber, _ringcast.Server, _ringcast.Client)):
            raise TypeError(
                f"a wait set takes Subscriber, Server and Client, not {type(member).__name__}"
            )
        if any(m is member for m in self._members):
            raise ValueError("this member is in the wait set already")
        self._members.append(member)

    def remove(self, member):
        for i, m in enumerate(self._members):
            if m is member:
                del self._members[i]
                member._disarm()
                return
        raise ValueError("this member is not in the wait set")

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
    "AlreadyServed",
    "Busy",
    "Client",
    "ClientFull",
    "ClientGone",
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
    "NoResponse",
    "CallFailed",
    "NoServer",
    "NotASegment",
    "NotFound",
    "PermissionDenied",
    "Publisher",
    "PublishersFull",
    "UntrustedOwner",
    "Request",
    "ResourceExhausted",
    "Response",
    "Sample",
    "Server",
    "Subscriber",
    "Timeout",
    "TooLarge",
    "TooManyClients",
    "TooManyInFlight",
    "TypeMismatch",
    "WaitSet",
    "__version__",
]
