// Wide ResNet (Zagoruyko & Komodakis 2016) as xternalz/WideResNet-pytorch, the version that the
// ODIN, Energy and heatmap OOD code bases train: WRN-d-k with n = (d-4)/6 pre-activation blocks
// per group, channels 16, 16k, 32k, 64k (WRN-40-2: 16/32/64/128, z = 128), dropout between the
// two convs of every block.
//  - stem: conv1, 3x3 conv 3 -> 16 (no bias, no BN/ReLU: the blocks are pre-activation);
//  - block1..block3 (strides 1/2/2), each `NetworkBlock` holding `layer.{i}`;
//  - after block3: bn1 + ReLU, global average pooling, fc.
// Block (`BasicBlock` of xternalz): o = relu(bn1(x)); h = conv1(o) (3x3, stride); h =
// relu(bn2(h)); h = dropout(h); h = conv2(h) (3x3); y = h + shortcut, where the shortcut is x
// itself when in == out, else convShortcut(o) (1x1 conv with the stride on the PRE-ACTIVATED
// input, as in the reference).
// Stages: 0 stem [N,16,H,W]; 1 block1 [N,16k,H,W]; 2 block2 [N,32k,H/2,W/2]; 3 block3 followed by
// the final bn1 + ReLU, so the last stage output F [N,64k,H/4,W/4] is "after the last ReLU".
// State-dict names: conv1, block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2,convShortcut}, bn1, fc.
// Initialisation as the reference: conv weights N(0, 2/(k*k*out)) (kaiming normal, fan_out),
// BN weight 1 / bias 0, fc weight PyTorch's default and fc bias 0.
#pragma once
#include <memory>
#include <vector>

#include "models/classifier.h"

namespace oodkit::models {

class WideBasicBlock : public nn::Module {
 public:
  // `dropout_gen` draws the dropout masks in training (shared by the blocks of one network).
  WideBasicBlock(int64_t in, int64_t out, int stride, double drop_rate, std::shared_ptr<Generator> dropout_gen,
                 Generator& gen = default_generator());
  Tensor forward(const Tensor& x);  // [N, in, H, W] -> [N, out, H/stride, W/stride]

  std::shared_ptr<nn::BatchNorm> bn1, bn2;
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv_shortcut;  // conv_shortcut: "convShortcut", null if in == out
  double drop_rate;

 private:
  std::shared_ptr<Generator> dropout_gen_;
};

class WideResNet : public Classifier {
 public:
  // depth = 6n + 4 (40 for WRN-40-2), widen_factor >= 1, drop_rate in [0, 1). The dropout
  // generator is seeded from `gen`; reseed it with dropout_generator().manual_seed(...).
  WideResNet(int depth, int widen_factor, int64_t num_classes, double drop_rate = 0.3,
             Generator& gen = default_generator());
  nn::Linear& head() override { return *fc_; }
  Generator& dropout_generator() { return *dropout_gen_; }
  void reseed(uint64_t seed) override { dropout_gen_->manual_seed(seed); }

 private:
  Tensor run_stage(int stage, const Tensor& x) override;
  std::shared_ptr<Generator> dropout_gen_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::vector<std::vector<std::shared_ptr<WideBasicBlock>>> blocks_;
  std::shared_ptr<nn::BatchNorm> bn1_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace oodkit::models
