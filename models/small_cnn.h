// SmallCnn: a four-stage plain CNN (about 0.3M parameters, ~10x cheaper than ResNet-20) for
// quick CPU runs: the embedded default study and tests. Not from the literature.
//   stem:   conv3x3(3->32) BN ReLU                 32x32
//   stage1: conv3x3(32->64, s2) BN ReLU            16x16
//   stage2: conv3x3(64->128, s2) BN ReLU            8x8
//   stage3: conv3x3(128->128) BN ReLU               8x8  (F, z = 128)
//   head:   global average pool, linear(128 -> K)
// Names: stem.{conv,bn}, stage{1,2,3}.{conv,bn}, linear.
#pragma once
#include <memory>
#include <vector>

#include "models/classifier.h"

namespace oodkit::models {

class SmallCnn : public Classifier {
 public:
  SmallCnn(int64_t num_classes, Generator& gen = default_generator());
  nn::Linear& head() override { return *linear_; }

 private:
  Tensor run_stage(int stage, const Tensor& x) override;
  struct Unit {
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::BatchNorm> bn;
  };
  std::vector<Unit> units_;
  std::shared_ptr<nn::Linear> linear_;
};

}  // namespace oodkit::models
