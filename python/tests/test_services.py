"""Services from Python: round trips, streams, deferred answers, timeouts, typed errors,
zero-copy requests and responses, a server in another process (and SIGKILLed under a
waiting client), and C programs (built here from ffi/tests/c) as client and server of
Python."""

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

import ringcast
from conftest import BIN, ROOT, python_child

# A hang bound, not a speed claim: liveness is two 50 ms slices plus a wait's period.
BOUND = 5.0
LONG = 30.0


def serve_like_svc_server(server):
    """The protocol of ffi/tests/c/svc_server.c: "quit" -> "bye" and stop; "stream N" ->
    N parts then the end; "end" -> the end; "hang" -> never answered; "late" -> answered
    after the next request; "loan N" -> "loaned:" and N "x" (the C server writes it in
    place; Python copies it); anything else -> "echo:" + it."""
    late = None
    hung = []
    for req in server:
        text = bytes(req).decode()
        if text == "quit":
            req.respond(b"bye")
            return
        if text.startswith("stream "):
            for i in range(int(text[7:])):
                req.respond_part(f"part {i}".encode())
            req.end()
        elif text == "end":
            req.end()
        elif text == "fail":
            req.fail()
        elif text.startswith("loan "):
            req.respond(b"loaned:" + b"x" * int(text[5:]))
        elif text == "hang":
            hung.append(req)  # kept alive: not ended
            print("HANGING", flush=True)
        elif text == "late":
            late = req
            req.release()
        else:
            req.respond(b"echo:" + bytes(req))
            if late is not None:
                late.respond(b"late")
                late = None


SERVER_CHILD = """
import sys, ringcast
sys.path.insert(0, sys.argv[3])
from test_services import serve_like_svc_server
queue = int(sys.argv[4]) if len(sys.argv) > 4 else None
server = ringcast.Server(sys.argv[2], prefix=sys.argv[1], max_response=256, queue=queue,
                         response_slots=queue)
print("SERVING", flush=True)
serve_like_svc_server(server)
server.close()
"""


