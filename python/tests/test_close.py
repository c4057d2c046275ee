"""close() closes at once, whatever Python objects of the handle are still referenced:
the publisher's topic ends and its name is free, the subscriber leaves the topic. Only
memory a live buffer view points into outlives it."""

import pytest

import ringcast

np = pytest.importorskip("numpy")


def test_publisher_close_ends_the_topic_with_the_last_loan_still_bound(prefix, topic):
    pub = ringcast.Publisher(topic, slots=4, slot_size=64, overflow="block", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    for i in range(3):  # ordinary code: the loop's last loan stays bound after it
        loan = pub.loan()
        loan.write(bytes([i]))
        loan.commit(1)
    pub.close()
    for i in range(3):
        assert bytes(sub.recv(timeout=5)) == bytes([i])
    with pytest.raises(ringcast.Disconnected):
        sub.recv(timeout=5)  # the end, not a hang
    assert sub.closed_by_publisher  # closed, not died
    again = ringcast.Publisher(topic, slots=4, slot_size=64, overflow="block", prefix=prefix)
    again.close()  # the name was free: no AlreadyExists
    with pytest.raises(ringcast.Closed):
        pub.send(b"x")
    with pytest.raises(ringcast.Closed):
        loan.commit(1)
    del loan


def test_publisher_close_with_an_uncommitted_loan_viewed_by_numpy(prefix, topic):
    pub = ringcast.Publisher(topic, slots=4, slot_size=64, overflow="overwrite", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    loan = pub.loan()
    view = np.frombuffer(loan, np.uint8)  # a live export of the loan
    pub.close()
    with pytest.raises(ringcast.Disconnected):
        sub.recv(timeout=5)
    view[:4] = 1  # the memory stays mapped for the view: no fault
    assert int(view[:4].sum()) == 4
    del view, loan


def test_subscriber_close_detaches_with_the_last_sample_still_bound(prefix, topic):
    pub = ringcast.Publisher(
        topic, slots=2, slot_size=16, overflow="block", prefix=prefix
    )
    sub = ringcast.Subscriber(topic, prefix=prefix)
    pub.send(b"a")
    with sub.recv(timeout=5) as s:  # `s` stays bound after the block
        assert bytes(s) == b"a"
    pub.send(b"b")
    held = sub.recv(timeout=5)  # held, not released, when the subscriber closes
    assert pub.subscriber_count() == 1
    sub.close()
    assert pub.subscriber_count() == 0
    for i in range(10):  # a 2-slot Block ring: a subscriber still attached would stop this
        pub.send(bytes([i]), timeout=0)
    with pytest.raises(ringcast.Closed):
        sub.recv(timeout=0)
    with pytest.raises(ringcast.Closed):
        bytes(held)
    del s, held


def test_subscriber_close_with_a_live_numpy_view_of_a_block_sample(prefix, topic):
    pub = ringcast.Publisher(topic, slots=2, slot_size=4096, overflow="block", prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    pub.send(bytes(range(64)))
    s = sub.recv(timeout=5)
    view = np.frombuffer(s, np.uint8)
    sub.close()  # no longer refused: detaches now
    assert pub.subscriber_count() == 0
    for _ in range(4):
        pub.send(b"\xff" * 64, timeout=0)  # the slot was given back: never Full
    assert view.shape == (64,) and int(view.max()) <= 255  # still mapped: no fault
    del view, s


def test_close_twice_and_context_managers(prefix, topic):
    with ringcast.Publisher(topic, slots=4, slot_size=16, prefix=prefix) as pub:
        with ringcast.Subscriber(topic, prefix=prefix) as sub:
            pub.send(b"x")
            s = sub.recv(timeout=5)
        sub.close()
    pub.close()
    with pytest.raises(ringcast.Closed):
        bytes(s)
    assert "closed" in repr(pub) and "closed" in repr(sub)
