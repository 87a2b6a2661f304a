// CUDA launchers behind ood/input_ops.h (float32, oodkit stream).
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// y = x - eps * sign0(g) * inv_std[c], c = (i / hw) % 3.
void perturb_against_gradient(const float* x, const float* g, float* y, int64_t n, int64_t hw, float eps,
                              float inv_std0, float inv_std1, float inv_std2);
// y[r, :] = x[r, :] / (||x[r, :]|| + 1e-10), rows of length d.
void normalize_rows(const float* x, float* y, int64_t rows, int64_t d);
}  // namespace oodkit::cuda
