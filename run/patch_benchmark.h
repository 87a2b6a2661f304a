// The pasted-OOD-patch localisation benchmark (issue 23; docs/methods.md, "Localisation
// benchmark"): for each patch source x patch size, every ID test image gets one pasted patch
// (data/patches.h); each method (an Explainer, run/explain_types.h) scores and maps the clean and
// the patched images, and is measured on
//   - image AUROC: clean ID images (positives, higher score = ID) against their patched copies
//     (ood/metrics.h), chance 0.5: does the score notice a small OOD region at all?
//   - pointing, mass share, pixel AUROC of its maps against the masks (ood/localisation.h), each
//     beside its chance level and its shuffled baseline (the maps against other images' masks).
// Files written in out_dir (created if missing; each written atomically, all after every method ran,
// so a failure leaves none half-written):
//   patches.md    one table per source (rows method x size) and one averaged over the sources
//   patches.json  {"id", "n_images", "seed", "sizes", "sources", "methods", "results": [...]}, figures in %
//   patches.csv   source,size,size_px,method,image_auroc,pointing,pointing_chance,pointing_shuffled,
//                 mass_share,mass_share_chance,mass_share_shuffled,pixel_auroc,pixel_auroc_chance,
//                 pixel_auroc_shuffled,massless,n_images (in %; source
//                 "average" rows last); massless: the maps with no positive mass (ood/localisation.h)
//   patches_records.csv  source,size_px,row,source_row,source_y,source_x,y,x: each pasted patch
//   patches.png   picture grid (patches_grid.md says what each row and column is): per source x size,
//                 the first grid_images patched images, each one row: the patched image with the patch
//                 outlined in green, then each method's map in the hot ramp on a robust scale (black =
//                 the 1st percentile of the method's values over the grid's images, white = the 99th:
//                 one scale per method shared by every image, beyond it clamped, so one outlier cannot
//                 darken a column), the outline repeated; patches_grid.md states each method's range
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "run/explain_types.h"

namespace oodkit::run {

struct PatchBenchmarkConfig {
  data::Dataset id_test;                 // clean ID test images, uint8 [N, 3, H, W]
  std::vector<data::Dataset> sources;    // patch sources (data::load_patch_source), distinct names
  std::vector<int64_t> sizes{8, 12, 16}; // patch sides on 32x32 images (data::scaled_patch_size)
  uint64_t seed = 0;                     // data::paste_patches' seed, the same for every source x size
  int64_t limit = -1;                    // >= 0: only the first `limit` ID rows
  int64_t grid_images = 2;               // patched images shown per source x size in patches.png
  int64_t grid_scale = 3;                // magnification of patches.png
  double grid_percentile = 99;           // patches.png's ramp spans [P(100 - this), P(this)] per method
};

struct PatchBenchmarkRow {
  std::string source, method;            // source "average": the mean over the sources
  int64_t size = 0, size_px = 0;         // as configured (on 32 px) and at the ID resolution
  double image_auroc = 0;                // clean (positive) vs patched, fraction
  double pointing = 0, pointing_chance = 0, mass_share = 0, mass_share_chance = 0, pixel_auroc = 0,
         pixel_auroc_chance = 0.5;
  double massless = 0;                   // fraction of maps with no positive mass (their mass share = area)
  // The shuffled baselines (ood/localisation.h): each map against other images' masks.
  double pointing_shuffled = 0, mass_share_shuffled = 0, pixel_auroc_shuffled = 0;
  int64_t n_images = 0;
};

// Runs the benchmark (see the top of this file) and writes its files in out_dir (out_dir "" writes
// nothing). Rows in order: source, then size, then method (as given), then the "average" rows
// (size, then method). Throws, before any method runs, on an empty ID set, no source, no method, a
// duplicate method or source name, a source named like the ID set, a size that does not fit; and
// when an Explainer returns scores or maps of the wrong shape, non-finite scores or maps (naming the
// method and the set).
std::vector<PatchBenchmarkRow> run_patch_benchmark(const PatchBenchmarkConfig& config,
                                                   const std::vector<std::pair<std::string, Explainer>>& methods,
                                                   const std::string& out_dir);

// The report writers, pure functions of the rows (exposed for tests).
std::string patch_markdown(const PatchBenchmarkConfig& config, const std::vector<PatchBenchmarkRow>& rows);
std::string patch_json(const PatchBenchmarkConfig& config, const std::vector<PatchBenchmarkRow>& rows);
std::string patch_csv(const std::vector<PatchBenchmarkRow>& rows);

// A method's colour range on the grid: lo = the (100 - percentile)-th and hi = the percentile-th
// percentile (numpy's 'linear', ood/percentile.h) of all values of maps [R, H, W]; percentile in
// [50, 100] (100: min..max). Values outside [lo, hi] are drawn as the range's ends.
std::pair<double, double> grid_range(const Tensor& maps, double percentile);

// The picture grid: rows of (patched image | each map), each tile `scale`x magnified, kGap = 4 px
// white between tiles and rows. images uint8 [R, 3, H, W], masks uint8 [R, H, W], maps[m] float32
// [R, H, W]; each method's ramp spans its grid_range(maps[m], percentile) over the R images, t =
// (v - lo) / (hi - lo) clamped to [0, 1] (lo = hi: black). Returns uint8 [3, height, width].
Tensor patch_grid(const Tensor& images, const Tensor& masks, const std::vector<Tensor>& maps, int64_t scale,
                  double percentile = 99);

}  // namespace oodkit::run
