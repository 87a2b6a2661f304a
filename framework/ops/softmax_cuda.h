// CUDA launchers behind framework/ops/softmax.h (float32, current device, oodkit stream).
// x, y, g, dx are row-major [n, k]; inv_t = 1 / temperature. One warp per row.
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// y = softmax(x * inv_t) (log_space: log_softmax) along each row.
void softmax_forward(const float* x, float* y, int64_t n, int64_t k, float inv_t, bool log_space);
// out[r] = T * log sum_j exp(x[r, j] * inv_t), with T = 1 / inv_t.
void logsumexp_forward(const float* x, float* out, int64_t n, int64_t k, float inv_t);
// Softmax backward from its output y: dx = inv_t * y * (g - sum_j g_j y_j).
void softmax_backward(const float* y, const float* g, float* dx, int64_t n, int64_t k, float inv_t);
// Log-softmax backward from its output z: dx = inv_t * (g - exp(z) * sum_j g_j).
void log_softmax_backward(const float* z, const float* g, float* dx, int64_t n, int64_t k, float inv_t);
// Logsumexp backward from its input x and output lse [n]: dx = g[r] * exp((x - lse[r]) * inv_t).
void logsumexp_backward(const float* x, const float* lse, const float* g, float* dx, int64_t n, int64_t k,
                        float inv_t);
}  // namespace oodkit::cuda
