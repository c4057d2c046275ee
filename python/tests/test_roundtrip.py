"""Round trips Python -> Python under both policies, 0 B to the slot size, exact lag,
timeouts, iteration, loans, and the errors a user meets."""

import time

import pytest

import ringcast
from conftest import pattern

SLOT = 300


@pytest.mark.parametrize("overflow", ["block", "overwrite"])
def test_python_to_python_every_size_byte_exact(prefix, topic, overflow):
    pub = ringcast.Publisher(topic, slots=1024, slot_size=SLOT, overflow=overflow, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix, start="oldest")
    for seq in range(2 * (SLOT + 1)):
        assert pub.send(pattern(seq, SLOT)) == seq
        with sub.recv(timeout=5) as s:
            assert s.seq == seq
            assert len(s) == len(pattern(seq, SLOT))
            assert bytes(s) == pattern(seq, SLOT)
    pub.close()
    with pytest.raises(ringcast.Disconnected):
        sub.recv(timeout=5)


def test_lagged_reports_the_exact_loss_then_resumes(prefix, topic):
    pub = ringcast.Publisher(topic, slots=8, slot_size=64, overflow="overwrite", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix, start="oldest")
    for i in range(100):
        pub.send(i.to_bytes(8, "little"))
    with pytest.raises(ringcast.Lagged) as e:
        sub.recv(timeout=1)
    lost = e.value.lost
    assert isinstance(lost, int) and lost > 0
    got = []
    while (s := sub.try_recv()) is not None:
        got.append(int.from_bytes(bytes(s), "little"))
    assert got == list(range(lost, 100)), "resumes at the oldest intact message"
    assert sub.lost == lost


def test_iteration_ends_with_the_publisher(prefix, topic):
    pub = ringcast.Publisher(topic, slots=64, slot_size=16, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix, start="oldest")
    for i in range(10):
        pub.send(bytes([i]))
    pub.close()
    assert [bytes(s) for s in sub] == [bytes([i]) for i in range(10)]


