// CUDA launchers behind framework/ops/elementwise.h (float32, current device, oodkit stream).
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// y[i] = alpha*a[i] + beta*b[i]
void axpby(const float* a, const float* b, float* y, float alpha, float beta, int64_t n);
// y[i] = a[i] * b[i]
void multiply(const float* a, const float* b, float* y, int64_t n);
// y[i] = alpha*x[i] + beta
void affine(const float* x, float* y, float alpha, float beta, int64_t n);
// y[i] = scale * s[0] for i < n (s on the device: no host round trip)
void broadcast_scaled(const float* s, float scale, float* y, int64_t n);
// out[0] = scale * sum(x[0..n)); deterministic two-pass reduction, accumulated in double
void sum(const float* x, int64_t n, float* out, float scale);
}  // namespace oodkit::cuda
