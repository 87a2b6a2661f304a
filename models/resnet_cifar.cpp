#include "models/resnet_cifar.h"

#include <string>

#include "framework/nn/init.h"
#include "framework/ops/activation.h"
#include "framework/ops/channel.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/pool.h"

namespace oodkit::models {

CifarBasicBlock::CifarBasicBlock(int64_t in, int64_t out, int stride, Generator& gen)
    : stride_(stride), in_(in), out_(out) {
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(in, out, 3, stride, 1, false, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm>(out));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(out, out, 3, 1, 1, false, 1, gen));
  bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm>(out));
  nn::init::kaiming_normal_(conv1_->weight, false, gen);
  nn::init::kaiming_normal_(conv2_->weight, false, gen);
}

Tensor CifarBasicBlock::forward(const Tensor& x) {
  Tensor h = ops::relu(bn1_->forward(conv1_->forward(x)));
  h = bn2_->forward(conv2_->forward(h));
  const Tensor shortcut = (stride_ != 1 || in_ != out_) ? ops::subsample_pad_channels(x, stride_, out_) : x;
  return ops::relu(ops::add(h, shortcut));
}

ResNetCifar::ResNetCifar(int depth, int64_t num_classes, Generator& gen) : Classifier("ResNetCifar") {
  OODKIT_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "ResNetCifar: depth must be 6n+2 (20, 32, 44, 56, ...), got ",
               depth);
  OODKIT_CHECK(num_classes > 0, "ResNetCifar: num_classes must be positive, got ", num_classes);
  const int n = (depth - 2) / 6;
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(3, 16, 3, 1, 1, false, 1, gen));
  nn::init::kaiming_normal_(conv1_->weight, false, gen);
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm>(16));
  int64_t in = 16;
  const int64_t widths[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s) {
    layers_.emplace_back();
    for (int b = 0; b < n; ++b) {
      const int stride = (s > 0 && b == 0) ? 2 : 1;
      auto block = std::make_shared<CifarBasicBlock>(in, widths[s], stride, gen);
      layers_.back().push_back(block);
      in = widths[s];
    }
  }
  // Register blocks as "layer{s}.{b}" through a container module per stage.
  struct Stage : nn::Module {
    void add(const std::string& name, std::shared_ptr<CifarBasicBlock> b) { register_module(name, std::move(b)); }
  };
  for (int s = 0; s < 3; ++s) {
    auto stage = std::make_shared<Stage>();
    for (size_t b = 0; b < layers_[size_t(s)].size(); ++b) stage->add(std::to_string(b), layers_[size_t(s)][b]);
    register_module("layer" + std::to_string(s + 1), stage);
  }
  linear_ = register_module("linear", std::make_shared<nn::Linear>(64, num_classes, true, gen));
  stage_channels_ = {16, 16, 32, 64};
  nn::init::kaiming_normal_(linear_->weight, false, gen);
}

Tensor ResNetCifar::run_stage(int stage, const Tensor& x) {
  if (stage == 0) return ops::relu(bn1_->forward(conv1_->forward(x)));
  Tensor h = x;
  for (auto& block : layers_[size_t(stage - 1)]) h = block->forward(h);
  return h;
}

}  // namespace oodkit::models
