#include "models/model_util.h"

namespace oodkit::models {

void check_forward_from(const char* model, int after_stage, const Tensor& input,
                        const std::vector<int64_t>& stage_channels) {
  const int num_stages = int(stage_channels.size());
  OODKIT_CHECK(after_stage >= -1 && after_stage < num_stages, model, "::forward_from: stage ", after_stage,
               " out of range [-1, ", num_stages, ")");
  check_defined(input, model, "input");
  check_ndim(input, 4, model, after_stage < 0 ? "image" : "stage output");
  const int64_t want = after_stage < 0 ? 3 : stage_channels[size_t(after_stage)];
  OODKIT_CHECK(input.size(1) == want, model, "::forward_from(", after_stage, "): expected ", want,
               " input channels, got ", input.describe());
}

}  // namespace oodkit::models
