// The picture of `oodkit explain` (DIR/explain.png): a labelled grid, one row per image, the input
// then one column per method, each map in the "hot" ramp (black -> red -> yellow -> white) on one
// colour scale per method shared by every image (ColourScale: black = the method's low percentile =
// looks most ID, white = its high percentile; values beyond are clamped), the score under each map, a colour bar with its range under each column, and a
// title naming the set. Drawn with run/bitmap_font.h: no plotting library needed.
#pragma once
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::run {

struct ColourScale {
  double lo = 0, hi = 0;  // maps to black and white; lo = hi: everything black
  double percentile = 100;  // hi is this percentile of the finite values, lo the (100 - it)-th
};
// lo and hi: the (100 - percentile)-th and percentile-th percentiles (numpy's 'linear') of the
// finite values of maps [N, H, W], so that a few extreme pixels cannot turn a whole column black;
// percentile = 100: the minimum and maximum. Both 0 when no value is finite. percentile in [50, 100].
ColourScale colour_scale(const Tensor& maps, double percentile);

// v on `scale` -> RGB of the hot ramp at t = (v - lo) / (hi - lo) clamped to [0, 1] (t = 0 when
// hi = lo; NaN is drawn blue, as no value of the ramp).
void hot_colour(double v, const ColourScale& scale, uint8_t rgb[3]);

struct ExplainGrid {
  double percentile = 99;                   // each method's colour scale (colour_scale)
  std::string title;                        // e.g. "oodkit explain  cifar10:test  ..."
  Tensor images;                            // uint8 [N, 3, H, W]
  std::vector<std::string> row_labels;      // one per image (e.g. "#0 y=3 p=3")
  std::vector<std::string> methods;         // column names
  std::vector<Tensor> maps;                 // one per method: float32 [N, H, W]
  std::vector<std::vector<double>> scores;  // one per method: [N]
};

// The picture, uint8 [3, height, width]; each image pixel magnified `zoom` x `zoom` (zoom >= 1).
Tensor render_explain_grid(const ExplainGrid& g, int zoom);

}  // namespace oodkit::run
