#include "run/extract.h"

#include <algorithm>

#include "data/augment.h"
#include "data/loader.h"
#include "framework/concat.h"
#include "run/progress.h"

namespace oodkit::run {

Tensor normalized_rows(const data::Dataset& ds, int64_t start, int64_t len, const data::Normalization& norm) {
  return data::normalize(ds.images.narrow(start, len), norm);
}

ood::ScoredSet extract(models::Classifier& model, const data::Dataset& ds, const std::vector<int64_t>& rows,
                       const data::Normalization& norm, const std::string& label, const ExtractOptions& o) {
  OODKIT_CHECK(!rows.empty(), label, ": no images to score");
  OODKIT_CHECK(o.batch > 0, label, ": the batch size must be positive, got ", o.batch);
  model.eval();
  const data::Dataset sub = data::take_rows(ds, rows);
  std::vector<ood::Features> parts;
  std::vector<Tensor> images;
  Progress progress("features " + label, sub.size());
  for (int64_t b = 0; b < sub.size(); b += o.batch) {
    const int64_t len = std::min(o.batch, sub.size() - b);
    const Tensor x = normalized_rows(sub, b, len, norm);
    parts.push_back(ood::extract_features(model, x.to(o.device), o.features));
    if (o.keep_images) images.push_back(x);
    progress.update(b + len);
  }
  progress.finish();
  ood::ScoredSet set{label, ood::concat_features(parts), Tensor()};
  if (o.keep_images) set.images = concat_rows(images);
  return set;
}

std::vector<int64_t> first_rows(int64_t n, int64_t limit) {
  const int64_t m = limit >= 0 ? std::min(n, limit) : n;
  std::vector<int64_t> r(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) r[size_t(i)] = i;
  return r;
}

}  // namespace oodkit::run
