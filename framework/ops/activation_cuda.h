// CUDA launchers behind framework/ops/activation.h (float32, current device, oodkit stream).
// All are flat elementwise maps over n elements; outputs never alias saved inputs.
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// y = max(x, 0) (NaN propagates); gx = y > 0 ? g : 0
void relu_forward(const float* x, float* y, int64_t n);
void relu_backward(const float* y, const float* g, float* gx, int64_t n);
// y = tanh(x); gx = g * (1 - y^2)
void tanh_forward(const float* x, float* y, int64_t n);
void tanh_backward(const float* y, const float* g, float* gx, int64_t n);
// y = 1 / (1 + exp(-x)); gx = g * y * (1 - y)
void sigmoid_forward(const float* x, float* y, int64_t n);
void sigmoid_backward(const float* y, const float* g, float* gx, int64_t n);
// y = min(max(x, lo), hi); gx = (lo < x < hi) ? g : 0. lo/hi may be -inf/+inf.
void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n);
void clamp_backward(const float* x, const float* g, float* gx, float lo, float hi, int64_t n);
// y[i] = (double(counter_uniform(seed, i)) >= p) ? x[i] * scale : 0 — dropout forward and,
// applied to the gradient with the same seed, its backward.
void dropout_apply(const float* x, float* y, uint64_t seed, double p, float scale, int64_t n);
}  // namespace oodkit::cuda
