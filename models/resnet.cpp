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

ResNetSpec ResNetSpec::of_depth(int depth, ResNetStem stem, int input_size) {
  ResNetSpec s;
  s.stem = stem;
  s.input_size = input_size;
  switch (depth) {
    case 18: s.blocks = {2, 2, 2, 2}; break;
    case 34: s.blocks = {3, 4, 6, 3}; break;
    case 50: s.blocks = {3, 4, 6, 3}; s.bottleneck = true; break;
    case 101: s.blocks = {3, 4, 23, 3}; s.bottleneck = true; break;
    case 152: s.blocks = {3, 8, 36, 3}; s.bottleneck = true; break;
    default: OODKIT_FAIL("ResNet: depth must be 18, 34, 50, 101 or 152, got ", depth);
  }
  return s;
}

ResNet::ResNet(int depth, int64_t num_classes, int input_size, Generator& gen)
    : ResNet(ResNetSpec::of_depth(depth, ResNetStem::Cifar, input_size), num_classes, gen) {}

ResNet::ResNet(const ResNetSpec& spec, int64_t num_classes, Generator& gen) : Classifier("ResNet"), spec_(spec) {
  OODKIT_CHECK(spec.blocks.size() == 4, "ResNet: 4 stages expected, got ", spec.blocks.size());
  for (int b : spec.blocks) OODKIT_CHECK(b >= 1, "ResNet: every stage needs a block, got ", b);
  OODKIT_CHECK(spec.width >= 1, "ResNet: width must be positive, got ", spec.width);
  OODKIT_CHECK(num_classes > 0, "ResNet: num_classes must be positive, got ", num_classes);
  OODKIT_CHECK(spec.input_size == 32 || spec.input_size == 64, "ResNet: input_size must be 32 or 64, got ",
               spec.input_size);
  const int64_t expansion = spec.bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;
  const int64_t w = spec.width;

  if (spec.stem == ResNetStem::ImageNet)
    conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(3, w, 7, 2, 3, false, 1, gen));
  else
    conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(3, w, 3, 1, 1, false, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm>(w));
  stage_channels_.push_back(w);
  int64_t in = w;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = w << s;
    auto stage = std::make_shared<ModuleList>();
    layers_.emplace_back();
    for (int b = 0; b < spec.blocks[size_t(s)]; ++b) {
      const int stride = (s > 0 && b == 0) ? 2 : 1;
      std::shared_ptr<ResidualBlock> block;
      if (spec.bottleneck) block = std::make_shared<Bottleneck>(in, planes, stride, gen);
      else block = std::make_shared<BasicBlock>(in, planes, stride, gen);
      layers_.back().push_back(stage->add(std::to_string(b), block));
      in = planes * expansion;
    }
    register_module("layer" + std::to_string(s + 1), stage);
    stage_channels_.push_back(in);
  }
  linear_ = register_module("linear", std::make_shared<nn::Linear>(in, num_classes, true, gen));
}

Tensor ResNet::run_stage(int stage, const Tensor& x) {
  if (stage == 0) {
    Tensor h = ops::relu(bn1_->forward(conv1_->forward(x)));
    if (spec_.stem == ResNetStem::ImageNet) h = ops::max_pool2d(h, ops::Pool2dOptions::square(3, 2, 1));
    else if (spec_.input_size == 64) h = ops::max_pool2d(h, ops::Pool2dOptions::square(2, 2));
    return h;
  }
  Tensor h = x;
  for (auto& block : layers_[size_t(stage - 1)]) h = block->forward(h);
  return h;
}

}  // namespace oodkit::models
