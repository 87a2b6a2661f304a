// ResNet-18/34/50 (He et al. 2016) in the CIFAR variant of kuangliu/pytorch-cifar, the one the
// heatmap paper trains (docs/methods.md, "Classifiers in the paper"):
//  - stem: 3x3 conv (3 -> 64, stride 1, pad 1, no bias) + BN + ReLU, no 7x7 conv and no 3x3
//    max-pool; with input_size 64 (Tiny ImageNet) a 2x2 max-pool (stride 2) follows the ReLU,
//    so that a 64x64 image reaches layer1 at 32x32 like a CIFAR image;
//  - layer1..layer4 with widths 64/128/256/512 (times the block's expansion), strides 1/2/2/2;
//    BasicBlock (expansion 1) for ResNet-18 ([2,2,2,2]) and -34 ([3,4,6,3]), Bottleneck
//    (expansion 4) for ResNet-50 ([3,4,6,3]) (-101 [3,4,23,3] and -152 [3,8,36,3] also build);
//  - projection shortcut (1x1 conv, no bias, + BN) wherever the stride or the width changes;
//  - global average pooling, then the linear head: z is 512-d (18/34) or 2048-d (50).
// Shapes for a 32x32 input (or 64x64 with the 64 stem): stem [N,64,32,32], layer1
// [N,64e,32,32], layer2 [N,128e,16,16], layer3 [N,256e,8,8], layer4 = F [N,512e,4,4].
// The network is fully convolutional before the global pooling, so other sizes run too.
//
// The ImageNet stem (ResNetStem::ImageNet, torchvision's resnet18/34/50 and the architectures
// resnet18_imagenet/34/50 of models/registry.h): 7x7 conv (3 -> 64, stride 2, pad 3, no bias) + BN
// + ReLU + 3x3 max-pool (stride 2, pad 1), whatever the input size: a 32x32 image reaches layer1
// at 8x8 and layer4 at 1x1, a 224x224 one at 56x56 and 7x7. Everything after the stem, and every
// state-dict name, is the same as with the CIFAR stem (torchvision's own names `downsample` and
// `fc` are mapped to these by models/checkpoint_names.h).
//
// State-dict names as kuangliu/pytorch-cifar: conv1, bn1, layer{1..4}.{i}.{conv1,bn1,conv2,bn2
// [,conv3,bn3]}, layer{s}.0.shortcut.0 (1x1 conv) and .shortcut.1 (BN), linear.
// Initialisation as that reference: PyTorch's defaults (convs and the linear layer
// U(+-1/sqrt(fan_in)) weights, linear bias likewise; BN weight 1, bias 0).
#pragma once
#include <memory>
#include <vector>

#include "models/classifier.h"

namespace oodkit::models {

// A residual block: y = relu(residual(x) + shortcut(x)).
class ResidualBlock : public nn::Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
};

// Two 3x3 convs (the first with the stride), each followed by BN; ReLU between and after the sum.
// Projection shortcut when stride != 1 or in != planes (null pointers otherwise).
class BasicBlock : public ResidualBlock {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in, int64_t planes, int stride, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, planes, H/stride, W/stride]

  std::shared_ptr<nn::Conv2d> conv1, conv2, shortcut_conv;  // shortcut_conv: "shortcut.0"
  std::shared_ptr<nn::BatchNorm> bn1, bn2, shortcut_bn;      // shortcut_bn: "shortcut.1"
};

// 1x1 conv (in -> planes), 3x3 conv (planes -> planes, with the stride), 1x1 conv
// (planes -> 4 planes), each followed by BN, ReLU after the first two and after the sum.
// Projection shortcut when stride != 1 or in != 4 planes.
class Bottleneck : public ResidualBlock {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int stride, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, 4 planes, H/stride, W/stride]

  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3, shortcut_conv;
  std::shared_ptr<nn::BatchNorm> bn1, bn2, bn3, shortcut_bn;
};

enum class ResNetStem {
  Cifar,     // 3x3 conv, stride 1 (+ a 2x2 max-pool when input_size is 64)
  ImageNet,  // 7x7 conv, stride 2, + 3x3 max-pool, stride 2 (torchvision's; input_size not used)
};

// What a ResNet is made of: blocks per stage (4 stages), the block type, the stem, the input size
// of the CIFAR stem and the base width (stem and layer1 width; layer s has width << (s-1)).
struct ResNetSpec {
  std::vector<int> blocks;
  bool bottleneck = false;
  ResNetStem stem = ResNetStem::Cifar;
  int input_size = 32;
  int64_t width = 64;
  // The standard depths 18, 34, 50, 101 and 152 (width 64); another depth is an Error.
  static ResNetSpec of_depth(int depth, ResNetStem stem = ResNetStem::Cifar, int input_size = 32);
};

class ResNet : public Classifier {
 public:
  // depth in {18, 34, 50, 101, 152}; input_size 32 (plain 3x3 stem) or 64 (stem + 2x2 max-pool).
  ResNet(int depth, int64_t num_classes, int input_size = 32, Generator& gen = default_generator());
  // Any spec (tests build narrow ones: the width and the block counts are free).
  ResNet(const ResNetSpec& spec, int64_t num_classes, Generator& gen = default_generator());
  nn::Linear& head() override { return *linear_; }
  int input_size() const { return spec_.input_size; }
  ResNetStem stem() const { return spec_.stem; }

 private:
  Tensor run_stage(int stage, const Tensor& x) override;
  ResNetSpec spec_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm> bn1_;
  std::vector<std::vector<std::shared_ptr<ResidualBlock>>> layers_;
  std::shared_ptr<nn::Linear> linear_;
};

}  // namespace oodkit::models
