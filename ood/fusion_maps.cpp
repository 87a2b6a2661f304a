#include "ood/fusion_maps.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"
#include "ood/fusion.h"
#include "ood/multi_fusion.h"

namespace oodkit::ood {

namespace {
constexpr double kGeometricFloor = 1e-6;  // geometric_fusion's default, as Fusion::combine uses it
}

bool fusion_has_map(const Detector& fusion, std::string* why) {
  if (dynamic_cast<const Fusion*>(&fusion)) return true;
  if (const auto* m = dynamic_cast<const MultiFusion*>(&fusion)) {
    if (m->combination() == Combination::Z) return true;
    if (why)
      *why = "its p-value combination '" + combination_name(m->combination()) +
             "' is a step function of its members' scores (no gradient, so no map); a z fusion has one";
    return false;
  }
  if (why) *why = "it is not a fusion";
  return false;
}

std::vector<std::vector<double>> fusion_map_weights(const Detector& fusion, const Detector::ScoreList& parts) {
  std::string why;
  OODKIT_CHECK(fusion_has_map(fusion, &why), "fusion map of '", fusion.name(), "': ", why);
  const std::vector<std::string> comps = fusion.components();
  OODKIT_CHECK(parts.size() == comps.size(), "fusion map of '", fusion.name(), "': ", comps.size(),
               " members, got ", parts.size(), " score lists");
  for (const auto* p : parts) OODKIT_CHECK(p && p->size() == parts[0]->size(), "fusion map of '", fusion.name(),
                                           "': member score lists of different lengths");
  const size_t n = parts[0]->size();
  std::vector<std::vector<double>> c(parts.size(), std::vector<double>(n, 0.0));
  if (const auto* f = dynamic_cast<const Fusion*>(&fusion)) {
    const FusionSpec& spec = f->spec();
    const double v = f->params().at(spec.key());
    for (size_t r = 0; r < n; ++r) {
      const double a = (*parts[0])[r], b = (*parts[1])[r];
      switch (spec.kind) {
        case FusionKind::Linear: c[0][r] = 1.0, c[1][r] = v; break;
        case FusionKind::Standardized:
          c[0][r] = (1 - v) / f->a_scale().std, c[1][r] = v / f->b_scale().std;
          break;
        case FusionKind::Geometric: {
          const double s = std::pow(std::max(a, kGeometricFloor), v) * std::pow(std::max(b, kGeometricFloor), 1 - v);
          c[0][r] = a > kGeometricFloor ? v * s / a : 0.0;
          c[1][r] = b > kGeometricFloor ? (1 - v) * s / b : 0.0;
          if (std::isnan(a) || std::isnan(b)) c[0][r] = c[1][r] = NAN;
          break;
        }
      }
    }
    return c;
  }
  const auto& m = dynamic_cast<const MultiFusion&>(fusion);
  const std::vector<double> w = m.weights();
  OODKIT_CHECK(m.scales().size() == w.size(), "fusion map of '", fusion.name(), "': not fitted");
  for (size_t i = 0; i < w.size(); ++i)
    for (size_t r = 0; r < n; ++r) c[i][r] = double(w.size()) * w[i] / m.scales()[i].z.std;
  return c;
}

}  // namespace oodkit::ood