def start_server_child(prefix, service, queue=None):
    here = os.path.dirname(os.path.abspath(__file__))
    extra = [] if queue is None else [str(queue)]
    child = python_child(
        SERVER_CHILD, prefix, service, here, *extra, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "SERVING"
    return child


@pytest.fixture
def served(prefix):
    """A Python server of svc_server's protocol on a thread; yields the service name."""
    service = "pysvc"
    server = ringcast.Server(service, prefix=prefix, max_response=256)

    def run():
        serve_like_svc_server(server)
        server.close()  # gone after "quit", as svc_server is

    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield service
    if t.is_alive():
        with ringcast.Client(service, wait=5, prefix=prefix) as c:
            c.call(b"quit", timeout=LONG).release()
    t.join(LONG)
    assert not t.is_alive()
    server.close()


def test_a_call_round_trips_and_the_response_is_a_zero_copy_buffer(prefix, served):
    with ringcast.Client(served, wait=5, prefix=prefix) as c:
        r = c.call(b"hello", timeout=LONG)
        assert bytes(r) == b"echo:hello" and len(r) == 10 and r.last
        view = memoryview(r)
        assert view.readonly and bytes(view) == b"echo:hello"
        # The next call would release bytes a view still shows: refused.
        with pytest.raises(ringcast.Busy):
            c.call(b"again", timeout=LONG)
        with pytest.raises(BufferError):
            r.release()
        del view
        r.release()
        assert r.released
        with pytest.raises(BufferError):
            bytes(r)
        r = c.call(bytearray(b"ba"), timeout=LONG)
        assert bytes(r) == b"echo:ba"
        r = c.call(memoryview(b"xmvx")[1:3], timeout=LONG)
        assert bytes(r) == b"echo:mv"
        r = c.call(b"", timeout=LONG)
        assert bytes(r) == b"echo:"
        numpy = pytest.importorskip("numpy")
        r = c.call(b"\x01\x02\x03\x04", timeout=LONG)
        a = numpy.frombuffer(r, dtype=numpy.uint8)
        assert list(a[5:]) == [1, 2, 3, 4]
        del a
        r.release()


def test_streams_ends_and_deferred_answers(prefix, served):
    with ringcast.Client(served, wait=5, prefix=prefix) as c:
        call = c.send(b"stream 3", timeout=LONG)
        parts = []
        while (r := c.recv(call, timeout=LONG)) is not None:
            parts.append((bytes(r), r.call, r.last))
        assert parts == [(f"part {i}".encode(), call, False) for i in range(3)]
        assert c.recv(call, timeout=0) is None
        assert [bytes(r) for r in c.stream(b"stream 2", timeout=LONG)] == [b"part 0", b"part 1"]
        with pytest.raises(ringcast.NoResponse):
            c.call(b"end", timeout=LONG)
        # Given up by the server: the call fails at once, however it is received.
        t0 = time.monotonic()
        with pytest.raises(ringcast.CallFailed):
            c.call(b"fail", timeout=LONG)
        failed = c.send(b"fail", timeout=LONG)
        with pytest.raises(ringcast.CallFailed):
            c.recv(failed, timeout=LONG)
        assert c.recv(failed, timeout=0) is None

        async def fail_async():
            with pytest.raises(ringcast.CallFailed):
                await c.call_async(b"fail")

        asyncio.run(fail_async())
        assert time.monotonic() - t0 < BOUND
        late = c.send(b"late", timeout=LONG)
        now = c.send(b"now", timeout=LONG)
        assert bytes(c.recv(late, timeout=LONG)) == b"late"
        assert bytes(c.recv(now, timeout=LONG)) == b"echo:now"
        assert c.in_flight == 0
        with pytest.raises(ValueError):
            c.recv(12345, timeout=0)


def test_timeouts_and_typed_errors(prefix):
    with pytest.raises(ringcast.NoServer) as e:
        ringcast.Client("nobody", prefix=prefix)
    assert isinstance(e.value, ringcast.NotFound)
    t0 = time.monotonic()
    with pytest.raises(ringcast.NoServer):
        ringcast.Client("nobody", wait=0.2, prefix=prefix)
    assert time.monotonic() - t0 >= 0.2
    with pytest.raises(ringcast.InvalidName):
        ringcast.Server("a/b", prefix=prefix)
    with pytest.raises(ringcast.InvalidConfig):
        ringcast.Server("cfg", prefix=prefix, queue=3)
    server = ringcast.Server("quiet", prefix=prefix, max_request=16)
    with pytest.raises(ringcast.AlreadyServed) as e:
        ringcast.Server("quiet", prefix=prefix)
    assert isinstance(e.value, ringcast.AlreadyExists)
    assert server.try_recv() is None
    with pytest.raises(ringcast.Timeout):
        server.recv(timeout=0.05)
    got = {}

    def connect():
        got["client"] = ringcast.Client("quiet", wait=5, prefix=prefix)

    t = threading.Thread(target=connect)
    t.start()
    while t.is_alive():
        assert server.try_recv() is None  # greetings are handled, never returned
        time.sleep(0.005)
    t.join()
    c = got["client"]
    assert server.clients == 1 and c.max_request == 16
    with pytest.raises(ringcast.TooLarge):
        c.call(b"x" * 17, timeout=1)
    # Nobody answers: the call times out.
    with pytest.raises(ringcast.Timeout):
        c.call(b"ping", timeout=0.1)
    # The server gets it late; the client has abandoned it; a Request garbage-collected
    # unanswered is ended (the client drops that).
    req = server.recv(timeout=LONG)
    assert bytes(req) == b"ping" and not req.answered
    del req
    call = c.send(b"stream?", timeout=LONG)
    req = server.recv(timeout=LONG)
    assert req.id == call
    req.respond_part(b"a")
    req.respond(b"b")
    with pytest.raises(ValueError):
        req.respond(b"c")
    assert [bytes(c.recv(call, timeout=LONG)) for _ in range(2)] == [b"a", b"b"]
    assert c.recv(call, timeout=0) is None
    # Dropped unanswered: ended, so the call raises NoResponse rather than waiting.
    holder = {}

    def drop_one():
        holder["req"] = server.recv(timeout=LONG)
        del holder["req"]

    t = threading.Thread(target=drop_one)
    t.start()
    with pytest.raises(ringcast.NoResponse):
        c.call(b"dropped", timeout=LONG)
    t.join()
    c.close()
    with pytest.raises(ringcast.Closed):
        c.call(b"x")
    server.close()
    with pytest.raises(ringcast.Closed):
        server.recv(timeout=0)
    # The name is free again.
    ringcast.Server("quiet", prefix=prefix).close()


def test_a_request_is_a_zero_copy_buffer_until_released(prefix):
    server = ringcast.Server("zc", prefix=prefix)
    out = {}

    def client():
        with ringcast.Client("zc", wait=5, prefix=prefix) as c:
            out["r"] = bytes(c.call(b"0123456789", timeout=LONG))
            out["r2"] = bytes(c.call(b"second", timeout=LONG))

    t = threading.Thread(target=client)
    t.start()
    req = server.recv(timeout=LONG)
    with req:
        view = memoryview(req)
        assert view.readonly and bytes(view[2:5]) == b"234"
        with pytest.raises(ringcast.Busy):
            server.recv(timeout=0)  # would release what the view shows
        req.respond(view[::-1].tobytes())
        assert req.answered and not req.released  # the view keeps the bytes
        del view
    assert req.released
    req2 = server.recv(timeout=LONG)
    req2.release()
    with pytest.raises(BufferError):
        bytes(req2)
    req2.respond(b"answered after release")
    t.join(LONG)
    assert out == {"r": b"9876543210", "r2": b"answered after release"}
    server.close()


def test_asyncio_call_async_and_recv_async(prefix):
    async def main():
        server = ringcast.Server("aio", prefix=prefix)

        async def serve():
            req = await server.recv_async(timeout=LONG)
            req.respond(b"async:" + bytes(req))

        task = asyncio.create_task(serve())
        # The client connects while the server awaits (its receive answers the greeting).
        client = await asyncio.to_thread(ringcast.Client, "aio", 5, prefix)
        r = await client.call_async(b"hi", timeout=LONG)
        assert bytes(r) == b"async:hi"
        await task
        client.close()
        server.close()

    asyncio.run(main())


class Ticker:
    """A task that ticks every millisecond on the loop: if the loop blocks, the longest
    gap between two ticks shows it."""

    def __init__(self):
        self.ticks = 0
        self.longest_gap = 0.0
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self):
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.001)
            now = time.monotonic()
            self.longest_gap = max(self.longest_gap, now - last)
            last = now
            self.ticks += 1

    async def stop(self):
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def test_many_concurrent_call_async_from_one_loop_are_all_answered_without_blocking_it(prefix):
    child = start_server_child(prefix, "many", queue=64)
    try:
        with ringcast.Client("many", wait=5, prefix=prefix) as c:
            assert c.max_request > 0

            async def main():
                # The first call starts the process's reactor thread, if nothing did.
                assert bytes(await c.call_async(b"warm", timeout=LONG)) == b"echo:warm"
                threads = threading.active_count()
                ticker = Ticker()

                async def one(i):
                    # Copied at once: the client holds one response at a time.
                    return bytes(await c.call_async(b"n%d" % i, timeout=LONG))

                for _ in range(5):
                    # Bounded well below the calls' timeouts: a waiter that is never woken
                    # would only be saved by the last poll at its deadline.
                    t0 = time.monotonic()
                    got = await asyncio.gather(*(one(i) for i in range(48)))
                    assert time.monotonic() - t0 < BOUND
                    assert got == [b"echo:n%d" % i for i in range(48)]
                await ticker.stop()
                # Reactor-driven: no worker thread was started for the calls.
                assert threading.active_count() == threads
                return ticker

            ticker = asyncio.run(main())
            assert ticker.ticks > 0
            # A hang bound, not a speed claim: the loop was never blocked for a call.
            assert ticker.longest_gap < 1.0, ticker.longest_gap
            assert c.in_flight == 0
            c.call(b"quit", timeout=LONG).release()
        assert child.wait(LONG) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


