#!/usr/bin/env python3
"""A labelled picture grid: images and their maps, with set names, column headers, each image's score
and ID/OOD decision, and a colour bar per map (called by `oodkit heatmap show`; usable by any command).

    python3 tools/picture_grid.py ARRAYS.safetensors --out GRID.png [--labels-out TEXTS.json]

ARRAYS.safetensors (written by the caller):
  images         U8  [N, 3, H, W]  the inputs as shown (rows in display order)
  map/<column>   F32 [N, H, W]     one or more maps (header order = column order); higher = more OOD
  score/<column> F64 [N]           optional: the column's score (higher = more ID)
  set            I64 [N]           index into the metadata's "sets"
  __metadata__ (strings):
    sets                JSON list of set names (a block of rows each, in order of first appearance)
    title               the figure title
    vmax/<column>       top of the column's colour scale (the bottom is 0); the same for every image,
                        so that tiles compare (dark = looks ID)
    scale_note/<column> what vmax is (e.g. "99th percentile of 1000 held-out ID images"), shown
                        under the colour bar
    threshold/<column>  optional decision threshold: ID iff score >= threshold, else OOD
    overlay             "1": after each map an overlay tile ((input + coloured map) / 2)
Each tile row holds max(1, 12 // tiles-per-image) images. The PNG is written atomically (temporary
name, then rename). --labels-out writes every text the figure draws (a JSON list, for tests).
Exit status: 0 written; 2 bad input (named on stderr); 3 matplotlib or numpy missing.
"""
import argparse
import json
import os
import sys

from report import BadInput, atomic_savefig, read_header  # the report script beside this one


DTYPES = {"U8": "u1", "F32": "<f4", "F64": "<f8", "I64": "<i8"}


def read_arrays(np, path):
    """(name -> numpy array, metadata dict) of a safetensors file."""
    header, data = read_header(path)
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dt = DTYPES.get(t.get("dtype"))
        if dt is None:
            raise BadInput("%s: tensor '%s' has dtype %s" % (path, name, t.get("dtype")))
        a, b = t["data_offsets"]
        count = int(np.prod(t["shape"])) if t["shape"] else 1
        if not 0 <= a <= b <= len(data) or b - a != count * np.dtype(dt).itemsize:
            raise BadInput("%s: tensor '%s' has bad data offsets %s" % (path, name, t["data_offsets"]))
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(t["shape"])
    return out, header.get("__metadata__", {})


def grid_spec(arrays, meta, path):
    """The checked contents: images [N,H,W,3], columns [(name, map, score|None, vmax, note, threshold|None)],
    set index [N], set names, title, overlay flag."""
    def need(cond, what):
        if not cond:
            raise BadInput("%s: %s" % (path, what))
    images = arrays.get("images")
    need(images is not None and images.ndim == 4 and images.shape[1] == 3, "'images' must be U8 [N, 3, H, W]")
    n, _, h, w = images.shape
    sets = json.loads(meta.get("sets", "[]"))
    index = arrays.get("set")
    need(index is not None and index.shape == (n,), "'set' must be I64 [N]")
    need(len(sets) > 0 and all(0 <= int(i) < len(sets) for i in index), "'set' indexes outside metadata 'sets'")
    columns = []
    for name in arrays:
        if not name.startswith("map/"):
            continue
        col = name[4:]
        m = arrays[name]
        need(m.shape == (n, h, w), "'%s' must be F32 [N, H, W] = [%d, %d, %d]" % (name, n, h, w))
        score = arrays.get("score/" + col)
        need(score is None or score.shape == (n,), "'score/%s' must be [N]" % col)
        try:
            vmax = float(meta["vmax/" + col])
        except (KeyError, ValueError):
            raise BadInput("%s: metadata 'vmax/%s' missing or not a number" % (path, col))
        need(vmax > 0, "'vmax/%s' must be positive" % col)
        thr = meta.get("threshold/" + col)
        columns.append((col, m, score, vmax, meta.get("scale_note/" + col, ""), None if thr is None else float(thr)))
    need(columns, "no 'map/<column>' tensor")
    return (images.transpose(0, 2, 3, 1), columns, index, sets, meta.get("title", ""), meta.get("overlay") == "1")


