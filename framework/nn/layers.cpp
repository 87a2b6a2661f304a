#include "framework/nn/layers.h"

#include <cmath>

#include "framework/nn/init.h"
#include "framework/ops/batch_norm.h"
#include "framework/ops/linear.h"

namespace oodkit::nn {

namespace {
void init_bias(Tensor& b, const Tensor& w, Generator& gen) {
  const double bound = 1.0 / std::sqrt(double(init::fan_in(w)));
  init::uniform_(b, -bound, bound, gen);
}
}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, int kernel, int stride, int padding, bool has_bias, int dilation,
               Generator& gen)
    : options(ops::Conv2dOptions::square(stride, padding, dilation)) {
  OODKIT_CHECK(in > 0 && out > 0 && kernel > 0, "Conv2d: bad sizes in=", in, " out=", out, " kernel=", kernel);
  weight = Tensor::empty({out, in, kernel, kernel});
  init::default_uniform_(weight, gen);
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::empty({out});
    init_bias(bias, weight, gen);
    register_parameter("bias", &bias);
  }
}

Tensor Conv2d::forward(const Tensor& x) const { return ops::conv2d(x, weight, bias, options); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int kernel, int stride, int padding, bool has_bias,
                                 int output_padding, Generator& gen)
    : options(ops::ConvTranspose2dOptions::square(stride, padding, output_padding)) {
  OODKIT_CHECK(in > 0 && out > 0 && kernel > 0, "ConvTranspose2d: bad sizes in=", in, " out=", out,
               " kernel=", kernel);
  weight = Tensor::empty({in, out, kernel, kernel});
  // torch computes fan_in of a transposed conv weight from dim 1 (out channels).
  init::default_uniform_(weight, gen);
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::empty({out});
    init_bias(bias, weight, gen);
    register_parameter("bias", &bias);
  }
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
  weight = Tensor::empty({out, in});
  init::default_uniform_(weight, gen);
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::empty({out});
    init_bias(bias, weight, gen);
    register_parameter("bias", &bias);
  }
}

Tensor Linear::forward(const Tensor& x) const { return ops::linear(x, weight, bias); }

}  // namespace oodkit::nn
