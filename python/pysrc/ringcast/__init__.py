"""ringcast: zero-copy shared-memory publish/subscribe for Linux.

One publisher per topic writes messages into a ring in a named POSIX shared-memory
segment; subscribers in other processes (Python, Rust, C, C++) attach by name and read
the messages in place. A ``Block`` sample supports the buffer protocol without a copy, so
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
    NotASegment,
    NotFound,
    PermissionDenied,
    Publisher,
    ResourceExhausted,
    Sample,
    Subscriber,
    Timeout,
    TooLarge,
    TypeMismatch,
    __version__,
)

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
    "NotASegment",
    "NotFound",
    "PermissionDenied",
    "Publisher",
    "ResourceExhausted",
    "Sample",
    "Subscriber",
    "Timeout",
    "TooLarge",
    "TypeMismatch",
    "__version__",
]