def draw(plt, np, spec):
    """The figure of grid_spec's contents."""
    images, columns, index, sets, title, overlay = spec
    hot = plt.get_cmap("hot")
    headers = ["input"]
    for col, *_ in columns:
        headers += [col] + (["overlay"] if overlay else [])
    tiles = len(headers)
    per_row = max(1, 12 // tiles)
    # Rows of the grid: each set's images in order, per_row to a row; a new row at each set.
    rows = []
    for s in range(len(sets)):
        members = [i for i in range(len(index)) if int(index[i]) == s]
        for k in range(0, len(members), per_row):
            rows.append((s, members[k:k + per_row], k))
    tile_in = 1.05
    bar_in = 1.0 * len(columns)
    fig = plt.figure(figsize=(per_row * tiles * tile_in + bar_in + 1.0, len(rows) * 1.5 + 0.9))
    outer = fig.add_gridspec(1, 2, width_ratios=[per_row * tiles * tile_in + 0.8, bar_in], wspace=0.05)
    grid = outer[0].subgridspec(len(rows), per_row * tiles, hspace=0.55, wspace=0.06)
    mappable = {}
    for r, (s, members, start) in enumerate(rows):
        first = start == 0
        for j, i in enumerate(members):
            t = j * tiles
            ax = fig.add_subplot(grid[r, t])
            ax.imshow(images[i], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if first:
                ax.set_title(headers[0], fontsize=8)
            if j == 0:
                ax.set_ylabel(sets[s], fontsize=9, rotation=90)
            ax.set_xlabel("#%d" % (start + j), fontsize=7)  # the image's row within its set
            t += 1
            for col, m, score, vmax, _, thr in columns:
                ax = fig.add_subplot(grid[r, t])
                mappable[col] = ax.imshow(m[i], cmap=hot, vmin=0.0, vmax=vmax, interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
                if first:
                    ax.set_title(col, fontsize=8)
                if score is not None:
                    text = "%.4g" % score[i]
                    if thr is not None:
                        text += " ID" if score[i] >= thr else " OOD"
                    ax.set_xlabel(text, fontsize=7)
                t += 1
                if overlay:
                    ax = fig.add_subplot(grid[r, t])
                    heat = hot(np.clip(m[i] / vmax, 0.0, 1.0))[..., :3]
                    ax.imshow((images[i] / 255.0 + heat) / 2.0, interpolation="nearest")
                    ax.set_xticks([]), ax.set_yticks([])
                    if first:
                        ax.set_title("overlay", fontsize=8)
                    t += 1
    # One narrow colour bar per map column (the middle fifth of its slot), its label beside it.
    bars = outer[1].subgridspec(1, 5 * len(columns))
    for k, (col, _, _, vmax, note, thr) in enumerate(columns):
        cax = fig.add_subplot(bars[0, 5 * k + 1])
        bar = fig.colorbar(mappable[col], cax=cax)
        label = "%s (0 = looks ID)" % col
        if note:
            label += "\ntop %.3g: %s" % (vmax, note)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arrays")
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels-out")
    a = ap.parse_args()
    try:
        import numpy as np
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.text import Text
    except ImportError as e:
        print("picture_grid: %s (Debian: python3-matplotlib; tools/setup.sh installs it)" % e, file=sys.stderr)
        return 3
    try:
        arrays, meta = read_arrays(np, a.arrays)
        spec = grid_spec(arrays, meta, a.arrays)
    except BadInput as e:
        print("picture_grid: %s" % e, file=sys.stderr)
        return 2
    fig = draw(plt, np, spec)
    atomic_savefig(fig, a.out, dpi=100)
    if a.labels_out:
        texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
        with open(a.labels_out, "w", encoding="utf-8") as f:
            json.dump(texts, f, indent=1)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