def test_recv_timeout_returns_within_its_bound(prefix, topic):
    ringcast_pub = ringcast.Publisher(topic, slot_size=16, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    start = time.monotonic()
    with pytest.raises(ringcast.Timeout):
        sub.recv(timeout=0.2)
    took = time.monotonic() - start
    assert 0.2 <= took < 0.5, took
    assert sub.try_recv() is None
    ringcast_pub.close()


def test_a_loan_is_written_in_place_and_committed(prefix, topic):
    np = pytest.importorskip("numpy")
    pub = ringcast.Publisher(topic, slots=4, slot_size=64, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    with pub.loan() as loan:
        assert len(loan) >= 64 and loan.seq == 0
        a = np.frombuffer(loan, dtype=np.uint8)
        a[:4] = [1, 2, 3, 4]
        with pytest.raises(BufferError):
            loan.commit(4)  # a view is alive: a write could reach a published slot
        del a
        assert loan.commit(4) == 0
    with pub.loan() as loan:
        loan.write(b"abc")
        loan.write(b"Z", offset=1)
        loan.commit(3)
    with pub.loan() as loan:
        loan.write(b"never")  # left without a commit: aborted
    assert bytes(sub.recv(timeout=1)) == b"\x01\x02\x03\x04"
    assert bytes(sub.recv(timeout=1)) == b"aZc"
    assert sub.try_recv() is None
    with pytest.raises(ringcast.Busy):
        loan2 = pub.loan()
        pub.send(b"x")  # one loan at a time
    loan2.abort()
    with pytest.raises(ringcast.TooLarge):
        pub.send(bytes(65))


def test_send_takes_any_contiguous_bytes_like(prefix, topic):
    np = pytest.importorskip("numpy")
    pub = ringcast.Publisher(topic, slot_size=64, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    pub.send(bytearray(b"ba"))
    pub.send(memoryview(b"mv"))
    pub.send(np.arange(4, dtype=np.float32))
    assert bytes(sub.recv(timeout=1)) == b"ba"
    assert bytes(sub.recv(timeout=1)) == b"mv"
    assert np.array_equal(np.frombuffer(sub.recv(timeout=1), np.float32), np.arange(4, dtype=np.float32))
    with pytest.raises((BufferError, ValueError)):  # numpy says ValueError
        pub.send(np.arange(8, dtype=np.uint8)[::2])  # not contiguous


def test_errors_name_what_went_wrong(prefix, topic):
    with pytest.raises(ringcast.InvalidName) as e:
        ringcast.Subscriber("bad/name", prefix=prefix)
    assert "bad/name" in str(e.value)
    with pytest.raises(ringcast.NotFound):
        ringcast.Subscriber("nobody-here", prefix=prefix)
    start = time.monotonic()
    with pytest.raises(ringcast.NotFound):
        ringcast.Subscriber("nobody-here", prefix=prefix, wait=0.2)
    assert time.monotonic() - start >= 0.2
    with pytest.raises(ringcast.InvalidConfig):
        ringcast.Publisher(topic, slots=3, prefix=prefix)
    with pytest.raises(ValueError):
        ringcast.Publisher(topic, overflow="sometimes", prefix=prefix)
    pub = ringcast.Publisher(topic, prefix=prefix, slot_size=16)
    with pytest.raises(ringcast.AlreadyExists):
        ringcast.Publisher(topic, prefix=prefix)
    with pytest.raises(ringcast.TooLarge):
        pub.send(bytes(17))
    with pytest.raises(ValueError):
        ringcast.Subscriber(topic, prefix=prefix).recv(timeout=-1)
    for exc in (ringcast.Lagged, ringcast.Disconnected, ringcast.Timeout, ringcast.NotFound):
        assert issubclass(exc, ringcast.Error)
    pub.close()
    with pytest.raises(ringcast.Closed):
        pub.send(b"x")


def test_the_package_docstring_example_runs():
    import doctest

    failures, tried = doctest.testmod(ringcast)
    assert tried > 0 and failures == 0


def test_a_full_block_ring_is_full_at_once_or_a_timeout_later(prefix, topic):
    pub = ringcast.Publisher(topic, slots=2, slot_size=16, overflow="block", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)  # attached, never reads
    pub.send(b"a")
    pub.send(b"b")
    with pytest.raises(ringcast.Full):
        pub.send(b"c", timeout=0)
    with pytest.raises(ringcast.Full):
        pub.loan(timeout=0)
    start = time.monotonic()
    with pytest.raises(ringcast.Timeout):
        pub.send(b"c", timeout=0.1)
    assert time.monotonic() - start >= 0.1
    assert bytes(sub.recv(timeout=1)) == b"a"
    sub.recv(timeout=1)  # releases "a": room for one more
    assert pub.send(b"c", timeout=1) == 2


def test_a_declared_message_type_refuses_subscribers_that_expect_another(prefix, topic):
    np = pytest.importorskip("numpy")
    tick = np.dtype([("seq", "<u8"), ("price", "<f8")])
    spec = ("Tick", tick.itemsize, tick.alignment, 1)
    pub = ringcast.Publisher(topic, slot_size=64, prefix=prefix, message_type=spec)
    ok = ringcast.Subscriber(topic, prefix=prefix, expect_type=spec)
    anything = ringcast.Subscriber(topic, prefix=prefix)  # no expectation: raw bytes
    with pytest.raises(ringcast.TypeMismatch) as e:
        ringcast.Subscriber(topic, prefix=prefix, expect_type=("Tick", tick.itemsize, tick.alignment, 2))
    assert "Tick" in str(e.value)
    raw = ringcast.Publisher(topic + "r", slot_size=64, prefix=prefix)
    with pytest.raises(ringcast.TypeMismatch):
        ringcast.Subscriber(topic + "r", prefix=prefix, expect_type=spec)
    pub.send(np.array([(1, 2.5)], dtype=tick))
    assert np.frombuffer(ok.recv(timeout=1), tick)["price"][0] == 2.5
    assert len(anything.recv(timeout=1)) == tick.itemsize
    raw.close()


def _dev_shm_offers_huge_pages():
    """The library's rule, restated: shmem_enabled force, or not deny and /dev/shm's
    tmpfs mounted with huge=always / within_size / advise."""
    try:
        system = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled").read()
    except OSError:
        return False
    if "[deny]" in system:
        return False
    if "[force]" in system:
        return True
    huge = None
    for line in open("/proc/self/mountinfo"):
        head, _, tail = line.partition(" - ")
        if head.split(" ")[4] == "/dev/shm":
            fields = tail.split(" ")
            opts = fields[2].strip().split(",") if len(fields) > 2 else []
            found = [o[5:] for o in opts if o.startswith("huge=")]
            huge = found[0] if fields[0] == "tmpfs" and found else None
    return huge in ("always", "within_size", "advise")


def test_memory_options_prefault_lock_and_huge_pages(prefix, topic):
    pub = ringcast.Publisher(topic, slots=8, slot_size=4096, prefix=prefix,
                             prefault=True, lock_memory=True)
    sub = ringcast.Subscriber(topic, prefix=prefix, prefault=True, lock_memory=True)
    pub.send(b"resident")
    assert bytes(sub.recv(timeout=1)) == b"resident"
    if _dev_shm_offers_huge_pages():
        ringcast.Publisher(topic + "h", slots=8, slot_size=4096, prefix=prefix, huge_pages=True)
    else:
        with pytest.raises(ringcast.ResourceExhausted, match="huge pages are not available"):
            ringcast.Publisher(topic + "h", slots=8, slot_size=4096, prefix=prefix, huge_pages=True)


@pytest.mark.parametrize("batch, room", [(1, True), (8, False)])
def test_release_batch_decides_when_released_slots_go_back(prefix, topic, batch, room):
    pub = ringcast.Publisher(topic, slots=8, slot_size=16, overflow="block", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix, release_batch=batch)
    for i in range(8):
        pub.send(bytes([i]))
    first = sub.recv(timeout=1)
    assert bytes(first) == b"\x00"
    first.release()  # more wait: a batch of 8 defers it, a batch of 1 hands it back
    if room:
        assert pub.send(b"x", timeout=0) == 8
    else:
        with pytest.raises(ringcast.Full):
            pub.send(b"x", timeout=0)


def test_a_monitor_never_holds_a_block_publisher_and_counts_what_it_missed(prefix, topic):
    pub = ringcast.Publisher(topic, slots=4, slot_size=64, overflow="block", prefix=prefix)
    mon = ringcast.Subscriber(topic, prefix=prefix, monitor=True)
    assert mon.monitor and mon.overflow == "block"
    assert pub.subscriber_count() == 0, "a monitor is not a subscriber"
    # Ten sends into four slots: a gating subscriber would make the fifth time out.
    for i in range(10):
        pub.send(bytes([i]), timeout=1)
    with pytest.raises(ringcast.Lagged) as e:
        mon.recv(timeout=1)
    assert e.value.lost == 6
    assert [bytes(mon.recv(timeout=1)) for _ in range(4)] == [bytes([i]) for i in range(6, 10)]
    assert mon.lost == 6
