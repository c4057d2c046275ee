"""Compares two builds of ringcast-bench, interleaved: OLD and NEW alternate (the order
flips every round) over the same filters, and the median of the per-round NEW/OLD ratios
is reported with its spread. This machine changes speed during a run, so only ratios
taken in the same round mean anything.

usage: compare_builds.py ROUNDS quick|full FILTER[,FILTER...]
       (OLD and NEW binaries from the RINGCAST_BENCH_OLD / RINGCAST_BENCH_NEW variables)
"""
import json, os, subprocess, statistics, sys
bins = {"old": os.environ["RINGCAST_BENCH_OLD"], "new": os.environ.get("RINGCAST_BENCH_NEW", "target/release/ringcast-bench")}
filters = sys.argv[3].split(",") if len(sys.argv) > 3 else ["pingpong/ringcast", "throughput/ringcast", "pingpong/floor"]
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
res = {}  # (label, which) -> list per round
for r in range(rounds):
    order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
    for f in filters:
        for which in order:
            out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"compare_{os.getpid()}_{which}.json")
            subprocess.run([bins[which]] + (["--quick"] if sys.argv[2] == "quick" else []) + ["--filter", f, "--json", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            for row in json.load(open(out)):
                label = f"{row['scenario']}/{row['transport']}/{row['payload_bytes']}"
                v = row["p50_ns"] if row["scenario"] == "pingpong" else row["msgs_per_s"]
                res.setdefault((label, which), []).append(v)
labels = sorted({l for l, _ in res})
print(f"{rounds} interleaved rounds (order alternates), mode {sys.argv[2]}, filters {filters}")
print("| row | metric | old median | new median | median of per-round new/old |")
print("|---|---|---:|---:|---:|")
for l in labels:
    o, n = res.get((l, "old"), []), res.get((l, "new"), [])
    if not o or not n: continue
    ratios = [b / a for a, b in zip(o, n) if a]
    metric = "p50 ns (lower is better)" if l.startswith("pingpong") else "msgs/s (higher is better)"
    print(f"| {l} | {metric} | {statistics.median(o):.4g} | {statistics.median(n):.4g} | {statistics.median(ratios):.3f} (spread {min(ratios):.2f}-{max(ratios):.2f}) |")
