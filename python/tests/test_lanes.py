"""Many publishers per topic (``max_publishers``): each publisher writes its own lane; a
subscriber gets every lane's messages, each publisher's in its order, named by
``Sample.publisher``; joining needs the topic's configuration and a free lane (``Mismatch``,
``PublishersFull``); the topic ends when its last publisher leaves. Publishers in threads,
in a Python child process SIGKILLed mid-burst, and in a C program (cross-language)."""

import asyncio
import os
import shutil
import struct
import subprocess
import threading
import time

import pytest

import ringcast
from conftest import BIN, ROOT, pattern, python_child

SLOT = 64
LONG = 30.0


def payload(seq):
    """Message `seq` of a lane: its own sequence, then filler that depends on it."""
    n = 8 + seq % (SLOT - 7)
    return struct.pack("<Q", seq) + bytes(((seq + i) & 0xFF) for i in range(n - 8))


def shared(topic, prefix, overflow, **kw):
    kw.setdefault("slots", 64)
    return ringcast.Publisher(
        topic, slot_size=SLOT, overflow=overflow, prefix=prefix, max_publishers=4, **kw
    )


class Books:
    """Per lane, the next sequence expected (every one before it received and checked, or
    counted lost; the lanes here are fresh, so from 0); per publisher, what arrived; per
    lane, what was lost."""

    def __init__(self):
        self.lane_next = {}
        self.received = {}
        self.last = {}
        self.lost_in = {}

    def take(self, s):
        pid, seq = s.publisher, s.seq
        want = self.lane_next.get(pid[0], 0)
        assert seq == want, f"publisher {pid}: {seq} where {want} was due: out of order or twice"
        assert bytes(s) == payload(seq), f"publisher {pid}: message {seq} is not what was sent"
        self.lane_next[pid[0]] = seq + 1
        self.received[pid] = self.received.get(pid, 0) + 1
        self.last[pid] = seq

    def lag(self, lane, n):
        assert n > 0
        self.lost_in[lane] = self.lost_in.get(lane, 0) + n
        self.lane_next[lane] = self.lane_next.get(lane, 0) + n


def read_to_end(sub):
    """Receives until the topic ends (every publisher gone, everything read)."""
    books = Books()
    while True:
        try:
            s = sub.recv(timeout=LONG)
        except ringcast.Lagged as e:
            assert e.lane == sub.lagged_lane
            books.lag(e.lane, e.lost)
            continue
        except ringcast.Disconnected:
            break
        with s:
            books.take(s)
    for lane, lost in books.lost_in.items():
        assert sub.lost_in(lane) == lost, f"lane {lane}'s losses"
    assert sub.lost == sum(books.lost_in.values())
    return books


def publish(pub, seq):
    """Publishes `payload(seq)`, by loan on even sequences and by send on odd ones."""
    data = payload(seq)
    if seq % 2:
        assert pub.send(data) == seq
    else:
        with pub.loan() as loan:
            assert loan.seq == seq
            loan.write(data)
            loan.commit(len(data))


@pytest.mark.parametrize("overflow", ["block", "overwrite"])
def test_two_publishers_in_one_process_reach_one_subscriber_each_in_order(prefix, topic, overflow):
    count = 5000
    a = shared(topic, prefix, overflow)
    b = shared(topic, prefix, overflow)  # joins
    assert a.lane != b.lane and a.id != b.id
    assert a.id[0] == a.lane and (a.lane, b.lane) == (0, 1)
    sub = ringcast.Subscriber(topic, prefix=prefix, start="oldest")

    def produce(pub):
        for seq in range(count):
            publish(pub, seq)
        pub.close()  # the last of the two to close ends the topic

    producers = [threading.Thread(target=produce, args=(p,)) for p in (a, b)]
    for t in producers:
        t.start()
    books = read_to_end(sub)
    for t in producers:
        t.join(timeout=LONG)
    assert set(books.received) <= {a.id, b.id}
    if overflow == "block":
        assert books.received == {a.id: count, b.id: count}
        assert sub.lost == 0
    else:
        # What a lane lost is counted, exactly; what arrived was in order (checked).
        for pid in (a.id, b.id):
            assert books.received.get(pid, 0) + sub.lost_in(pid[0]) == count
    assert sub.lost_in(3) == 0 and sub.lost_in(4) is None


