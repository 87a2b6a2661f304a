// Parametric layers as Modules, with PyTorch's parameter names, shapes and default
// initialisation. Stateless ops (relu, pooling, concat, ...) are called directly from
// framework/ops/*.h.
#pragma once
#include "framework/nn/module.h"
#include "framework/ops/conv.h"
#include "framework/random.h"

namespace oodkit::nn {

// weight [out, in, k, k], bias [out] (optional). Init: torch's default (uniform ±1/sqrt(fan_in)).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int kernel, int stride = 1, int padding = 0, bool bias = true,
         int dilation = 1, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
  ops::Conv2dOptions options;
};

// weight [in, out, k, k] (torch layout), bias [out] (optional).
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in, int64_t out, int kernel, int stride = 1, int padding = 0, bool bias = true,
                  int output_padding = 0, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
  ops::ConvTranspose2dOptions options;
};

// BatchNorm over channels of [N, C, H, W] or [N, C]: weight (1), bias (0), buffers running_mean (0),
// running_var (1) and num_batches_tracked (int64, optional when loading).
class BatchNorm : public Module {
 public:
  explicit BatchNorm(int64_t channels, double momentum = 0.1, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x);  // updates running statistics when training
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double momentum, eps;
};

// weight [out, in], bias [out] (optional). Init: torch's default.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
};

}  // namespace oodkit::nn
