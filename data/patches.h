// Pasted OOD patches: in-distribution images with a square region copied from another dataset, and
// the ground-truth mask of that region (the localisation benchmark of run/patch_benchmark.h;
// docs/methods.md, "Localisation benchmark").
//
// For row i of the ID set (uint8 [N, 3, H, W]) and a patch side s (pixels at this resolution):
//   a source row r, a crop position (sy, sx) in that source image and a paste position (y, x) are
//   drawn uniformly (r in [0, M), sy in [0, Hs - s], sx in [0, Ws - s], y in [0, H - s],
//   x in [0, W - s]) from a Generator seeded with counter_hash(seed, i), in that order; so row i's
//   patch depends on (seed, i, the source, s) only, not on how many rows are patched.
//   A source image smaller than s on a side is first resized (ResizeMode::Auto, data/image_folder.h)
//   so that its shorter side is s (the longer one round(long * s / short), never below s).
//   patched[i, c, y + a, x + b] = source'[r, c, sy + a, sx + b] for 0 <= a, b < s; every other
//   pixel and the label are those of the ID row. mask[i, y + a, x + b] = 1, 0 elsewhere.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace oodkit::data {

// Where one row's patch came from and where it went (pixels at the ID resolution).
struct PatchRecord {
  std::string source;      // the source dataset's name
  int64_t source_row = 0;  // row r of the source set
  int64_t source_y = 0, source_x = 0;  // top-left of the crop in the (possibly resized) source image
  int64_t y = 0, x = 0;    // top-left of the patch in the ID image
  int64_t size = 0;        // side s in pixels
};

struct PatchedSet {
  Dataset data;    // the patched images (uint8 [N, 3, H, W]), the ID set's labels and classes; name
                   // "<id>+<source>@<s>px"
  Tensor masks;    // uint8 [N, H, W]: 1 inside the patch, 0 elsewhere
  std::vector<PatchRecord> records;  // one per row
};

// The patch side at an image of side `image_side` for a size stated on 32x32 images:
// round(size_on_32 * image_side / 32), at least 1 (8, 12, 16 on 32 px -> 16, 24, 32 on 64 px).
int64_t scaled_patch_size(int64_t size_on_32, int64_t image_side);

// Pastes one patch of side `size` from `source` into every row of `id` (see the contract above).
// Throws naming the set when either is empty or not uint8 [*, 3, *, *], and when `size` is not in
// [1, min(H, W) - 1] (a patch must leave some of the image outside it).
PatchedSet paste_patches(const Dataset& id, const Dataset& source, int64_t size, uint64_t seed);

// Loads a patch source by name (data/registry.h: any installed set, "synthetic-ood-<kind>") at
// image_size x image_size (as OOD test sets are loaded for an ID set of that size), at most `limit`
// rows (< 0: all). Errors are load_dataset's (they name the set and its folder).
Dataset load_patch_source(const std::string& name, int64_t image_size, int64_t limit);

// The default patch sources beside ID set `id_name`: every installed OOD test set among mnist,
// fashion-mnist, isun, tinyimagenet, svhn, lsun, lsun-resize, places365, textures (those
// dataset_inventory() reports "installed"), then the four synthetic-ood-<kind> sets; `id_name` left out.
std::vector<std::string> default_patch_sources(const std::string& id_name);

}  // namespace oodkit::data