def test_joining_needs_the_same_configuration_and_a_free_lane(prefix, topic):
    first = shared(topic, prefix, "block")
    with pytest.raises(ringcast.Mismatch) as e:
        shared(topic, prefix, "block", slots=128)
    assert (e.value.field, e.value.existing, e.value.requested) == ("slots", "64", "128")
    assert isinstance(e.value, ringcast.AlreadyExists) and "slots" in str(e.value)
    with pytest.raises(ringcast.Mismatch) as e:
        shared(topic, prefix, "overwrite")
    assert e.value.field == "overflow policy"
    with pytest.raises(ringcast.Mismatch) as e:
        ringcast.Publisher(topic, slot_size=SLOT, prefix=prefix, max_publishers=2)
    assert (e.value.field, e.value.existing, e.value.requested) == ("max publishers", "4", "2")
    others = [shared(topic, prefix, "block") for _ in range(3)]
    assert sorted(p.lane for p in [first, *others]) == [0, 1, 2, 3]
    with pytest.raises(ringcast.PublishersFull) as e:
        shared(topic, prefix, "block")
    assert e.value.max == 4 and isinstance(e.value, ringcast.AlreadyExists)
    # A lane left is taken again, by a publisher with a new id there.
    left = others[1].id
    others[1].close()
    again = shared(topic, prefix, "block")
    assert again.lane == left[0] and again.id != left
    # An exclusive topic (the default) is still exclusive: AlreadyExists, nothing newer;
    # asking it for several publishers names the difference.
    only = ringcast.Publisher(f"{topic}x", prefix=prefix)  # noqa: F841 (kept alive)
    with pytest.raises(ringcast.AlreadyExists) as e:
        ringcast.Publisher(f"{topic}x", prefix=prefix)
    assert type(e.value) is ringcast.AlreadyExists
    with pytest.raises(ringcast.Mismatch) as e:
        ringcast.Publisher(f"{topic}x", prefix=prefix, max_publishers=4)
    assert e.value.field == "max publishers"
    with pytest.raises(ringcast.InvalidConfig):
        ringcast.Publisher(f"{topic}y", prefix=prefix, max_publishers=0)


def test_a_topic_lives_until_its_last_publisher_leaves(prefix, topic):
    a = shared(topic, prefix, "block")
    b = shared(topic, prefix, "block")
    sub = ringcast.Subscriber(topic, prefix=prefix)
    publish(a, 0)
    publish(a, 1)
    a.close()  # the topic lives on with b; a's messages stay to be read
    publish(b, 0)
    got = []
    for _ in range(3):
        with sub.recv(timeout=LONG) as s:
            got.append((s.publisher, s.seq, bytes(s) == payload(s.seq)))
    assert sorted(got) == sorted([(a.id, 0, True), (a.id, 1, True), (b.id, 0, True)])
    assert repr(b).endswith(f"id={b.id}>")
    b.close()
    with pytest.raises(ringcast.Disconnected):
        sub.recv(timeout=LONG)
    # The name is free: a new topic.
    assert shared(topic, prefix, "block").lane == 0


def test_recv_async_gets_a_publisher_that_joins_while_it_waits(prefix, topic):
    first = shared(topic, prefix, "block")
    sub = ringcast.Subscriber(topic, prefix=prefix)

    async def main():
        waiting = asyncio.ensure_future(sub.recv_async())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        late = shared(topic, prefix, "block")
        publish(late, 0)
        s = await asyncio.wait_for(waiting, LONG)
        with s:
            return late.id, s.publisher, s.seq

    late_id, got, seq = asyncio.run(main())
    assert (got, seq) == (late_id, 0) and got != first.id


CHILD_PUBLISHER = """
import struct, sys, time, ringcast
prefix, topic, overflow, count, pause_every = sys.argv[1:6]
count, pause_every = int(count), int(pause_every)
slot = %d
def payload(seq):
    n = 8 + seq %% (slot - 7)
    return struct.pack("<Q", seq) + bytes(((seq + i) & 0xFF) for i in range(n - 8))
pub = ringcast.Publisher(topic, slot_size=slot, overflow=overflow, prefix=prefix,
                         max_publishers=4, slots=64)
print("JOINED", pub.lane, pub.id[1], flush=True)
for seq in range(count):
    data = payload(seq)
    with pub.loan() as loan:
        loan.write(data)
        loan.commit(len(data))
    if pause_every and seq %% pause_every == 0:
        time.sleep(0.001)
print("DONE", flush=True)
""" % SLOT


