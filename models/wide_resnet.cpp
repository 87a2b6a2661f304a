#include "models/wide_resnet.h"

#include <string>

#include "framework/nn/init.h"
#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/pool.h"
#include "models/model_util.h"

namespace oodkit::models {

namespace {
// xternalz: m.weight.data.normal_(0, sqrt(2 / (k*k*out_channels))).
std::shared_ptr<nn::Conv2d> make_conv(int64_t in, int64_t out, int kernel, int stride, Generator& gen) {
  auto conv = std::make_shared<nn::Conv2d>(in, out, kernel, stride, kernel / 2, false, 1, gen);
  nn::init::kaiming_normal_(conv->weight, /*fan_out_mode=*/true, gen);
  return conv;
}
}  // namespace

WideBasicBlock::WideBasicBlock(int64_t in, int64_t out, int stride, double drop_rate_,
                               std::shared_ptr<Generator> dropout_gen, Generator& gen)
    : drop_rate(drop_rate_), dropout_gen_(std::move(dropout_gen)) {
  OODKIT_CHECK(in > 0 && out > 0 && stride >= 1, "WideBasicBlock: bad sizes in=", in, " out=", out,
               " stride=", stride);
  OODKIT_CHECK(drop_rate >= 0.0 && drop_rate < 1.0, "WideBasicBlock: drop_rate must lie in [0, 1), got ",
               drop_rate);
  OODKIT_CHECK(dropout_gen_ != nullptr, "WideBasicBlock: dropout generator is null");
  // Registration order = the reference's __init__ order (state-dict order).
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(in));
  conv1 = register_module("conv1", make_conv(in, out, 3, stride, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(out));
  conv2 = register_module("conv2", make_conv(out, out, 3, 1, gen));
  // The reference adds the identity whenever in == out (its blocks never combine in == out
  // with a stride); a strided block always gets the projection here.
  if (in != out || stride != 1) conv_shortcut = register_module("convShortcut", make_conv(in, out, 1, stride, gen));
}

Tensor WideBasicBlock::forward(const Tensor& x) {
  const Tensor o = ops::relu(bn1->forward(x));
  Tensor h = ops::relu(bn2->forward(conv1->forward(o)));
  h = ops::dropout(h, drop_rate, is_training(), *dropout_gen_);
  h = conv2->forward(h);
  return ops::add(conv_shortcut ? conv_shortcut->forward(o) : x, h);
}

WideResNet::WideResNet(int depth, int widen_factor, int64_t num_classes, double drop_rate, Generator& gen)
    : Classifier("WideResNet") {
  OODKIT_CHECK(depth >= 10 && (depth - 4) % 6 == 0, "WideResNet: depth must be 6n+4 (16, 22, 28, 40, ...), got ",
               depth);
  OODKIT_CHECK(widen_factor >= 1, "WideResNet: widen_factor must be >= 1, got ", widen_factor);
  OODKIT_CHECK(num_classes > 0, "WideResNet: num_classes must be positive, got ", num_classes);
  OODKIT_CHECK(drop_rate >= 0.0 && drop_rate < 1.0, "WideResNet: drop_rate must lie in [0, 1), got ", drop_rate);
  const int n = (depth - 4) / 6;
  const int64_t channels[4] = {16, 16 * int64_t(widen_factor), 32 * int64_t(widen_factor),
                               64 * int64_t(widen_factor)};
  dropout_gen_ = std::make_shared<Generator>(gen.next_u64());

  conv1_ = register_module("conv1", make_conv(3, channels[0], 3, 1, gen));
  stage_channels_.push_back(channels[0]);
  for (int g = 0; g < 3; ++g) {
    auto network_block = std::make_shared<ModuleList>();
    auto layer = network_block->add("layer", std::make_shared<ModuleList>());
    blocks_.emplace_back();
    for (int i = 0; i < n; ++i) {
      const int64_t in = i == 0 ? channels[g] : channels[g + 1];
      const int stride = (i == 0 && g > 0) ? 2 : 1;
      blocks_.back().push_back(layer->add(
          std::to_string(i), std::make_shared<WideBasicBlock>(in, channels[g + 1], stride, drop_rate, dropout_gen_, gen)));
    }
    register_module("block" + std::to_string(g + 1), network_block);
    stage_channels_.push_back(channels[g + 1]);
  }
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm>(channels[3]));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(channels[3], num_classes, true, gen));
  nn::init::constant_(fc_->bias, 0.0);
}

Tensor WideResNet::run_stage(int stage, const Tensor& x) {
  if (stage == 0) return conv1_->forward(x);
  Tensor h = x;
  for (auto& block : blocks_[size_t(stage - 1)]) h = block->forward(h);
  if (stage == 3) h = ops::relu(bn1_->forward(h));
  return h;
}

}  // namespace oodkit::models
