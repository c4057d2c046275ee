"""Across processes and threads: Rust -> Python and Python -> Rust through the CLI, the
Rust camera publisher into numpy, Ctrl-C in a blocking receive, a killed publisher, and
threads receiving together with the GIL released."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import ringcast
from conftest import ROOT, python_child, rust_bin


SLOT = 256
LINES = ["x" * n for n in range(SLOT + 1)]  # 0 B to the slot size


@pytest.mark.parametrize("overflow", ["block", "overwrite"])
def test_rust_cli_to_python_every_size(prefix, topic, overflow):
    proc = subprocess.Popen(
        [rust_bin("ringcast"), "--prefix", prefix, "pub", topic, "--slots", "1024",
         "--slot-size", str(SLOT), "--overflow", overflow, "--wait-subscribers", "1"],
        stdin=subprocess.PIPE,
    )
    sub = ringcast.Subscriber(topic, prefix=prefix, wait=10, start="oldest")
    assert sub.overflow == overflow
    proc.stdin.write(("\n".join(LINES) + "\n").encode())
    proc.stdin.close()
    got = [bytes(s).decode() for s in sub]  # 1024 slots hold all 257: none lapped
    assert got == LINES
    assert sub.lost == 0
    assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("overflow", ["block", "overwrite"])
def test_python_to_rust_cli_every_size(prefix, topic, overflow):
    pub = ringcast.Publisher(topic, slots=1024, slot_size=SLOT, overflow=overflow, prefix=prefix)
    proc = subprocess.Popen(
        [rust_bin("ringcast"), "--prefix", prefix, "sub", topic, "--from", "oldest",
         "--count", str(len(LINES)), "--timeout", "10"],
        stdout=subprocess.PIPE,
    )
    assert pub.wait_for_subscribers(1, timeout=10)
    for line in LINES:
        pub.send(line.encode())
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out.decode().split("\n")[: len(LINES)] == LINES


def test_rust_camera_frames_arrive_in_python_as_numpy_without_a_copy(prefix):
    example = ROOT / "python" / "examples" / "camera_subscriber.py"
    publisher = subprocess.Popen([rust_bin("camera_frames"), "publisher", prefix, "1"])
    out = subprocess.run(
        [sys.executable, str(example), "--prefix", prefix, "--frames", "20"],
        capture_output=True, text=True, timeout=60,
    )
    publisher.kill()
    publisher.wait()
    assert out.returncode == 0, out.stderr
    assert "20 frames" in out.stdout and "in place" in out.stdout, out.stdout


def test_python_publisher_example_read_by_the_rust_cli(prefix):
    example = ROOT / "python" / "examples" / "py_publisher.py"
    pub = subprocess.Popen([sys.executable, str(example), "--prefix", prefix, "--count", "50"])
    out = subprocess.run(
        [rust_bin("ringcast"), "--prefix", prefix, "sub", "py-demo", "--count", "50", "--timeout", "20"],
        capture_output=True, text=True, timeout=60,
    )
    assert pub.wait(timeout=30) == 0
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 50 and lines[0].startswith("reading 0 ")


CHILD_BLOCKED = """
import sys, time, ringcast
pub = ringcast.Publisher(sys.argv[2], prefix=sys.argv[1], slot_size=16)
sub = ringcast.Subscriber(sys.argv[2], prefix=sys.argv[1])
print("BLOCKING", flush=True)
try:
    sub.recv()
except KeyboardInterrupt:
    print("INTERRUPTED", time.monotonic(), flush=True)
    sys.exit(0)
sys.exit(3)
"""


def test_ctrl_c_interrupts_a_blocking_recv_promptly(prefix, topic):
    """KeyboardInterrupt within 250 ms (the GIL-free slices are 50 ms)."""
    # A test run started in the background of a non-interactive shell inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler: give the child the
    # default disposition, as a terminal would.
    child = python_child(
        CHILD_BLOCKED,
        prefix,
        topic,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert child.stdout.readline().strip() == "BLOCKING"
    time.sleep(0.2)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    line = child.stdout.readline().split()
    assert child.wait(timeout=10) == 0
    assert line[0] == "INTERRUPTED"
    took = float(line[1]) - sent
    assert took < 0.25, f"KeyboardInterrupt after {took * 1000:.0f} ms"


CHILD_PUBLISHER = """
import sys, time, ringcast
pub = ringcast.Publisher(sys.argv[2], prefix=sys.argv[1], slot_size=16)
pub.wait_for_subscribers(1, timeout=10)
for i in range(3):
    pub.send(bytes([i]))
print("SENT", flush=True)
time.sleep(60)
"""


def test_a_killed_publisher_gives_disconnected(prefix, topic):
    child = python_child(CHILD_PUBLISHER, prefix, topic, stdout=subprocess.PIPE, text=True)
    sub = ringcast.Subscriber(topic, prefix=prefix, wait=10, start="oldest")
    assert child.stdout.readline().strip() == "SENT"
    child.kill()
    child.wait()
    killed = time.monotonic()
    got = []
    with pytest.raises(ringcast.Disconnected):
        while True:
            got.append(bytes(sub.recv(timeout=5)))
    assert got == [b"\x00", b"\x01", b"\x02"]
    assert time.monotonic() - killed < 2.0


def test_threads_blocked_in_recv_release_the_gil_and_progress_together(prefix):
    n = 4
    pubs = [ringcast.Publisher(f"th{i}", slot_size=16, prefix=prefix) for i in range(n)]
    subs = [ringcast.Subscriber(f"th{i}", prefix=prefix) for i in range(n)]
    got = [None] * n
    blocked = threading.Barrier(n + 1)

    def receive(i):
        blocked.wait()
        got[i] = bytes(subs[i].recv(timeout=10))

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    blocked.wait()
    time.sleep(0.2)  # every thread is inside recv now, without the GIL
    start = time.monotonic()
    for i, p in enumerate(pubs):  # this thread still runs Python: the GIL is free
        p.send(f"to {i}".encode())
    for t in threads:
        t.join(timeout=10)
    assert got == [f"to {i}".encode() for i in range(n)]
    assert time.monotonic() - start < 2.0
