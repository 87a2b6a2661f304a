#include <cmath>

#include "framework/cuda/reduce.cuh"
#include "ood/input_ops_cuda.h"

namespace oodkit::cuda {

namespace {
__global__ void perturb_kernel(const float* x, const float* g, float* y, int64_t n, int64_t hw, float eps,
                               float s0, float s1, float s2) {
  OODKIT_GRID_STRIDE(i, n) {
    const int64_t c = (i / hw) % 3;
    const float inv_std = c == 0 ? s0 : (c == 1 ? s1 : s2);
    const float sign = g[i] >= 0.0f ? 1.0f : -1.0f;
    y[i] = x[i] - eps * (sign * inv_std);
  }
}

// One warp per row: sum of squares in double, then scale.
__global__ void normalize_rows_kernel(const float* x, float* y, int64_t rows, int64_t d) {
  const int64_t warps_per_block = blockDim.x / 32;
  const int lane = threadIdx.x % 32;
  for (int64_t r = blockIdx.x * warps_per_block + threadIdx.x / 32; r < rows; r += int64_t(gridDim.x) * warps_per_block) {
    const float* xr = x + r * d;
    double acc = 0.0;
    for (int64_t j = lane; j < d; j += 32) acc += double(xr[j]) * double(xr[j]);
    acc = warp_sum(acc);
    const float inv = float(1.0 / (sqrt(acc) + 1e-10));
    for (int64_t j = lane; j < d; j += 32) y[r * d + j] = xr[j] * inv;
  }
}
}  // namespace

void perturb_against_gradient(const float* x, const float* g, float* y, int64_t n, int64_t hw, float eps,
                              float inv_std0, float inv_std1, float inv_std2) {
  if (n == 0) return;
  perturb_kernel<<<grid_for(n), 256, 0, stream()>>>(x, g, y, n, hw, eps, inv_std0, inv_std1, inv_std2);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void normalize_rows(const float* x, float* y, int64_t rows, int64_t d) {
  if (rows == 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((rows + 7) / 8, 65535));
  normalize_rows_kernel<<<blocks, 256, 0, stream()>>>(x, y, rows, d);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
