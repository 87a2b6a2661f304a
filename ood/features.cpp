#include "ood/features.h"

#include "framework/autograd.h"
#include "framework/concat.h"
#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "ood/scores.h"

namespace oodkit::ood {

Features extract_features(models::Classifier& model, const Tensor& images, const FeatureOptions& o) {
  autograd::NoGradGuard no_grad;
  const models::ClassifierOutput out = model.forward_all(images);
  Features f;
  f.logits = out.logits;
  f.z = out.penultimate;
  if (o.needs.nap || o.needs.fs) {
    const FeatureMapScores fm = feature_map_scores(out.features, o.nap_eps);
    if (o.needs.nap) {
      f.nap = fm.nap;
      f.nap_unsquared = fm.nap_unsquared;
    }
    if (o.needs.fs) f.fs = fm.fs;
  }
  if (o.needs.fs_ta && !o.ta_thresholds.empty()) {
    const int stage = o.ta_stage >= 0 ? o.ta_stage : model.num_stages() - 2;
    OODKIT_CHECK(stage >= 0 && stage < model.num_stages() - 1, "extract_features: TA stage ", stage,
                 " must be before the last stage (", model.num_stages(), " stages)");
    const Tensor& g = out.stages[size_t(stage)];
    for (double k : o.ta_thresholds) {
      // TA: ReLU(g - k) on a copy of the mid-stage output, remaining stages re-run; the
      // classification output above stays the unmodified path's.
      const models::ClassifierOutput tail = model.forward_from(stage, ops::relu(ops::add_scalar(g, -k)));
      f.fs_ta.push_back(fs_score(tail.features));
    }
    f.ta_thresholds = o.ta_thresholds;
  }
  return f;
}

Features concat_features(const std::vector<Features>& parts) {
  OODKIT_CHECK(!parts.empty(), "concat_features: no parts");
  auto column = [&](auto get) {
    if (!get(parts[0]).defined()) return Tensor();  // a column not computed
    std::vector<Tensor> ts;
    for (const Features& p : parts) ts.push_back(get(p));
    return concat_rows(ts);
  };
  Features f;
  f.logits = column([](const Features& p) { return p.logits; });
  f.z = column([](const Features& p) { return p.z; });
  f.nap = column([](const Features& p) { return p.nap; });
  f.nap_unsquared = column([](const Features& p) { return p.nap_unsquared; });
  f.fs = column([](const Features& p) { return p.fs; });
  f.ta_thresholds = parts[0].ta_thresholds;
  for (size_t t = 0; t < parts[0].fs_ta.size(); ++t)
    f.fs_ta.push_back(column([t](const Features& p) {
      OODKIT_CHECK(p.fs_ta.size() > t, "concat_features: parts have different TA thresholds");
      return p.fs_ta[t];
    }));
  return f;
}

Features slice_features(const Features& f, int64_t start, int64_t length) {
  Features s;
  s.logits = f.logits.narrow(start, length);
  s.z = f.z.narrow(start, length);
  const auto rows = [&](const Tensor& t) { return t.defined() ? t.narrow(start, length) : Tensor(); };
  s.nap = rows(f.nap);
  s.nap_unsquared = rows(f.nap_unsquared);
  s.fs = rows(f.fs);
  for (const Tensor& t : f.fs_ta) s.fs_ta.push_back(t.narrow(start, length));
  s.ta_thresholds = f.ta_thresholds;
  return s;
}

}  // namespace oodkit::ood
