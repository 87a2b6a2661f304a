#!/usr/bin/env python3
"""Prints the CIFAR-10 training-set literals that tests/test_cifar.cpp checks, computed from the raw
bytes with the standard library only (independent of oodkit's loader).

A record is 1 label byte + 3072 pixel bytes: the R plane, then G, then B, each 32x32 row-major.

    python3 tools/cifar_literals.py [../shared/datasets/cifar10]
"""
import sys

RECORD = 1 + 3072
# (global image index, channel, row, column) of the pixels printed below.
PIXELS = [(0, 0, 0, 0), (0, 1, 15, 16), (0, 2, 31, 31), (12345, 2, 10, 28),
          (31337, 1, 0, 31), (49999, 0, 31, 0), (49999, 2, 16, 9)]
IMAGES = [0, 12345, 31337, 49999]  # per-image pixel sums and labels


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/cifar10"
    records = []
    for b in range(1, 6):
        with open(f"{root}/data_batch_{b}.bin", "rb") as f:
            data = f.read()
        assert len(data) % RECORD == 0, (b, len(data))
        batch = [data[i:i + RECORD] for i in range(0, len(data), RECORD)]
        counts = [0] * 10
        for r in batch:
            counts[r[0]] += 1
        planes = [sum(sum(r[1 + c * 1024:1 + (c + 1) * 1024]) for r in batch) for c in range(3)]
        print(f"batch {b}: {len(batch)} records, class counts {counts}, R/G/B sums {planes}")
        records += batch
    counts = [0] * 10
    for r in records:
        counts[r[0]] += 1
    print(f"total {len(records)} records, class counts {counts}")
    for i in IMAGES:
        print(f"image {i}: label {records[i][0]}, pixel sum {sum(records[i][1:])}")
    for i, c, y, x in PIXELS:
        print(f"image {i} channel {c} row {y} col {x}: {records[i][1 + c * 1024 + y * 32 + x]}")


if __name__ == "__main__":
    main()
