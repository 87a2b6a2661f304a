// How well a spatial explanation (a map, higher = more OOD-looking) points at a known OOD region
// (a mask, 1 inside): the localisation metrics of the pasted-patch benchmark (docs/methods.md,
// "Localisation benchmark"). Per image, with map m [H, W] and mask k [H, W] (k has both values):
//
// - pointing: the pointing-game hit, 1 when the map's maximum lies inside the mask. Ties: the
//   fraction of the pixels attaining the maximum that lie inside the mask (the expected hit of a
//   uniformly random choice among them). A constant map therefore scores the mask's area fraction,
//   the chance level, and no map can gain by ties.
// - mass_share: the share of the map's positive mass inside the mask, sum_in max(m, 0) /
//   sum_all max(m, 0) (maps clipped at 0: negative values count as no mass). A map with no positive
//   mass (all <= 0) scores the mask's area fraction, as a constant positive map does, and is counted
//   as "massless" (maps that are <= 0 by construction carry no information in this figure).
// - pixel_auroc: the AUROC of the pixels inside the mask (positives) against those outside, higher
//   map = inside: P(m_in > m_out) + 0.5 P(m_in == m_out) over all pairs, exact on ties
//   (ood/metrics.h's AUROC). A constant map scores 0.5.
// Chance levels (a map that knows nothing): pointing and mass_share = area fraction |k| / (H W);
// pixel_auroc = 0.5. Means over images are plain means of the per-image figures.
// Shuffled baseline: the same figures with each map scored against another image's mask (map i
// against mask (i + k) mod N for k = 1 .. min(4, N - 1), all pairs averaged). A map whose peak sits
// where patches often are (e.g. the image centre, covered by more of the uniformly placed patches
// than a corner) beats the area-fraction chance without looking at the patch; it does not beat its
// shuffled baseline. Localisation is the margin over both.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::ood {

struct Localisation {
  double pointing = 0, mass_share = 0, pixel_auroc = 0;
  double area = 0;  // the mask's area fraction |k| / (H W): the chance level of pointing and mass_share
  double massless = 0;  // 1 when the map has no positive mass (mass_share is then the area), else 0
};

// One image: `map` and `mask` point at H * W values each, row-major. Throws when the mask is all 0
// or all 1, or a map value is not finite (naming `what`, e.g. "method 'nap', image 3").
Localisation localise_image(const float* map, const uint8_t* mask, int64_t h, int64_t w, const char* what = "map");

struct LocalisationSummary {
  Localisation mean;   // each figure's mean over the images (massless: the fraction of massless maps)
  double pointing_chance = 0, mass_share_chance = 0, pixel_auroc_chance = 0.5;  // mean area, mean area, 0.5
  Localisation shuffled;  // the shuffled baseline (area, massless: of the pairs); equal to mean when N = 1
  std::vector<Localisation> per_image;
  int64_t n_images = 0;
};

// maps float32 [N, H, W], masks uint8 [N, H, W] (CPU or any device: copied to the CPU); shapes
// must agree. Errors name `what` and the offending image.
LocalisationSummary localise(const Tensor& maps, const Tensor& masks, const std::string& what = "maps");

}  // namespace oodkit::ood
