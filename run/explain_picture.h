// The picture of `oodkit explain` (DIR/explain.png): a labelled grid, one row per image, the input
// then one column per method, each map in the "hot" ramp (black -> red -> yellow -> white) on one
// colour scale per method shared by every image (ColourScale: black = the method's lowest value =
// looks most ID), the score under each map, a colour bar with its range under each column, and a
// title naming the set. Drawn with run/bitmap_font.h: no plotting library needed.
#pragma once
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::run {

struct ColourScale {
  double lo = 0, hi = 0;  // maps to black and white; lo = hi: everything black
};
// lo and hi: the minimum and maximum finite value of maps [N, H, W] (both 0 when none is finite).
ColourScale colour_scale(const Tensor& maps);

// v on `scale` -> RGB of the hot ramp at t = (v - lo) / (hi - lo) clamped to [0, 1] (t = 0 when
// hi = lo; NaN is drawn blue, as no value of the ramp).
void hot_colour(double v, const ColourScale& scale, uint8_t rgb[3]);

struct ExplainGrid {
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
