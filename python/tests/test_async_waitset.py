"""asyncio on the process's reactor, and the WaitSet: many topics, one task or one thread."""

import asyncio
import os
import random
import threading
import time

import pytest

import ringcast


def reactor_threads():
    names = []
    for t in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{t}/comm") as f:
            names.append(f.read().strip())
    return sum(1 for n in names if n.startswith("ringcast-reacto"))


def publish_shuffled(pubs, per_topic, seed):
    rng = random.Random(seed)
    order = [i for i in range(len(pubs)) for _ in range(per_topic)]
    rng.shuffle(order)
    sent = [0] * len(pubs)
    for k, i in enumerate(order):
        pubs[i].send(sent[i].to_bytes(8, "little"))
        sent[i] += 1
        if k % 25 == 0:
            time.sleep(0.001)  # so the receivers wait on the reactor often
    for p in pubs:
        p.close()


def test_twenty_tasks_on_twenty_topics_get_everything_in_order_on_one_reactor(prefix):
    n, per = 20, 50
    pubs = [ringcast.Publisher(f"a{i}", slots=8, slot_size=16, prefix=prefix) for i in range(n)]
    subs = [ringcast.Subscriber(f"a{i}", prefix=prefix) for i in range(n)]

    async def drain(sub):
        got = []
        while True:
            try:
                s = await sub.recv_async()
            except ringcast.Disconnected:
                return got
            got.append(int.from_bytes(bytes(s), "little"))

    async def main():
        tasks = [asyncio.create_task(drain(s)) for s in subs]
        feeder = threading.Thread(target=publish_shuffled, args=(pubs, per, 7))
        feeder.start()
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        feeder.join()
        return results

    results = asyncio.run(main())
    assert results == [list(range(per))] * n
    assert reactor_threads() == 1


def test_a_cancelled_recv_async_loses_nothing(prefix, topic):
    pub = ringcast.Publisher(topic, slots=8, slot_size=16, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)

    async def main():
        for i in range(10):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sub.recv_async(), timeout=0.01)
            pub.send(bytes([i]))
            s = await asyncio.wait_for(sub.recv_async(), timeout=5)
            assert (s.seq, bytes(s)) == (i, bytes([i]))
        pub.close()
        with pytest.raises(ringcast.Disconnected):
            await asyncio.wait_for(sub.recv_async(), timeout=5)

    asyncio.run(main())


def test_a_wait_set_on_three_topics_drains_all_of_them_in_one_thread(prefix):
    n, per = 3, 200
    pubs = [ringcast.Publisher(f"w{i}", slots=8, slot_size=16, prefix=prefix) for i in range(n)]
    subs = [ringcast.Subscriber(f"w{i}", prefix=prefix) for i in range(n)]
    ws = ringcast.WaitSet()
    for s in subs:
        ws.add(s)
    with pytest.raises(ValueError):
        ws.add(subs[0])
    start = time.monotonic()
    assert ws.wait(timeout=0.1) == []
    assert 0.1 <= time.monotonic() - start < 0.6
    feeder = threading.Thread(target=publish_shuffled, args=(pubs, per, 11))
    feeder.start()
    got = {i: [] for i in range(n)}
    open_ = set(range(n))
    deadline = time.monotonic() + 60
    while open_:
        assert time.monotonic() < deadline, {i: len(v) for i, v in got.items()}
        for sub in ws.wait(timeout=10):
            i = subs.index(sub)
            while True:
                try:
                    s = sub.try_recv()
                except ringcast.Disconnected:
                    open_.discard(i)
                    ws.remove(sub)
                    break
                if s is None:
                    break
                got[i].append(int.from_bytes(bytes(s), "little"))
                s.release()
    feeder.join()
    assert got == {i: list(range(per)) for i in range(n)}
    assert len(ws) == 0
    with pytest.raises(ValueError):
        ws.wait()


def test_a_member_must_release_its_sample_before_waiting(prefix, topic):
    pub = ringcast.Publisher(topic, slots=8, slot_size=16, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    ws = ringcast.WaitSet()
    ws.add(sub)
    pub.send(b"a")
    assert ws.wait(timeout=5) == [sub]
    s = sub.try_recv()
    with pytest.raises(ringcast.Busy):
        ws.wait(timeout=0)
    s.release()
    assert ws.wait(timeout=0) == []
