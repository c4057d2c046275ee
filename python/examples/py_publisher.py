"""A Python publisher read by the Rust CLI: sensor readings as text lines.

    python python/examples/py_publisher.py --prefix rcdemo --count 50 &
    target/release/ringcast --prefix rcdemo sub py-demo --count 50
"""

import argparse
import math
import sys

import ringcast


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", default="ringcast")
    ap.add_argument("--topic", default="py-demo")
    ap.add_argument("--count", type=int, default=50)
    args = ap.parse_args()
    with ringcast.Publisher(args.topic, slots=64, slot_size=128, prefix=args.prefix) as pub:
        if not pub.wait_for_subscribers(1, timeout=20):
            print("py_publisher: no subscriber within 20 s", file=sys.stderr)
            return 1
        for i in range(args.count):
            with pub.loan() as loan:  # written in place, in shared memory
                line = f"reading {i} temperature {20 + 5 * math.sin(i / 10):.2f}".encode()
                loan.write(line)
                loan.commit(len(line))
        # Closing the topic lets the subscriber drain it and exit.
    return 0


if __name__ == "__main__":
    sys.exit(main())