CLIENT_CHILD = """
import sys, ringcast
c = ringcast.Client(sys.argv[2], wait=5, prefix=sys.argv[1])
for i in range(int(sys.argv[3])):
    got = bytes(c.call(b"q%d" % i, timeout=30))
    assert got == b"a:q%d" % i, got
print("DONE", flush=True)
"""


def test_server_recv_async_serves_another_process_while_the_loop_does_other_work(prefix):
    async def main():
        server = ringcast.Server("served", prefix=prefix)
        ticker = Ticker()
        t0 = time.monotonic()
        with pytest.raises(ringcast.Timeout):
            await server.recv_async(timeout=0.2)
        assert time.monotonic() - t0 >= 0.2
        threads = threading.active_count()  # the reactor thread runs by now
        before = ticker.ticks
        # A client in another process connects (its greeting is answered by a
        # recv_async) and makes 50 calls.
        child = python_child(CLIENT_CHILD, prefix, "served", "50", stdout=subprocess.PIPE)
        try:
            for _ in range(50):
                req = await server.recv_async(timeout=LONG)
                req.respond(b"a:" + bytes(req))
            while child.poll() is None:
                await asyncio.sleep(0.01)
            assert child.returncode == 0
            assert child.stdout.read().strip() == b"DONE"
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert ticker.ticks > before
        await ticker.stop()
        assert ticker.longest_gap < 1.0, ticker.longest_gap
        assert threading.active_count() == threads
        server.close()
        with pytest.raises(ringcast.Closed):
            await server.recv_async(timeout=0)

    asyncio.run(main())


