"""Shared fixtures: a private prefix and unique topics per test, cleaned up after it, and
the Rust binaries the cross-language tests run."""

import itertools
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("RINGCAST_BIN_DIR", ROOT / "target" / "release"))
_counter = itertools.count()


@pytest.fixture
def prefix():
    """A prefix no other test (or test process) uses; its segments are removed after."""
    p = f"rcpy{os.getpid()}x{next(_counter)}"
    yield p
    for f in pathlib.Path("/dev/shm").glob(f"{p}.*"):
        try:
            f.unlink()
        except OSError:
            pass


@pytest.fixture
def topic():
    """A fresh topic name."""
    return f"t{next(_counter)}"


def rust_bin(name):
    """A binary of the Rust workspace (built by `cargo test --workspace --release`)."""
    path = BIN / name
    if not path.exists():
        path = BIN / "examples" / name
    if not path.exists():
        pytest.fail(f"{name} is not built under {BIN}: run the README's test command")
    return str(path)


def python_child(code, *args, **kw):
    """Runs `code` in a new Python process (the package importable as in this one)."""
    return subprocess.Popen([sys.executable, "-c", code, *args], **kw)


def pattern(seq, slot_size):
    """Message `seq` of the round-trip tests: seq % (slot_size + 1) bytes, byte i is
    (seq * 31 + i) & 0xff; 0 B to the slot size all occur."""
    n = seq % (slot_size + 1)
    return bytes(((seq * 31 + i) & 0xFF) for i in range(n))
