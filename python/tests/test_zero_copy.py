"""Zero copy: a numpy array of a Block sample is the slot itself, read-only, and can never
outlive it."""

import pytest

import ringcast

np = pytest.importorskip("numpy")


def mapping_of(prefix, topic):
    """The address ranges this process maps of the topic's segment file."""
    name = f"/dev/shm/{prefix}.{topic}"
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith(name):
                lo, hi = line.split()[0].split("-")
                ranges.append((int(lo, 16), int(hi, 16)))
    return ranges


def test_a_block_sample_as_numpy_shares_the_slot(prefix, topic):
    pub = ringcast.Publisher(topic, slots=4, slot_size=1 << 20, overflow="block", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    frame = np.arange(1 << 18, dtype=np.uint32)
    pub.send(frame)
    sample = sub.recv(timeout=1)
    view = np.frombuffer(sample, dtype=np.uint32)
    assert np.array_equal(view, frame)
    addr = view.ctypes.data
    ranges = mapping_of(prefix, topic)
    assert ranges, "the segment is not mapped"
    assert any(lo <= addr and addr + view.nbytes <= hi for lo, hi in ranges), (
        "the array is not inside the shared mapping: it was copied"
    )
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 1
    with pytest.raises(TypeError):
        memoryview(sample)[0] = 1
    # The slot is held while a view lives: releasing and the next receive are refused.
    pub.send(b"next")
    with pytest.raises(BufferError):
        sample.release()
    with pytest.raises(ringcast.Busy):
        sub.recv(timeout=1)
    del view
    sample.release()
    assert sample.released
    with pytest.raises(BufferError):
        memoryview(sample)  # a released sample shows nothing
    assert bytes(sub.recv(timeout=1)) == b"next"


def test_overwrite_samples_are_the_subscribers_own_copy(prefix, topic):
    pub = ringcast.Publisher(topic, slots=4, slot_size=64, overflow="overwrite", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    pub.send(b"0123")
    s = sub.recv(timeout=1)
    addr = np.frombuffer(s, np.uint8).ctypes.data
    ranges = mapping_of(prefix, topic)
    assert ranges, "the segment is not mapped"
    assert not any(lo <= addr < hi for lo, hi in ranges)
    assert bytes(s) == b"0123"


def test_the_next_receive_releases_an_unviewed_sample(prefix, topic):
    pub = ringcast.Publisher(topic, slots=2, slot_size=16, overflow="block", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    for i in range(50):  # a 2-slot Block ring: only releases let the publisher go on
        pub.send(bytes([i]))
        s = sub.recv(timeout=1)
        assert bytes(s) == bytes([i])
    assert not s.released
    pub.send(b"z")
    t = sub.recv(timeout=1)
    assert s.released and bytes(t) == b"z"


def test_a_structured_dtype_reads_a_rust_style_record(prefix, topic):
    tick = np.dtype([("seq", "<u8"), ("price", "<f8"), ("qty", "<u4"), ("side", "u1"), ("pad", "V3")])
    pub = ringcast.Publisher(topic, slots=8, slot_size=tick.itemsize * 4, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    out = np.zeros(4, dtype=tick)
    out["seq"] = [1, 2, 3, 4]
    out["price"] = [10.5, 10.25, 10.75, 11.0]
    out["qty"] = 100
    pub.send(out)
    with sub.recv(timeout=1) as s:
        ticks = np.frombuffer(s, dtype=tick)
        assert list(ticks["seq"]) == [1, 2, 3, 4]
        assert ticks["price"][2] == 10.75
        del ticks


def test_memory_outlives_close_for_a_consumer_that_drops_its_export(prefix, topic):
    """numpy's ndarray(buffer=...) keeps the object but releases its buffer export at
    once: closing closes at once, but leaves the memory it points at mapped (the last
    Sample or Loan object frees it), so reading or writing it afterwards never faults."""
    pub = ringcast.Publisher(topic, slots=4, slot_size=4096, overflow="block", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    pub.send(bytes(range(16)))
    s = sub.recv(timeout=1)
    a = np.ndarray((16,), np.uint8, buffer=s)
    sub.close()
    assert int(a.sum()) >= 0  # mapped: no fault (the slot itself was given back)
    watcher = ringcast.Subscriber(topic, prefix=prefix)
    loan = pub.loan()
    w = np.ndarray((16,), np.uint8, buffer=loan)
    pub.close()  # at once, although the Loan object lives
    with pytest.raises(ringcast.Disconnected):
        watcher.recv(timeout=5)
    with pytest.raises(ringcast.NotFound):
        ringcast.Subscriber(topic, prefix=prefix)  # the name is gone
    w[:] = 7  # still mapped
    with pytest.raises(ringcast.Closed):
        loan.commit(16)
    del w, loan, a, s


def test_a_dropped_loan_is_aborted_and_writes_from_its_own_view_overlap_safely(prefix, topic):
    pub = ringcast.Publisher(topic, slots=4, slot_size=64, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    loan = pub.loan()
    del loan  # aborted: the next loan gets the slot
    loan = pub.loan()
    loan.write(b"abcdefghijkl")
    mv = memoryview(loan)
    loan.write(mv[0:8], offset=4)  # source and destination overlap
    mv.release()
    loan.commit(12)
    assert bytes(sub.recv(timeout=1)) == b"abcdabcdefgh"


def test_an_exception_in_a_with_block_is_not_replaced_by_a_buffer_error(prefix, topic):
    pub = ringcast.Publisher(topic, slots=4, slot_size=64, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    pub.send(b"x")
    with pytest.raises(ZeroDivisionError):
        with sub.recv(timeout=1) as s:
            view = memoryview(s)
            1 / 0
    view.release()
    s.release()
    pub.send(b"y")
    assert bytes(sub.recv(timeout=1e20)) == b"y"  # longer than a Duration holds: for ever
