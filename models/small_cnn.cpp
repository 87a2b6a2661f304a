#include "models/small_cnn.h"

#include "framework/nn/init.h"
#include "framework/ops/activation.h"
#include "models/model_util.h"

namespace oodkit::models {

namespace {
constexpr int64_t kChannels[5] = {3, 32, 64, 128, 128};
constexpr int kStrides[4] = {1, 2, 2, 1};
const char* const kNames[4] = {"stem", "stage1", "stage2", "stage3"};
}  // namespace

SmallCnn::SmallCnn(int64_t num_classes, Generator& gen) : Classifier("SmallCnn") {
  OODKIT_CHECK(num_classes > 0, "SmallCnn: num_classes must be positive, got ", num_classes);
  for (int s = 0; s < 4; ++s) {
    auto unit = register_module(kNames[s], std::make_shared<ModuleList>());
    Unit u;
    u.conv = unit->add("conv", std::make_shared<nn::Conv2d>(kChannels[s], kChannels[s + 1], 3, kStrides[s], 1,
                                                            false, 1, gen));
    nn::init::kaiming_normal_(u.conv->weight, /*fan_out_mode=*/true, gen);
    u.bn = unit->add("bn", std::make_shared<nn::BatchNorm>(kChannels[s + 1]));
    units_.push_back(u);
  }
  linear_ = register_module("linear", std::make_shared<nn::Linear>(kChannels[4], num_classes, true, gen));
  stage_channels_ = {kChannels[1], kChannels[2], kChannels[3], kChannels[4]};
}

Tensor SmallCnn::run_stage(int stage, const Tensor& x) {
  const Unit& u = units_[size_t(stage)];
  return ops::relu(u.bn->forward(u.conv->forward(x)));
}

}  // namespace oodkit::models
