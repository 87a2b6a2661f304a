// CIFAR ResNet-20/32/44/56 (He et al. 2016, section 4.2): 3x3 stem with 16 channels, three
// stages of n = (depth-2)/6 basic blocks with 16/32/64 channels, "option A" shortcuts
// (stride-2 subsample + zero-padded channels, no parameters). Parameter names follow the
// common PyTorch implementation: conv1, bn1, layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}, linear.
#pragma once
#include <memory>
#include <vector>

#include "models/classifier.h"

namespace oodkit::models {

class CifarBasicBlock : public nn::Module {
 public:
  CifarBasicBlock(int64_t in, int64_t out, int stride, Generator& gen);
  Tensor forward(const Tensor& x);

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm> bn1_, bn2_;
  int stride_;
  int64_t in_, out_;
};

class ResNetCifar : public Classifier {
 public:
  // depth in {20, 32, 44, 56, 110, ...}: (depth - 2) divisible by 6.
  ResNetCifar(int depth, int64_t num_classes, Generator& gen = default_generator());
  nn::Linear& head() override { return *linear_; }

 private:
  Tensor run_stage(int stage, const Tensor& x) override;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm> bn1_;
  std::vector<std::vector<std::shared_ptr<CifarBasicBlock>>> layers_;
  std::shared_ptr<nn::Linear> linear_;
};

}  // namespace oodkit::models
