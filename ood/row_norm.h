// Euclidean norm of each row of a matrix (ViM's residual norm, and any per-sample feature norm).
// float32 on CPU/CUDA, float64 on the CPU.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ood {

// x [N, D] -> y [N], y_n = sqrt(sum_d x_nd^2) (D = 0 gives 0). The CPU sums in double.
// Backward: dx_nd = g_n * x_nd / y_n, and 0 for a row whose norm is 0 (the subgradient 0 at
// the kink).
Tensor row_norm(const Tensor& x);

}  // namespace oodkit::ood