def test_a_cancelled_recv_async_or_call_async_consumes_nothing(prefix):
    child = start_server_child(prefix, "cancels")
    try:
        with ringcast.Client("cancels", wait=5, prefix=prefix) as c:

            async def main():
                # A wait for "late" (answered after the next request), cancelled while
                # pending: its response is still there for the next receive.
                late = c.send(b"late", timeout=LONG)
                task = asyncio.create_task(c.recv_async(late))
                await asyncio.sleep(0.05)
                assert not task.done()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert bytes(await c.call_async(b"x", timeout=LONG)) == b"echo:x"
                r = await c.recv_async(late, timeout=BOUND)
                assert bytes(r) == b"late" and r.last
                assert await c.recv_async(late, timeout=LONG) is None  # its stream ended

                # A cancelled call_async abandons its call only; another wait on the
                # client meanwhile is still woken.
                late = c.send(b"late", timeout=LONG)

                async def copied(response):
                    # Copied at once: the client holds one response at a time.
                    return bytes(await response)

                waiting = asyncio.create_task(copied(c.recv_async(late, timeout=LONG)))
                hung = asyncio.create_task(c.call_async(b"hang", timeout=LONG))
                await asyncio.sleep(0.05)
                assert c.in_flight == 2
                hung.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await hung
                assert c.in_flight == 1
                assert not waiting.done()
                assert bytes(await c.call_async(b"y", timeout=LONG)) == b"echo:y"
                assert await asyncio.wait_for(waiting, BOUND) == b"late"

                # A timeout is a cancellation too: the call is abandoned, the client usable.
                with pytest.raises(ringcast.Timeout):
                    await c.call_async(b"hang", timeout=0.1)
                assert c.in_flight == 0
                with pytest.raises(ringcast.Timeout):
                    call = c.send(b"hang", timeout=LONG)
                    await c.recv_async(call, timeout=0.1)
                assert c.in_flight == 1  # recv's timeout leaves the call in flight
                c.cancel(call)
                assert bytes(await c.call_async(b"z", timeout=LONG)) == b"echo:z"

            asyncio.run(main())
            c.call(b"quit", timeout=LONG).release()
        assert child.wait(LONG) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_call_async_waits_for_room_in_a_full_queue_on_the_reactor(prefix):
    async def main():
        server = ringcast.Server("fullq", prefix=prefix, queue=2, response_slots=2)
        greeter = asyncio.create_task(server.recv_async(timeout=LONG))
        client = await asyncio.to_thread(ringcast.Client, "fullq", 5, prefix)
        # The greeting was answered by the pending receive; nothing is received now.
        greeter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await greeter
        # Two calls abandoned at once: their requests fill the queue (nobody reads).
        for _ in range(2):
            client.cancel(client.send(b"old", timeout=0))
        with pytest.raises(ringcast.Full):
            client.send(b"no room", timeout=0)
        ticker = Ticker()
        # A call_async waiting for room, cancelled: it sent nothing.
        task = asyncio.create_task(client.call_async(b"gone", timeout=LONG))
        await asyncio.sleep(0.1)
        assert not task.done() and client.in_flight == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # A timeout while waiting for room: Timeout, nothing sent.
        with pytest.raises(ringcast.Timeout):
            await client.call_async(b"late", timeout=0.1)
        assert client.in_flight == 0

        async def copied(response):
            return bytes(await response)

        task = asyncio.create_task(copied(client.call_async(b"new", timeout=LONG)))
        await asyncio.sleep(0.05)
        assert not task.done()
        for expected in (b"old", b"old", b"new"):
            req = await server.recv_async(timeout=LONG)
            assert bytes(req) == expected
            req.respond(b"re:" + bytes(req))
        assert await task == b"re:new"
        assert ticker.ticks > 10  # the loop ran meanwhile
        await ticker.stop()
        client.close()
        server.close()

    asyncio.run(main())


