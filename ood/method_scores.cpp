#include "ood/method_scores.h"

#include <algorithm>

namespace oodkit::ood {

std::vector<double> to_doubles(const Tensor& scores) {
  return scores.detach().to(DType::F64).cpu().to_vector<double>();
}

std::vector<double> score_method(const Detector& d, const ScoredSet& set, const ScoreContext& ctx,
                                 const ComponentScores& component) {
  const std::vector<std::string> names = d.components();
  if (!names.empty()) {
    Detector::ScoreList parts;
    for (const std::string& c : names) parts.push_back(&component(c));
    return d.combine(parts);
  }
  if (!d.uses_images()) return to_doubles(d.score(set.features));
  OODKIT_CHECK(set.images.defined(), d.name(), ": needs the images of set '", set.name,
               "' (input perturbation), but none were kept");
  OODKIT_CHECK(ctx.model, d.name(), ": scoring images needs the classifier");
  const ImageContext ictx{ctx.model, ctx.input_std};
  std::vector<double> out;
  const int64_t n = set.images.size(0);
  for (int64_t b = 0; b < n; b += ctx.batch) {
    const int64_t len = std::min(ctx.batch, n - b);
    const std::vector<double> s = to_doubles(d.score_images(ictx, set.images.narrow(b, len).to(ctx.device)));
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

}  // namespace oodkit::ood
