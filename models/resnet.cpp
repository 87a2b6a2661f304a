#include "models/resnet.h"

#include <string>

#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/pool.h"
#include "models/model_util.h"

namespace oodkit::models {

namespace {

// kuangliu's `shortcut = nn.Sequential(Conv2d(in, out, 1, stride, bias=False), BatchNorm2d(out))`.
// Returns the container to register as "shortcut" and sets its two members.
std::shared_ptr<ModuleList> make_projection(int64_t in, int64_t out, int stride, Generator& gen,
                                            std::shared_ptr<nn::Conv2d>* conv, std::shared_ptr<nn::BatchNorm>* bn) {
  auto holder = std::make_shared<ModuleList>();
  *conv = holder->add("0", std::make_shared<nn::Conv2d>(in, out, 1, stride, 0, false, 1, gen));
  *bn = holder->add("1", std::make_shared<nn::BatchNorm>(out));
  return holder;
}

Tensor shortcut(const Tensor& x, const std::shared_ptr<nn::Conv2d>& conv, const std::shared_ptr<nn::BatchNorm>& bn) {
  return conv ? bn->forward(conv->forward(x)) : x;
}

}  // namespace

BasicBlock::BasicBlock(int64_t in, int64_t planes, int stride, Generator& gen) {
  OODKIT_CHECK(in > 0 && planes > 0 && stride >= 1, "BasicBlock: bad sizes in=", in, " planes=", planes,
               " stride=", stride);
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, planes, 3, stride, 1, false, 1, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(planes));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(planes, planes, 3, 1, 1, false, 1, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(planes));
  if (stride != 1 || in != kExpansion * planes)
    register_module("shortcut", make_projection(in, kExpansion * planes, stride, gen, &shortcut_conv, &shortcut_bn));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor h = ops::relu(bn1->forward(conv1->forward(x)));
  h = bn2->forward(conv2->forward(h));
  return ops::relu(ops::add(h, shortcut(x, shortcut_conv, shortcut_bn)));
}

Bottleneck::Bottleneck(int64_t in, int64_t planes, int stride, Generator& gen) {
  OODKIT_CHECK(in > 0 && planes > 0 && stride >= 1, "Bottleneck: bad sizes in=", in, " planes=", planes,
               " stride=", stride);
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, planes, 1, 1, 0, false, 1, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(planes));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(planes, planes, 3, stride, 1, false, 1, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(planes));
  conv3 = register_module("conv3", std::make_shared<nn::Conv2d>(planes, kExpansion * planes, 1, 1, 0, false, 1, gen));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm>(kExpansion * planes));
  if (stride != 1 || in != kExpansion * planes)
    register_module("shortcut", make_projection(in, kExpansion * planes, stride, gen, &shortcut_conv, &shortcut_bn));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor h = ops::relu(bn1->forward(conv1->forward(x)));
  h = ops::relu(bn2->forward(conv2->forward(h)));
  h = bn3->forward(conv3->forward(h));
  return ops::relu(ops::add(h, shortcut(x, shortcut_conv, shortcut_bn)));
}

ResNet::ResNet(int depth, int64_t num_classes, int input_size, Generator& gen)
    : Classifier("ResNet"), input_size_(input_size) {
  bool bottleneck = false;
  std::vector<int> blocks;
  switch (depth) {
    case 18: blocks = {2, 2, 2, 2}; break;
    case 34: blocks = {3, 4, 6, 3}; break;
    case 50: blocks = {3, 4, 6, 3}; bottleneck = true; break;
    case 101: blocks = {3, 4, 23, 3}; bottleneck = true; break;
    case 152: blocks = {3, 8, 36, 3}; bottleneck = true; break;
    default: OODKIT_FAIL("ResNet: depth must be 18, 34, 50, 101 or 152, got ", depth);
  }
  OODKIT_CHECK(num_classes > 0, "ResNet: num_classes must be positive, got ", num_classes);
  OODKIT_CHECK(input_size == 32 || input_size == 64, "ResNet: input_size must be 32 or 64, got ", input_size);
  const int64_t expansion = bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;

  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(3, 64, 3, 1, 1, false, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm>(64));
  stage_channels_.push_back(64);
  int64_t in = 64;
  const int64_t widths[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    auto stage = std::make_shared<ModuleList>();
    layers_.emplace_back();
    for (int b = 0; b < blocks[size_t(s)]; ++b) {
      const int stride = (s > 0 && b == 0) ? 2 : 1;
      std::shared_ptr<ResidualBlock> block;
      if (bottleneck) block = std::make_shared<Bottleneck>(in, widths[s], stride, gen);
      else block = std::make_shared<BasicBlock>(in, widths[s], stride, gen);
      layers_.back().push_back(stage->add(std::to_string(b), block));
      in = widths[s] * expansion;
    }
    register_module("layer" + std::to_string(s + 1), stage);
    stage_channels_.push_back(in);
  }
  linear_ = register_module("linear", std::make_shared<nn::Linear>(in, num_classes, true, gen));
}

Tensor ResNet::run_stage(int stage, const Tensor& x) {
  if (stage == 0) {
    Tensor h = ops::relu(bn1_->forward(conv1_->forward(x)));
    if (input_size_ == 64) h = ops::max_pool2d(h, ops::Pool2dOptions::square(2, 2));
    return h;
  }
  Tensor h = x;
  for (auto& block : layers_[size_t(stage - 1)]) h = block->forward(h);
  return h;
}

}  // namespace oodkit::models
