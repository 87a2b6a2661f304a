// CUDA launchers behind framework/ops/linear.h (float32, current device, oodkit stream).
#pragma once
#include <cstdint>

namespace oodkit::cuda {
// Row-major c [M, N] = op(a) op(b) (+ c when accumulate): a is [M, K] or [K, M] (trans_a), b is
// [K, N] or [N, K] (trans_b). cublasGemmEx with cublas_compute_type(). K == 0 gives zeros.
void gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b, bool accumulate);
// y [rows, cols] += bias [cols] broadcast over rows.
void add_bias(float* y, const float* bias, int64_t rows, int64_t cols);
// out [cols] = sum over rows of g [rows, cols] (fixed summation order, no atomics).
void column_sum(const float* g, float* out, int64_t rows, int64_t cols);
}  // namespace oodkit::cuda
