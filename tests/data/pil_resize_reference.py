#!/usr/bin/env python3
"""Reference outputs for ResizeMode::PilBilinear (tests/test_image_folder.cpp, PilBilinear tests).

Prints the C++ literals pasted into the test: for each case, Pillow's
Image.resize((w, h), Image.Resampling.BILINEAR) of a deterministic uint8 input, as a hex string of
the output in oodkit's planar [C, H, W] order (two hex digits per pixel).

Input pixel (c, i, j) (channel, row, column) = (i*37 + j*11 + c*101 + salt) % 256, the same
formula as pil_input() in the test; `salt` varies per case. Then, in every channel, the top-left
bh x bw block is set to 255 and the bottom-right bh x bw block to 0, with bh = min(3, H // 2),
bw = min(3, W // 2): outputs whose taps lie in one block must come out exactly 255 / 0 (the
fixed-point weights, rounded one by one, must not drift the sum off the ends of the range), and
outputs at the blocks' edges mix 0 and 255 with the formula's values.

Not a project dependency: CI only compares against the committed literals. To regenerate:
    pip install pillow numpy
    python3 tests/data/pil_resize_reference.py
The committed literals were made with Pillow 13.0.0 and NumPy 2.4.6 (printed in the header).

Pillow 13 changed the order of the two passes (python-pillow/Pillow#9549): vertical first when the
height loses more than twice as many pixels as the width, horizontal first otherwise; Pillow 12
and older always went horizontal first. Gray7x5To3x4 and Gray9x2To4x5 take the vertical-first
order and come out differently (one pixel each) under Pillow 12.2.0, so the script refuses
Pillow < 13.
"""
import sys

import numpy as np
import PIL
from PIL import Image

# (name, channels, in_h, in_w, out_h, out_w, salt)
CASES = [
    ("Oe64To32Rgb", 3, 64, 64, 32, 32, 0),
    ("Rgb8To4", 3, 8, 8, 4, 4, 5),
    ("Gray7x5To3x4", 1, 7, 5, 3, 4, 9),   # non-integer ratios: rows 7 -> 3, columns 5 -> 4 (vertical first)
    ("Rgb5x7To4x3", 3, 5, 7, 4, 3, 17),   # non-integer ratios, the other way round (horizontal first)
    ("Rgb3x3To7x5", 3, 3, 3, 7, 5, 23),   # upscaling both axes (no widening)
    ("Gray6x4To6x2", 1, 6, 4, 6, 2, 31),  # columns only: the vertical pass is skipped
    ("Rgb6x4To3x4", 3, 6, 4, 3, 4, 41),   # rows only: the horizontal pass is skipped
    ("Gray9x2To4x5", 1, 9, 2, 4, 5, 53),  # shrink rows, grow columns (vertical first)
    ("Rgb12x6To3x4", 3, 12, 6, 3, 4, 61),  # rows lose 9 > 2 * 2 pixels: vertical first
    ("Rgb10x7To4x4", 3, 10, 7, 4, 4, 71),  # rows lose 6 = 2 * 3 pixels: still horizontal first
]

def pil_input(c, h, w, salt):
    i = np.arange(h).reshape(1, h, 1)
    j = np.arange(w).reshape(1, 1, w)
    ch = np.arange(c).reshape(c, 1, 1)
    a = ((i * 37 + j * 11 + ch * 101 + salt) % 256).astype(np.uint8)
    bh, bw = min(3, h // 2), min(3, w // 2)
    a[:, :bh, :bw] = 255
    a[:, h - bh:, w - bw:] = 0
    return a  # [C, H, W]


def pil_resize(a, out_h, out_w):
    c = a.shape[0]
    img = Image.fromarray(a[0], "L") if c == 1 else Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0)), "RGB")
    r = np.asarray(img.resize((out_w, out_h), Image.Resampling.BILINEAR))
    return r.reshape(out_h, out_w, 1).transpose(2, 0, 1) if c == 1 else r.transpose(2, 0, 1)


def main():
    if int(PIL.__version__.split(".")[0]) < 13:
        sys.exit(f"Pillow {PIL.__version__}: the literals follow Pillow 13's pass order; use Pillow >= 13")
    print(f"// Made by tests/data/pil_resize_reference.py with Pillow {PIL.__version__}, NumPy {np.__version__}.")
    for name, c, h, w, oh, ow, salt in CASES:
        out = pil_resize(pil_input(c, h, w, salt), oh, ow)
        hexs = out.astype(np.uint8).tobytes().hex()
        print(f'    {{"{name}", {c}, {h}, {w}, {oh}, {ow}, {salt},')
        # C++ adjacent string literals, 128 hex digits a line.
        for k in range(0, len(hexs), 128):
            print(f'     "{hexs[k:k + 128]}"')
        print("    },")


if __name__ == "__main__":
    main()
