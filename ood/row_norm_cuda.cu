#include <cmath>

#include "framework/cuda/context.h"
#include "ood/row_norm_cuda.h"

namespace oodkit::cuda {

namespace {
// One warp per row, kWarps rows per 256-thread block; rows are visited with a warp-uniform
// grid-stride loop, so full-mask shuffles are safe.
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;

__global__ void row_norm_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n,
                                        int64_t d) {
  const int lane = threadIdx.x & 31;
  for (int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < n; r += int64_t(gridDim.x) * kWarps) {
    const float* xr = x + r * d;
    float s = 0.f;
    for (int64_t j = lane; j < d; j += 32) s = fmaf(xr[j], xr[j], s);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) y[r] = sqrtf(s);
  }
}

__global__ void row_norm_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                         const float* __restrict__ g, float* __restrict__ dx, int64_t n,
                                         int64_t d) {
  OODKIT_GRID_STRIDE(i, n * d) {
    const int64_t r = i / d;
    const float yr = y[r];
    dx[i] = yr > 0.f ? g[r] * x[i] / yr : 0.f;
  }
}
}  // namespace

void row_norm_forward(const float* x, float* y, int64_t n, int64_t d) {
  if (n == 0) return;
  row_norm_forward_kernel<<<grid_for(n, kWarps), kThreads, 0, stream()>>>(x, y, n, d);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void row_norm_backward(const float* x, const float* y, const float* g, float* dx, int64_t n, int64_t d) {
  if (n == 0 || d == 0) return;
  row_norm_backward_kernel<<<grid_for(n * d), 256, 0, stream()>>>(x, y, g, dx, n, d);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
