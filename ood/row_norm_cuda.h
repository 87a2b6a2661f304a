// CUDA launchers behind ood/row_norm.h (float32, current device, oodkit stream).
// x and dx are row-major [n, d]; y and g are [n].
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// y[r] = sqrt(sum_j x[r, j]^2). One warp per row.
void row_norm_forward(const float* x, float* y, int64_t n, int64_t d);
// dx[r, j] = g[r] * x[r, j] / y[r] (0 where y[r] == 0).
void row_norm_backward(const float* x, const float* y, const float* g, float* dx, int64_t n, int64_t d);
}  // namespace oodkit::cuda
