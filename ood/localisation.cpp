#include "ood/localisation.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "framework/error.h"
#include "ood/metrics.h"

namespace oodkit::ood {

Localisation localise_image(const float* map, const uint8_t* mask, int64_t h, int64_t w, const char* what) {
  const int64_t n = h * w;
  std::vector<double> inside, outside;
  double top = -INFINITY;
  for (int64_t p = 0; p < n; ++p) {
    OODKIT_CHECK(std::isfinite(map[p]), what, ": map value ", map[p], " at pixel (", p / w, ", ", p % w,
                 ") is not finite");
    (mask[p] ? inside : outside).push_back(map[p]);
    top = std::max(top, double(map[p]));
  }
  OODKIT_CHECK(!inside.empty() && !outside.empty(), what, ": the mask must have pixels both inside and outside "
               "the patch, got ", inside.size(), " of ", n, " inside");
  Localisation r;
  r.area = double(inside.size()) / double(n);
  // Pointing: the share of the maximal pixels that lie inside the mask.
  int64_t max_in = 0, max_all = 0;
  for (int64_t p = 0; p < n; ++p)
    if (double(map[p]) == top) {
      ++max_all;
      max_in += mask[p] ? 1 : 0;
    }
  r.pointing = double(max_in) / double(max_all);
  // Mass share of the map clipped at 0; no positive mass: the area fraction.
  double mass_in = 0, mass_all = 0;
  for (int64_t p = 0; p < n; ++p) {
    const double v = std::max(0.0, double(map[p]));
    mass_all += v;
    if (mask[p]) mass_in += v;
  }
  r.mass_share = mass_all > 0 ? mass_in / mass_all : r.area;
  r.massless = mass_all > 0 ? 0.0 : 1.0;
  r.pixel_auroc = compute_ood_metrics(inside, outside).auroc;
  return r;
}

LocalisationSummary localise(const Tensor& maps_in, const Tensor& masks_in, const std::string& what) {
  OODKIT_CHECK(maps_in.defined() && maps_in.ndim() == 3 && maps_in.dtype() == DType::F32, what,
               ": maps must be float32 [N, H, W], got ", maps_in.defined() ? maps_in.describe() : "nothing");
  OODKIT_CHECK(masks_in.defined() && masks_in.dtype() == DType::U8 && masks_in.shape() == maps_in.shape(), what,
               ": masks must be uint8 of the maps' shape ", maps_in.describe(), ", got ",
               masks_in.defined() ? masks_in.describe() : "nothing");
  OODKIT_CHECK(maps_in.size(0) > 0, what, ": no images");
  const Tensor maps = maps_in.cpu(), masks = masks_in.cpu();
  const int64_t n = maps.size(0), h = maps.size(1), w = maps.size(2);
  LocalisationSummary s;
  s.n_images = n;
  for (int64_t i = 0; i < n; ++i) {
    const std::string label = what + ", image " + std::to_string(i);
    const Localisation r = localise_image(maps.data<float>() + i * h * w, masks.data<uint8_t>() + i * h * w, h, w,
                                          label.c_str());
    s.per_image.push_back(r);
    s.mean.pointing += r.pointing;
    s.mean.mass_share += r.mass_share;
    s.mean.pixel_auroc += r.pixel_auroc;
    s.mean.area += r.area;
    s.mean.massless += r.massless;
  }
  for (double* v : {&s.mean.pointing, &s.mean.mass_share, &s.mean.pixel_auroc, &s.mean.area, &s.mean.massless})
    *v /= double(n);
  s.pointing_chance = s.mass_share_chance = s.mean.area;
  // The shuffled baseline: map i against mask (i + k) mod N.
  const int64_t shifts = std::min<int64_t>(4, n - 1);
  if (shifts == 0) s.shuffled = s.mean;
  for (int64_t k = 1; k <= shifts; ++k)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = (i + k) % n;
      const std::string label = what + ", map " + std::to_string(i) + " vs mask " + std::to_string(j);
      const Localisation r = localise_image(maps.data<float>() + i * h * w, masks.data<uint8_t>() + j * h * w, h, w,
                                            label.c_str());
      s.shuffled.pointing += r.pointing;
      s.shuffled.mass_share += r.mass_share;
      s.shuffled.pixel_auroc += r.pixel_auroc;
      s.shuffled.area += r.area;
      s.shuffled.massless += r.massless;
    }
  if (shifts > 0)
    for (double* v : {&s.shuffled.pointing, &s.shuffled.mass_share, &s.shuffled.pixel_auroc, &s.shuffled.area,
                      &s.shuffled.massless})
      *v /= double(n * shifts);
  return s;
}

}  // namespace oodkit::ood
