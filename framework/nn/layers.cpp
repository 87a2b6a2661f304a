#include "framework/nn/layers.h"

#include <cmath>

#include "framework/nn/init.h"
#include "framework/ops/batch_norm.h"
#include "framework/ops/linear.h"

namespace oodkit::nn {

namespace {
// torch's default initialisation of a weight [out-ish, fan-in-ish, ...] and its optional bias [out]:
// both U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void init_weight_and_bias(Tensor& weight, Tensor& bias, const Shape& weight_shape, int64_t out, bool has_bias,
                          Generator& gen) {
  weight = Tensor::empty(weight_shape);
  init::default_uniform_(weight, gen);
  if (!has_bias) return;
  bias = Tensor::empty({out});
  const double bound = 1.0 / std::sqrt(double(init::fan_in(weight)));
  init::uniform_(bias, -bound, bound, gen);
}
}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, int kernel, int stride, int padding, bool has_bias, int dilation,
               Generator& gen)
    : options(ops::Conv2dOptions::square(stride, padding, dilation)) {
  OODKIT_CHECK(in > 0 && out > 0 && kernel > 0, "Conv2d: bad sizes in=", in, " out=", out, " kernel=", kernel);
  init_weight_and_bias(weight, bias, {out, in, kernel, kernel}, out, has_bias, gen);
  register_parameter("weight", &weight);
  if (has_bias) register_parameter("bias", &bias);
}

Tensor Conv2d::forward(const Tensor& x) const { return ops::conv2d(x, weight, bias, options); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int kernel, int stride, int padding, bool has_bias,
                                 int output_padding, Generator& gen)
    : options(ops::ConvTranspose2dOptions::square(stride, padding, output_padding)) {
  OODKIT_CHECK(in > 0 && out > 0 && kernel > 0, "ConvTranspose2d: bad sizes in=", in, " out=", out,
               " kernel=", kernel);
  // torch computes fan_in of a transposed conv weight from dim 1 (out channels).
  init_weight_and_bias(weight, bias, {in, out, kernel, kernel}, out, has_bias, gen);
  register_parameter("weight", &weight);
  if (has_bias) register_parameter("bias", &bias);
}

Tensor ConvTranspose2d::forward(const Tensor& x) const { return ops::conv_transpose2d(x, weight, bias, options); }

BatchNorm::BatchNorm(int64_t channels, double momentum_, double eps_, bool affine)
    : momentum(momentum_), eps(eps_) {
  OODKIT_CHECK(channels > 0, "BatchNorm: channels must be positive, got ", channels);
  if (affine) {
    weight = Tensor::ones({channels});
    bias = Tensor::zeros({channels});
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
  running_mean = Tensor::zeros({channels});
  running_var = Tensor::ones({channels});
  num_batches_tracked = Tensor::zeros({}, DType::I64);
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  register_buffer("num_batches_tracked", &num_batches_tracked, /*optional=*/true);
}

Tensor BatchNorm::forward(const Tensor& x) {
  if (is_training()) {
    // A host-side counter (Module::to keeps optional buffers on the CPU), kept for
    // torch-compatible state dicts.
    num_batches_tracked.data<int64_t>()[0] += 1;
  }
  return ops::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

Linear::Linear(int64_t in, int64_t out, bool has_bias, Generator& gen) {
  OODKIT_CHECK(in > 0 && out > 0, "Linear: bad sizes in=", in, " out=", out);
  init_weight_and_bias(weight, bias, {out, in}, out, has_bias, gen);
  register_parameter("weight", &weight);
  if (has_bias) register_parameter("bias", &bias);
}

Tensor Linear::forward(const Tensor& x) const { return ops::linear(x, weight, bias); }

}  // namespace oodkit::nn
