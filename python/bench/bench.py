"""ringcast from Python against multiprocessing: latency and throughput at 64 B and 4 MiB.

    python python/bench/bench.py [--rounds 5] [--seconds 0.5] [--json FILE]

Two processes (this one and a child) exchange messages through each transport:

* ``ringcast``: two Block topics (ping and pong); the receiver reads a sample in place
  (a zero-copy ``memoryview``), the sender copies its payload into a slot (``send``);
* ``mp.Pipe``: ``multiprocessing.Pipe`` with ``send_bytes`` / ``recv_bytes``;
* ``mp.Queue``: ``multiprocessing.Queue(maxsize=8)`` (pickled ``bytes``);
* ``shm+pipe``: ``multiprocessing.shared_memory`` blocks, one per direction, and a pipe
  that carries one-byte "a message is in your block" and "done with yours" notes (the
  receiver reads the block in place; the sender waits for "done" before overwriting).

Latency is ping-pong: each side echoes the full payload back (one copy per hop, as the
others), one-way = round trip / 2, the median over the round. Throughput is one way, back
to back; each message is received as a buffer the receiver could use. The transports
alternate in short rounds; each figure is the median over rounds, and each ratio the
median of per-round ratios against ``mp.Pipe``. With ``--rust-bench PATH`` (default:
target/release/ringcast-bench if built) the Rust ``ringcast-futex`` and ``ringcast-spin``
64 B ping-pongs are measured in the same run, for the Python-over-Rust latency ratios.
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import shared_memory

import ringcast

SIZES = [64, 4 << 20]
PREFIX = f"rcpybench{os.getpid()}"


# --- one end of each transport: send(bytes-like), recv() -> buffer, close() ------------


class Ringcast:
    name = "ringcast"

    def __init__(self, tx, rx, size, parent):
        # Two slots for big frames (double buffering, as shm+pipe has one block a way):
        # more would spread the frames over more memory than the caches hold.
        slots = 2 if size >= 1 << 20 else 8
        self.pub = ringcast.Publisher(tx, slots=slots, slot_size=size, overflow="block", prefix=PREFIX)
        self.rx_topic, self.sub, self.held = rx, None, None
        self.parent = parent

    def connect(self):
        self.sub = ringcast.Subscriber(self.rx_topic, prefix=PREFIX, wait=30, start="oldest")
        self.pub.wait_for_subscribers(1, timeout=30)

    def send(self, data):
        self.pub.send(data)

    def recv(self):
        if self.held is not None:
            self.held.release()  # the view handed out last time is gone by now
        self.held = self.sub.recv(timeout=30)
        return self.held

    def close(self):
        self.held = None
        self.sub.close()
        self.pub.close()


class Pipe:
    name = "mp.Pipe"

    def __init__(self, conn):
        self.conn = conn

    def connect(self):
        pass

    def send(self, data):
        self.conn.send_bytes(data)

    def recv(self):
        return self.conn.recv_bytes()

    def close(self):
        self.conn.close()


class Queue:
    name = "mp.Queue"

    def __init__(self, tx, rx):
        self.tx, self.rx = tx, rx

    def connect(self):
        pass

    def send(self, data):
        self.tx.put(bytes(data))

    def recv(self):
        return self.rx.get()

    def close(self):
        pass


class ShmPipe:
    """One shared-memory block per direction and a pipe carrying b"d" (your block has a
    message) and b"a" (done with the block you wrote: you may overwrite it)."""

    name = "shm+pipe"

    def __init__(self, tx_name, rx_name, conn, size):
        self.tx = shared_memory.SharedMemory(tx_name)
        self.rx = shared_memory.SharedMemory(rx_name)
        self.conn, self.size = conn, size
        self.tx_busy = False  # the peer has not acknowledged our last message
        self.rx_ready = False  # a b"d" arrived while we waited for an ack
        self.rx_unacked = False  # we handed out a view of the peer's block

    def connect(self):
        pass

    def _take(self, m):
        if m == b"a":
            self.tx_busy = False
        else:
            self.rx_ready = True

    def send(self, data):
        while self.tx_busy:
            self._take(self.conn.recv_bytes())
        n = len(data)
        self.tx.buf[:8] = n.to_bytes(8, "little")
        self.tx.buf[8:8 + n] = data
        self.tx_busy = True
        self.conn.send_bytes(b"d")

    def recv(self):
        if self.rx_unacked:
            self.conn.send_bytes(b"a")
            self.rx_unacked = False
        while not self.rx_ready:
            self._take(self.conn.recv_bytes())
        self.rx_ready, self.rx_unacked = False, True
        n = int.from_bytes(self.rx.buf[:8], "little")
        return self.rx.buf[8:8 + n]

    def close(self):
        for block in (self.tx, self.rx):
            try:
                block.close()
            except BufferError:
                pass  # a view handed out is still alive; the mapping goes with it


# --- the child: echo (latency) or produce (throughput) --------------------------------


def child(kind, mode, size, seconds, args):
    end = make_end(kind, size, args, parent=False)
    end.connect()
    payload = bytes(size)
    if mode == "pingpong":
        while True:
            msg = end.recv()
            if len(msg) == 1:
                break
            end.send(msg)
    else:
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            for _ in range(16):
                end.send(payload)
        end.send(b"!")
        end.recv()  # the parent's "done"
    end.close()


def make_end(kind, size, args, parent):
    if kind == "ringcast":
        ping, pong = args
        return Ringcast(ping if parent else pong, pong if parent else ping, size, parent)
    if kind == "mp.Pipe":
        return Pipe(args[0] if parent else args[1])
    if kind == "mp.Queue":
        q1, q2 = args
        return Queue(q1, q2) if parent else Queue(q2, q1)
    if kind == "shm+pipe":
        a, b, c1, c2 = args
        return ShmPipe(a, b, c1, size) if parent else ShmPipe(b, a, c2, size)
    raise ValueError(kind)


def link_args(kind, size, tag):
    """What both ends need, made before the fork; and a cleanup."""
    if kind == "ringcast":
        return (f"ping{tag}", f"pong{tag}"), lambda: None
    if kind == "mp.Pipe":
        return mp.Pipe(), lambda: None
    if kind == "mp.Queue":
        # Bounded, so a producer cannot run minutes ahead of its consumer.
        return (mp.Queue(maxsize=8), mp.Queue(maxsize=8)), lambda: None
    blocks = [shared_memory.SharedMemory(create=True, size=size + 8) for _ in range(2)]
    c1, c2 = mp.Pipe()

    def cleanup():
        for b in blocks:
            b.close()
            b.unlink()

    return (blocks[0].name, blocks[1].name, c1, c2), cleanup


def measure(kind, mode, size, seconds, tag):
    args, cleanup = link_args(kind, size, tag)
    proc = mp.Process(target=child, args=(kind, mode, size, seconds, args))
    if kind == "ringcast":
        end = make_end(kind, size, args, parent=True)  # create our topic first
        proc.start()
    else:
        proc.start()
        end = make_end(kind, size, args, parent=True)
    end.connect()
    payload = bytes(size)
    try:
        if mode == "pingpong":
            samples = []
            stop = time.monotonic() + seconds
            big = size >= 1 << 16
            warm, least = (5, 10) if big else (50, 20)
            while time.monotonic() < stop or len(samples) < least:
                t0 = time.perf_counter_ns()
                end.send(payload)
                reply = end.recv()
                t1 = time.perf_counter_ns()
                assert len(reply) == size
                if warm:
                    warm -= 1
                else:
                    samples.append((t1 - t0) / 2)
            end.send(b"!")
            return statistics.median(samples)
        count, start = 0, time.perf_counter()
        while True:
            msg = end.recv()
            if len(msg) == 1:
                break
            count += 1
        took = time.perf_counter() - start
        end.send(b".")
        return count / took
    finally:
        proc.join(30)
        end.close()
        cleanup()


def rust_64(path):
    """The Rust 64 B one-way p50s in ns of ringcast-futex and ringcast-spin, from
    ringcast-bench in the same run ({} if it is not built)."""
    if not path or not os.path.exists(path):
        return {}
    out = {}
    for row in ("ringcast-futex", "ringcast-spin"):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run(
                [path, "--quick", "--rounds", "1", "--filter", f"pingpong/{row}/64", "--json", f.name],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            with open(f.name) as j:
                rows = json.load(j)
        out[row] = next((r["p50_ns"] for r in rows if r["transport"] == row), None)
    return out


def fmt_ns(ns):
    return f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def fmt_size(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} B"


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5, help="per transport per round")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--rust-bench", default=os.path.join(root, "target", "release", "ringcast-bench"))
    args = ap.parse_args()
    kinds = ["ringcast", "mp.Pipe", "mp.Queue", "shm+pipe"]
    results = {}
    tag = 0
    for mode in ["pingpong", "throughput"]:
        for size in SIZES:
            per_round = {k: [] for k in kinds}
            for r in range(args.rounds):
                order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
                for k in order:
                    tag += 1
                    per_round[k].append(measure(k, mode, size, args.seconds, tag))
            results[(mode, size)] = per_round
            print(f"{mode} {fmt_size(size)}: "
                  + ", ".join(f"{k} {statistics.median(v):.4g}" for k, v in per_round.items()),
                  file=sys.stderr)
    rust = rust_64(args.rust_bench)
    rows = []
    print("| scenario | payload | transport | figure | vs mp.Pipe (median of per-round ratios, min..max) |")
    print("|---|---:|---|---:|---|")
    for (mode, size), per_round in results.items():
        for k, v in per_round.items():
            if mode == "pingpong":
                ratios = [p / x for x, p in zip(v, per_round["mp.Pipe"])]  # >1: faster than Pipe
                figure = fmt_ns(statistics.median(v)) + " one-way p50"
            else:
                ratios = [x / p for x, p in zip(v, per_round["mp.Pipe"])]
                figure = f"{statistics.median(v):,.0f} msgs/s ({statistics.median(v) * size / (1 << 20):,.0f} MiB/s)"
            rows.append({"scenario": mode, "payload_bytes": size, "transport": k,
                         "median": statistics.median(v), "speedup_vs_pipe": statistics.median(ratios),
                         "min": min(ratios), "max": max(ratios), "rounds": len(v)})
            print(f"| {mode} | {fmt_size(size)} | {k} | {figure} | "
                  f"{statistics.median(ratios):.2f}x faster ({min(ratios):.2f}..{max(ratios):.2f}) |")
    lat64 = statistics.median(results[("pingpong", 64)]["ringcast"])
    print(f"\nringcast from Python, 64 B one-way p50 {fmt_ns(lat64)}", end="")
    for row, ns in rust.items():
        if ns:
            print(f"; {lat64 / ns:.2f}x the Rust {row} row ({fmt_ns(ns)})", end="")
    print(" (same run)" if rust else " (ringcast-bench not built: no Rust figure)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "rust_64_p50_ns": rust}, f, indent=2)


if __name__ == "__main__":
    main()
