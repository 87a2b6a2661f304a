// DenseNet-BC (Huang et al. 2017) as the `DenseNet3` of the ODIN / Energy code bases (densenet.py),
// default DenseNet-BC-100: growth rate k = 12, compression 0.5, bottleneck layers, no dropout.
//  - stem: conv1, 3x3 conv 3 -> 2k (no bias);
//  - block1..block3, each `DenseBlock` holding `layer.{i}`, n = (depth-4)/6 bottleneck layers
//    (16 for depth 100); a bottleneck layer maps x [N, C, H, W] to
//    concat(x, conv2(relu(bn2(conv1(relu(bn1(x))))))) [N, C + k, H, W], conv1 1x1 C -> 4k,
//    conv2 3x3 4k -> k;
//  - trans1, trans2 after block1 and block2: avg_pool2d(conv1(relu(bn1(x))), 2) with conv1 1x1
//    C -> floor(C * reduction);
//  - after block3: bn1 + ReLU, global average pooling, fc.
// Channels for depth 100, k 12: 24 -> block1 216 -> trans1 108 -> block2 300 -> trans2 150 ->
// block3 342 (z = 342).
// Stages: 0 stem [N,24,H,W]; 1 block1+trans1 [N,108,H/2,W/2]; 2 block2+trans2 [N,150,H/4,W/4];
// 3 block3 + bn1 + ReLU = F [N,342,H/4,W/4].
// State-dict names: conv1, block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2}, trans{1,2}.{bn1,conv1},
// bn1, fc. Initialisation as the reference: conv weights N(0, 2/(k*k*out)), BN 1 / 0, fc weight
// PyTorch's default and fc bias 0.
#pragma once
#include <memory>
#include <vector>

#include "models/classifier.h"

namespace oodkit::models {

// BottleneckBlock of densenet.py: [N, in, H, W] -> [N, in + growth, H, W].
class DenseLayer : public nn::Module {
 public:
  DenseLayer(int64_t in, int64_t growth, Generator& gen = default_generator());
  Tensor forward(const Tensor& x);

  std::shared_ptr<nn::BatchNorm> bn1, bn2;
  std::shared_ptr<nn::Conv2d> conv1, conv2;
};

// TransitionBlock of densenet.py: [N, in, H, W] -> [N, out, H/2, W/2] (2x2 average pooling, floor).
class DenseTransition : public nn::Module {
 public:
  DenseTransition(int64_t in, int64_t out, Generator& gen = default_generator());
  Tensor forward(const Tensor& x);

  std::shared_ptr<nn::BatchNorm> bn1;
  std::shared_ptr<nn::Conv2d> conv1;
};

class DenseNet : public Classifier {
 public:
  // depth = 6n + 4 (100 for DenseNet-BC-100), growth_rate > 0, reduction in (0, 1].
  DenseNet(int depth, int64_t num_classes, int64_t growth_rate = 12, double reduction = 0.5,
           Generator& gen = default_generator());
  nn::Linear& head() override { return *fc_; }

 private:
  Tensor run_stage(int stage, const Tensor& x) override;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::vector<std::vector<std::shared_ptr<DenseLayer>>> blocks_;
  std::vector<std::shared_ptr<DenseTransition>> transitions_;
  std::shared_ptr<nn::BatchNorm> bn1_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace oodkit::models