def test_a_cancelled_server_recv_async_consumes_nothing(prefix):
    async def main():
        server = ringcast.Server("scancel", prefix=prefix)
        task = asyncio.create_task(server.recv_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The client connects while nobody receives: its greeting waits in the queue.
        child = python_child(CLIENT_CHILD, prefix, "scancel", "2", stdout=subprocess.PIPE)
        try:
            # Receives cancelled again and again while the greeting and the first call
            # come: none of them loses a request.
            req = None
            for _ in range(200):
                task = asyncio.create_task(server.recv_async())
                await asyncio.sleep(0.005)
                if task.done():
                    req = task.result()
                    break
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            if req is None:
                req = await server.recv_async(timeout=LONG)
            assert bytes(req) == b"q0"
            req.respond(b"a:q0")
            req = await server.recv_async(timeout=LONG)
            assert bytes(req) == b"q1"
            req.respond(b"a:q1")
            while child.poll() is None:
                await asyncio.sleep(0.01)
            assert child.returncode == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        server.close()

    asyncio.run(main())


def test_a_sigkilled_server_ends_a_pending_call_async_with_disconnected(prefix):
    child = start_server_child(prefix, "killed")
    try:
        with ringcast.Client("killed", wait=5, prefix=prefix) as c:

            async def main():
                task = asyncio.create_task(c.call_async(b"hang", timeout=LONG))
                line = await asyncio.get_running_loop().run_in_executor(
                    None, child.stdout.readline
                )
                assert line.strip() == "HANGING"
                await asyncio.sleep(0.05)
                assert not task.done()
                killed = time.monotonic()
                child.send_signal(signal.SIGKILL)
                with pytest.raises(ringcast.Disconnected):
                    await asyncio.wait_for(task, LONG)
                return time.monotonic() - killed

            after = asyncio.run(main())
            assert after < BOUND, after
            with pytest.raises(ringcast.Disconnected):
                c.call(b"anyone?", timeout=LONG)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_a_wait_set_reports_a_subscriber_a_server_and_a_client_ready_exactly_when_they_are(
    prefix, topic
):
    ws = ringcast.WaitSet()
    with pytest.raises(TypeError):
        ws.add(object())
    pub = ringcast.Publisher(topic, slots=8, slot_size=64, prefix=prefix)
    sub = ringcast.Subscriber(topic, prefix=prefix)
    server = ringcast.Server("wsvc", prefix=prefix)
    ws.add(sub)
    ws.add(server)
    assert ws.wait(timeout=0.1) == []
    # A client connecting: the server is ready with its greeting, which try_recv answers.
    box = []
    t = threading.Thread(target=lambda: box.append(ringcast.Client("wsvc", 5, prefix)))
    t.start()
    assert ws.wait(timeout=LONG) == [server]
    assert server.try_recv() is None
    t.join(LONG)
    client = box[0]
    ws.add(client)
    with pytest.raises(ValueError):
        ws.add(client)
    assert len(ws) == 3
    assert ws.wait(timeout=0.1) == []

    pub.send(b"m")
    assert ws.wait(timeout=LONG) == [sub]
    with sub.try_recv() as s:
        assert bytes(s) == b"m"
    assert ws.wait(timeout=0.1) == []

    call = client.send(b"q", timeout=LONG)
    assert ws.wait(timeout=LONG) == [server]
    req = server.try_recv()
    assert bytes(req) == b"q"
    with pytest.raises(ringcast.Busy):
        ws.wait(timeout=0)  # the held request must be answered or released first
    req.respond(b"a")
    assert ws.wait(timeout=LONG) == [client]
    r = client.recv(call, timeout=0)
    assert bytes(r) == b"a"
    with pytest.raises(ringcast.Busy):
        ws.wait(timeout=0)
    r.release()
    assert ws.wait(timeout=0.1) == []

    # Two calls answered in reverse order: receiving the second sets the first aside,
    # and the client stays ready for it.
    c1 = client.send(b"1", timeout=LONG)
    c2 = client.send(b"2", timeout=LONG)
    assert ws.wait(timeout=LONG) == [server]
    first = server.try_recv()
    assert bytes(first) == b"1"
    first.release()  # answered later
    assert ws.wait(timeout=LONG) == [server]
    second = server.try_recv()
    second.respond(b"two")
    first.respond(b"one")
    assert ws.wait(timeout=LONG) == [client]
    assert bytes(client.recv(c2, timeout=0)) == b"two"
    assert ws.wait(timeout=0) == [client]  # "one" is set aside
    assert bytes(client.recv(c1, timeout=0)) == b"one"
    assert ws.wait(timeout=0.1) == []

    ws.remove(sub)
    with pytest.raises(ValueError):
        ws.remove(sub)
    pub.send(b"unwatched")
    assert ws.wait(timeout=0.1) == []
    # The server gone: the client is ready (its receive raises Disconnected).
    ws.remove(server)
    server.close()
    t0 = time.monotonic()
    assert ws.wait(timeout=LONG) == [client]
    assert time.monotonic() - t0 < BOUND
    with pytest.raises(ringcast.Disconnected):
        client.recv(client.send(b"x", timeout=0), timeout=0)
    client.close()
    pub.close()


def test_a_python_server_in_another_process_and_its_sigkill_under_a_waiting_client(prefix):
    child = start_server_child(prefix, "remote")
    try:
        with ringcast.Client("remote", wait=5, prefix=prefix) as c:
            assert bytes(c.call(b"over there", timeout=LONG)) == b"echo:over there"
            call = c.send(b"hang", timeout=LONG)
            assert child.stdout.readline().strip() == "HANGING"
            result = {}

            def wait():
                t0 = time.monotonic()
                try:
                    c.recv(call, timeout=LONG)
                    result["got"] = "a response"
                except ringcast.Disconnected:
                    result["got"] = "disconnected"
                result["after"] = time.monotonic() - t0

            t = threading.Thread(target=wait)
            t.start()
            time.sleep(0.1)  # the client is waiting
            killed = time.monotonic()
            child.send_signal(signal.SIGKILL)
            child.wait()
            t.join(LONG)
            assert result["got"] == "disconnected"
            assert time.monotonic() - killed < BOUND
            with pytest.raises(ringcast.Disconnected):
                c.call(b"anyone?", timeout=LONG)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# ---- C programs (ffi/tests/c) as client and server of Python -------------------------


@pytest.fixture(scope="module")
def c_programs(tmp_path_factory):
    """ffi/tests/c/svc_server.c and svc_client.c built against the C library of the Rust
    build, found as test_lanes.py finds it (deps/ first: `cargo test` refreshes it)."""
    found = [d for d in (BIN / "deps", BIN) if (d / "libringcast_ffi.so").exists()]
    if not found:
        pytest.fail(f"libringcast_ffi.so is not built under {BIN}: run the README's test command")
    lib_dir = found[0]
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc)")
    out = tmp_path_factory.mktemp("c_svc")
    ffi = ROOT / "ffi"
    progs = {}
    for name in ["svc_server", "svc_client"]:
        exe = out / name
        subprocess.run(
            [cc, "-std=c99", "-O1", "-Wall", "-Werror", f"-I{ffi / 'include'}", f"-I{ffi / 'tests' / 'c'}",
             "-o", str(exe), str(ffi / "tests" / "c" / f"{name}.c"),
             f"-L{lib_dir}", "-lringcast_ffi", f"-Wl,-rpath,{lib_dir}"],
            check=True,
        )
        progs[name] = str(exe)
    return progs