@pytest.mark.parametrize("overflow", ["block", "overwrite"])
def test_a_publisher_killed_mid_burst_in_a_child_leaves_the_others_and_the_books_exact(
    prefix, topic, overflow
):
    """Publishers in two child processes share a topic this process created (and leaves
    once they joined); one is SIGKILLed mid-burst. The other finishes; the subscriber gets
    every message of the survivor (Block) or counts exactly what its lane lost
    (Overwrite), a gap-free prefix of the victim's (it may have died mid-write: that
    message never appears) with its losses counted, and the end once the survivor
    leaves."""
    creator = shared(topic, prefix, overflow)
    sub = ringcast.Subscriber(topic, prefix=prefix, start="oldest")

    def spawn(count, pause):
        child = python_child(
            CHILD_PUBLISHER, prefix, topic, overflow, str(count), str(pause),
            stdout=subprocess.PIPE, text=True,
        )
        line = child.stdout.readline().split()
        assert line[0] == "JOINED", line
        return child, (int(line[1]), int(line[2]))

    # The victim joins first, so the survivor (which may finish at once under
    # Overwrite) never leaves a lane the victim would then take over.
    victim, victim_id = spawn(10_000_000, 100)
    survivor, survivor_id = spawn(20_000, 0)
    creator.close()
    result = {}
    reader = threading.Thread(target=lambda: result.update(books=read_to_end(sub)))
    reader.start()
    time.sleep(0.3)
    victim.kill()
    victim.wait()
    assert survivor.wait(timeout=LONG * 2) == 0
    assert survivor.stdout.readline().strip() == "DONE"
    reader.join(timeout=LONG)
    assert not reader.is_alive(), "the subscriber did not see the end"
    books = result["books"]
    assert set(books.received) == {victim_id, survivor_id}, books.received
    victim_lane, survivor_lane = victim_id[0], survivor_id[0]
    if overflow == "block":
        assert books.received[survivor_id] == 20_000
        assert sub.lost == 0
    else:
        assert books.received[survivor_id] + sub.lost_in(survivor_lane) == 20_000
    # The victim's: everything up to the last received, received or counted lost (a lag
    # is always followed by a message of its lane: the oldest still intact).
    assert books.received[victim_id] > 0
    assert books.received[victim_id] + sub.lost_in(victim_lane) == books.last[victim_id] + 1


def build_c_publisher(tmp_path):
    """ffi/tests/c/lanes_pub.c built against the C library of the Rust build: the one
    `cargo test` refreshes in deps/ (as ffi/tests/c_abi.rs does: the copy one level up is
    refreshed only by `cargo build`), else that copy."""
    found = [d for d in (BIN / "deps", BIN) if (d / "libringcast_ffi.so").exists()]
    if not found:
        pytest.fail(f"libringcast_ffi.so is not built under {BIN}: run the README's test command")
    lib_dir = found[0]
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc)")
    exe = tmp_path / "lanes_pub"
    ffi = ROOT / "ffi"
    subprocess.run(
        [cc, "-std=c99", "-O1", "-Wall", "-Werror", f"-I{ffi / 'include'}", f"-I{ffi / 'tests' / 'c'}",
         "-o", str(exe), str(ffi / "tests" / "c" / "lanes_pub.c"),
         f"-L{lib_dir}", "-lringcast_ffi", f"-Wl,-rpath,{lib_dir}"],
        check=True,
    )
    return exe


def test_a_python_and_a_c_publisher_share_a_topic(prefix, topic, tmp_path):
    exe = build_c_publisher(tmp_path)
    slot, count = 300, 2000
    py_pub = ringcast.Publisher(
        topic, slots=8, slot_size=slot, overflow="block", prefix=prefix, max_publishers=4
    )
    sub = ringcast.Subscriber(topic, prefix=prefix, start="oldest")
    # Without LD_LIBRARY_PATH, which outranks the program's RUNPATH.
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    c_pub = subprocess.Popen(
        [str(exe), prefix, topic, "block", "8", str(slot), "4", str(count), "1"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    joined = c_pub.stdout.readline().split()
    assert joined[0] == "JOINED", joined
    c_id = tuple(int(kv.split("=")[1]) for kv in joined[1:])
    assert c_pub.stdout.readline().strip() == "READY"
    assert c_id[0] != py_pub.lane
    got = {}

    def read():
        for s in sub:  # ends when both are gone
            with s:
                seqs = got.setdefault(s.publisher, [])
                assert bytes(s) == pattern(s.seq, slot), f"{s.publisher} message {s.seq}"
                seqs.append(s.seq)

    reader = threading.Thread(target=read)
    reader.start()
    for seq in range(count):
        assert py_pub.send(pattern(seq, slot)) == seq
    py_pub.close()
    out, _ = c_pub.communicate(timeout=LONG)
    assert c_pub.returncode == 0 and f"sent={count}" in out
    reader.join(timeout=LONG)
    assert not reader.is_alive()
    assert got == {py_pub.id: list(range(count)), c_id: list(range(count))}
    assert sub.lost == 0
