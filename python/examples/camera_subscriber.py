"""A Python camera subscriber: 4 MiB RGBA frames from the Rust `camera_frames` publisher,
received as numpy arrays that *are* the shared-memory slots (no copy).

    cargo build --release --example camera_frames
    target/release/examples/camera_frames publisher rcdemo 1 &
    python python/examples/camera_subscriber.py --prefix rcdemo --frames 30

Each frame: a 64-byte header (magic, frame number, width, height, publish time,
checksum) and the pixels, which the publisher renders straight into the slot. This
checks the header and a sample of pixels against the publisher's generator, and that
the array lies inside the shared mapping.
"""

import argparse
import sys
import time

import numpy as np

import ringcast

MAGIC = int.from_bytes(b"RCFRAME1", "little")
HEADER = 64


def splitmix(x):
    """The publisher's pixel generator, vectorised (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def mapped(prefix, topic):
    name = f"/dev/shm/{prefix}.{topic}"
    with open("/proc/self/maps") as maps:
        return [tuple(int(a, 16) for a in line.split()[0].split("-"))
                for line in maps if line.rstrip().endswith(name)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", default="ringcast")
    ap.add_argument("--topic", default="camera")
    ap.add_argument("--frames", type=int, default=30)
    args = ap.parse_args()

    sub = ringcast.Subscriber(args.topic, prefix=args.prefix, wait=10)
    ranges = mapped(args.prefix, args.topic)
    words = np.arange(0, 1 << 19, 4099, dtype=np.uint64)  # a sample of 8-byte pixel words
    start, in_place, brightness = time.monotonic(), 0, []
    for n, frame in enumerate(sub):
        with frame:
            header = np.frombuffer(frame, dtype="<u8", count=8)
            if header[0] != MAGIC or header[1] != frame.seq:
                sys.exit(f"frame {frame.seq}: bad header {header[:2]}")
            w, h = int(header[2]), int(header[3])
            pixels = np.frombuffer(frame, dtype=np.uint8, offset=HEADER, count=w * h * 4)
            image = pixels.reshape(h, w, 4)  # still the slot: no copy
            got = np.frombuffer(frame, dtype="<u8", offset=HEADER, count=w * h // 2)[words.astype(np.intp)]
            want = splitmix((np.uint64(frame.seq) << np.uint64(32)) | words)
            if not np.array_equal(got, want):
                sys.exit(f"frame {frame.seq}: pixels differ from the publisher's")
            addr = image.ctypes.data
            in_place += any(lo <= addr and addr + image.nbytes <= hi for lo, hi in ranges)
            brightness.append(float(image[::64, ::64, 0].mean()))
            del header, pixels, image, got  # the views go before the slot does
        if n + 1 == args.frames:
            break
    took = time.monotonic() - start
    frames = len(brightness)
    print(f"camera_subscriber: {frames} frames of {w}x{h} RGBA in {took:.2f} s, "
          f"{in_place} of them read in place (numpy views of the shared slot), "
          f"mean red {np.mean(brightness):.1f}")
    return 0 if frames == args.frames and in_place == frames else 1


if __name__ == "__main__":
    sys.exit(main())