def c_env():
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    return env


def test_a_c_client_of_a_python_server(prefix, served, c_programs):
    out = subprocess.run(
        [c_programs["svc_client"], prefix, served, "basic"],
        stdout=subprocess.PIPE,
        text=True,
        timeout=LONG * 2,
        env=c_env(),
    )
    assert out.returncode == 0, out.stdout
    assert "failed=0" in out.stdout


def test_a_python_client_of_a_c_server(prefix, c_programs):
    server = subprocess.Popen(
        [c_programs["svc_server"], prefix, "csvc"],
        stdout=subprocess.PIPE,
        text=True,
        env=c_env(),
    )
    try:
        assert server.stdout.readline().strip() == "SERVING"
        with ringcast.Client("csvc", wait=5, prefix=prefix) as c:
            assert bytes(c.call(b"from python", timeout=LONG)) == b"echo:from python"
            assert [bytes(r) for r in c.stream(b"stream 4", timeout=LONG)] == [
                f"part {i}".encode() for i in range(4)
            ]
            with pytest.raises(ringcast.NoResponse):
                c.call(b"end", timeout=LONG)
            assert bytes(c.call(b"quit", timeout=LONG)) == b"bye"
        assert server.wait(LONG) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_close_wakes_pending_async_waits_with_closed(prefix):
    """A server or client closed while an async wait on it is pending: the wait raises
    ``Closed`` at once instead of waiting for a wake-up that cannot come."""

    async def main():
        server = ringcast.Server("closing", prefix=prefix)
        waiting = asyncio.create_task(server.recv_async())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        server.close()
        with pytest.raises(ringcast.Closed):
            await asyncio.wait_for(waiting, 5)

        server = ringcast.Server("closing2", prefix=prefix)
        serving = asyncio.create_task(server.recv_async())  # answers the greeting
        client = await asyncio.to_thread(ringcast.Client, "closing2", 5, prefix)
        calling = asyncio.create_task(client.call_async(b"never answered"))
        req = await asyncio.wait_for(serving, 5)  # received, deliberately not answered
        await asyncio.sleep(0.05)
        assert not calling.done()
        client.close()
        with pytest.raises(ringcast.Closed):
            await asyncio.wait_for(calling, 5)
        req.release()
        server.close()

    asyncio.run(main())


