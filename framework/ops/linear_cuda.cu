#include <climits>

#include "framework/cuda/context.h"
#include "framework/ops/linear_cuda.h"

namespace oodkit::cuda {

namespace {
__global__ void add_bias_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  OODKIT_GRID_STRIDE(i, rows * cols) y[i] += bias[i % cols];
}

// Column sums with a (32 x kColRows) block per 32-column tile: thread (tx, ty) adds rows
// ty, ty + kColRows, ... of column 32*blockIdx.x + tx (coalesced across tx), then thread ty == 0
// adds the kColRows partials in a fixed order. Deterministic, no atomics.
constexpr int kColRows = 32;
__global__ void column_sum_kernel(const float* g, float* out, int64_t rows, int64_t cols) {
  __shared__ float part[kColRows][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col = int64_t(blockIdx.x) * 32 + tx;
  float acc = 0.f;
  if (col < cols)
    for (int64_t r = ty; r < rows; r += kColRows) acc += g[r * cols + col];
  part[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && col < cols) {
    float s = 0.f;
    for (int j = 0; j < kColRows; ++j) s += part[j][tx];
    out[col] = s;
  }
}
}  // namespace

void gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) OODKIT_CUDA_CHECK(cudaMemsetAsync(c, 0, size_t(m * n) * sizeof(float), stream()));
    return;
  }
  OODKIT_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "matmul: dimensions M=", m, " N=", n, " K=", k,
               " exceed cuBLAS's int range");
  // Row-major C [m, n] is column-major C^T [n, m] = op(B)^T op(A)^T. A row-major matrix stored
  // [r, c] reads as its column-major transpose with leading dimension c, so B enters first
  // (transposed only when trans_b) and A second (only when trans_a).
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  const int lda = int(trans_a ? m : k);  // columns of a as stored
  const int ldb = int(trans_b ? k : n);  // columns of b as stored
  cublasHandle_t h = cublas();
  const auto run = [&] {
    return cublasGemmEx(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(n), int(m),
                        int(k), &alpha, b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F, int(n),
                        cublas_compute_type(), CUBLAS_GEMM_DEFAULT);
  };
  cublasStatus_t st = run();
  if (st == CUBLAS_STATUS_ALLOC_FAILED) {  // cuBLAS's own workspace: free oodkit's cache, retry once
    empty_cache();
    st = run();
  }
  OODKIT_CUBLAS_CHECK(st);
}

void add_bias(float* y, const float* bias, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  add_bias_kernel<<<grid_for(rows * cols), 256, 0, stream()>>>(y, bias, rows, cols);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void column_sum(const float* g, float* out, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  const dim3 block(32, kColRows);
  const int64_t tiles = (cols + 31) / 32;
  OODKIT_CHECK(tiles <= INT_MAX, "column_sum: too many columns: ", cols);
  column_sum_kernel<<<unsigned(tiles), block, 0, stream()>>>(g, out, rows, cols);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
