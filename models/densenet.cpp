#include "models/densenet.h"

#include <cmath>
#include <string>

#include "framework/nn/init.h"
#include "framework/ops/activation.h"
#include "framework/ops/channel.h"
#include "framework/ops/pool.h"
#include "models/model_util.h"

namespace oodkit::models {

namespace {
// densenet.py: m.weight.data.normal_(0, sqrt(2 / (k*k*out_channels))).
std::shared_ptr<nn::Conv2d> make_conv(int64_t in, int64_t out, int kernel, Generator& gen) {
  auto conv = std::make_shared<nn::Conv2d>(in, out, kernel, 1, kernel / 2, false, 1, gen);
  nn::init::kaiming_normal_(conv->weight, /*fan_out_mode=*/true, gen);
  return conv;
}
}  // namespace

DenseLayer::DenseLayer(int64_t in, int64_t growth, Generator& gen) {
  OODKIT_CHECK(in > 0 && growth > 0, "DenseLayer: bad sizes in=", in, " growth=", growth);
  const int64_t inter = 4 * growth;
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(in));
  conv1 = register_module("conv1", make_conv(in, inter, 1, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(inter));
  conv2 = register_module("conv2", make_conv(inter, growth, 3, gen));
}

Tensor DenseLayer::forward(const Tensor& x) {
  Tensor h = conv1->forward(ops::relu(bn1->forward(x)));
  h = conv2->forward(ops::relu(bn2->forward(h)));
  return ops::concat_channels({x, h});
}

DenseTransition::DenseTransition(int64_t in, int64_t out, Generator& gen) {
  OODKIT_CHECK(in > 0 && out > 0, "DenseTransition: bad sizes in=", in, " out=", out);
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(in));
  conv1 = register_module("conv1", make_conv(in, out, 1, gen));
}

Tensor DenseTransition::forward(const Tensor& x) {
  return ops::avg_pool2d(conv1->forward(ops::relu(bn1->forward(x))), ops::Pool2dOptions::square(2, 2));
}

DenseNet::DenseNet(int depth, int64_t num_classes, int64_t growth_rate, double reduction, Generator& gen)
    : Classifier("DenseNet") {
  OODKIT_CHECK(depth >= 10 && (depth - 4) % 6 == 0, "DenseNet: depth must be 6n+4 (40, 100, 190, ...), got ", depth);
  OODKIT_CHECK(num_classes > 0, "DenseNet: num_classes must be positive, got ", num_classes);
  OODKIT_CHECK(growth_rate > 0, "DenseNet: growth_rate must be positive, got ", growth_rate);
  OODKIT_CHECK(reduction > 0.0 && reduction <= 1.0, "DenseNet: reduction must lie in (0, 1], got ", reduction);
  const int n = (depth - 4) / 6;  // (depth - 4) / 3 layers, halved for bottleneck layers
  int64_t c = 2 * growth_rate;
  conv1_ = register_module("conv1", make_conv(3, c, 3, gen));
  stage_channels_.push_back(c);
  for (int b = 0; b < 3; ++b) {
    auto dense_block = std::make_shared<ModuleList>();
    auto layer = dense_block->add("layer", std::make_shared<ModuleList>());
    blocks_.emplace_back();
    for (int i = 0; i < n; ++i) {
      blocks_.back().push_back(layer->add(std::to_string(i), std::make_shared<DenseLayer>(c, growth_rate, gen)));
      c += growth_rate;
    }
    register_module("block" + std::to_string(b + 1), dense_block);
    if (b < 2) {
      const auto out = int64_t(std::floor(double(c) * reduction));
      OODKIT_CHECK(out > 0, "DenseNet: reduction ", reduction, " leaves no channels after block ", b + 1);
      transitions_.push_back(
          register_module("trans" + std::to_string(b + 1), std::make_shared<DenseTransition>(c, out, gen)));
      c = out;
    }
    stage_channels_.push_back(c);
  }
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm>(c));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(c, num_classes, true, gen));
  nn::init::constant_(fc_->bias, 0.0);
}

Tensor DenseNet::run_stage(int stage, const Tensor& x) {
  if (stage == 0) return conv1_->forward(x);
  Tensor h = x;
  for (auto& layer : blocks_[size_t(stage - 1)]) h = layer->forward(h);
  if (stage < 3) return transitions_[size_t(stage - 1)]->forward(h);
  return ops::relu(bn1_->forward(h));
}

}  // namespace oodkit::models