def test_call_async_takes_a_response_of_the_same_client_as_its_request(prefix, served):
    """As ``call`` does: the payload may be a response the client holds."""

    async def main():
        with ringcast.Client(served, wait=5, prefix=prefix) as c:
            first = await c.call_async(b"abc", timeout=LONG)
            want = b"echo:" + bytes(first)
            again = await c.call_async(first, timeout=LONG)
            assert bytes(again) == want == b"echo:echo:abc"

    asyncio.run(main())


# A server run as `nobody` (uid 65534) with every local user allowed to call (mode 0o666):
# echoes until "quit". Everything is imported before the child becomes `nobody`.
OTHER_USER_SERVER = """
import os, sys, ringcast
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
server = ringcast.Server(sys.argv[2], prefix=sys.argv[1], mode=0o666)
print("SERVING", flush=True)
for req in server:
    data = bytes(req)
    req.respond(data)
    if data == b"quit":
        break
server.close()
"""


def test_a_service_of_another_user_is_used_only_when_trusted(prefix):
    if os.geteuid() != 0:
        pytest.skip("needs root to run a server as another user")
    with pytest.raises(ringcast.InvalidConfig, match="mode"):
        ringcast.Server("badmode", prefix=prefix, mode=0o700)
    service = "otheruser"
    child = python_child(OTHER_USER_SERVER, prefix, service, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "SERVING"
        base = f"/dev/shm/{prefix}.{service}"
        assert os.stat(f"{base}..requests").st_mode & 0o777 == 0o666
        assert os.stat(f"{base}..service").st_mode & 0o777 == 0o644
        assert os.stat(f"{base}..service").st_uid == 65534
        # Not trusted by default: refused at once (not waited out), naming the owner.
        start = time.monotonic()
        with pytest.raises(ringcast.UntrustedOwner) as e:
            ringcast.Client(service, prefix=prefix, wait=2.0)
        assert time.monotonic() - start < 1.0
        assert e.value.uid == 65534 and "uid 65534" in str(e.value)
        assert isinstance(e.value, ringcast.PermissionDenied)
        for kw in ({"trust_users": [65534]}, {"trust_groups": [65534]}, {"trust_any_owner": True}):
            with ringcast.Client(service, prefix=prefix, wait=5.0, **kw) as client:
                for i in range(40):  # the response ring (16 slots) wraps: released each time
                    assert bytes(client.call(f"hi {i}".encode(), timeout=LONG)) == f"hi {i}".encode()
        with ringcast.Client(service, prefix=prefix, wait=5.0, trust_users=[65534]) as client:
            assert bytes(client.call(b"quit", timeout=LONG)) == b"quit"
        assert child.wait(timeout=LONG) == 0
    finally:
        child.kill()
        child.wait()
