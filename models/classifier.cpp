#include "models/classifier.h"

#include "framework/ops/pool.h"

namespace oodkit::models {

ClassifierOutput Classifier::forward_from(int after_stage, const Tensor& input) {
  OODKIT_CHECK(after_stage >= -1 && after_stage < num_stages(), name_, "::forward_from: stage ", after_stage,
               " out of range [-1, ", num_stages(), ")");
  check_defined(input, name_, "input");
  check_ndim(input, 4, name_, after_stage < 0 ? "image" : "stage output");
  const int64_t want = after_stage < 0 ? 3 : stage_channels_[size_t(after_stage)];
  OODKIT_CHECK(input.size(1) == want, name_, "::forward_from(", after_stage, "): expected ", want,
               " input channels, got ", input.describe());
  ClassifierOutput out;
  Tensor h = input;
  for (int s = after_stage + 1; s < num_stages(); ++s) {
    h = run_stage(s, h);
    out.stages.push_back(h);
  }
  out.features = h;
  out.penultimate = ops::global_avg_pool(h);
  out.logits = head().forward(out.penultimate);
  return out;
}

}  // namespace oodkit::models
