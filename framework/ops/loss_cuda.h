// CUDA launchers behind framework/ops/loss.h (float32, current device, oodkit stream).
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// logits [n, k], labels [n] (checked here: a label outside [0, k) gives a NaN row and a device
// check failure, see framework/cuda/context.h). One warp per row writes row_loss[r] (the
// smoothed cross-entropy of row r) and lse[r] = log sum_j exp(logits[r, j]); then
// out[0] = mean of row_loss (deterministic two-pass reduction). n >= 1.
void cross_entropy_forward(const float* logits, const int64_t* labels, int64_t n, int64_t k, float smoothing,
                           float* row_loss, float* lse, float* out);
// dx [n, k] = g[0] / n * (exp(logits - lse[r]) - (1 - s) [j == label] - s / k); g is a device scalar.
void cross_entropy_backward(const float* logits, const int64_t* labels, const float* lse, const float* g,
                            int64_t n, int64_t k, float smoothing, float* dx);
// out[0] = scale * sum_i w_i (p_i - t_i)^2 over count elements (w == nullptr: 1); deterministic.
void weighted_mse_forward(const float* pred, const float* target, const float* weight, int64_t count,
                          float scale, float* out);
// d = g[0] * scale * w (p - t); writes dpred = d and dtarget = -d where those are non-null.
void weighted_mse_backward(const float* pred, const float* target, const float* weight, const float* g,
                           int64_t count, float scale, float* dpred, float* dtarget);
}  // namespace oodkit::cuda
