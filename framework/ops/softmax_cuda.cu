#include <cmath>

#include "framework/cuda/reduce.cuh"
#include "framework/ops/softmax_cuda.h"

namespace oodkit::cuda {

namespace {
// One warp per row, kWarps rows per 256-thread block; rows are visited with a warp-uniform
// grid-stride loop, so full-mask shuffles are safe.
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;


#define OODKIT_ROW_LOOP(r, n)                                                      \
  const int lane = threadIdx.x & 31;                                               \
  for (int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < (n); \
       r += int64_t(gridDim.x) * kWarps)

// Row shift m (the row max; 0 when the max is -inf, so that an all -inf row gives s = 0 rather
// than NaN) and s = sum_j exp((x_j - m) * inv_t), both warp-reduced (all lanes get them). A NaN
// anywhere in the row makes s NaN, so every output of that row is NaN.
__device__ __forceinline__ void row_stats(const float* xr, int64_t k, float inv_t, int lane, float& m, float& s) {
  m = -INFINITY;
  for (int64_t j = lane; j < k; j += 32) m = fmaxf(m, xr[j]);
  m = warp_max(m);
  if (m == -INFINITY) m = 0.f;
  s = 0.f;
  for (int64_t j = lane; j < k; j += 32) s += expf((xr[j] - m) * inv_t);
  s = warp_sum(s);
}

__global__ void softmax_forward_kernel(const float* x, float* y, int64_t n, int64_t k, float inv_t,
                                       bool log_space) {
  OODKIT_ROW_LOOP(r, n) {
    const float* xr = x + r * k;
    float* yr = y + r * k;
    float m, s;
    row_stats(xr, k, inv_t, lane, m, s);
    if (log_space) {
      const float log_s = logf(s);
      for (int64_t j = lane; j < k; j += 32) yr[j] = (xr[j] - m) * inv_t - log_s;
    } else {
      const float inv_s = 1.f / s;
      for (int64_t j = lane; j < k; j += 32) yr[j] = expf((xr[j] - m) * inv_t) * inv_s;
    }
  }
}

__global__ void logsumexp_forward_kernel(const float* x, float* out, int64_t n, int64_t k, float inv_t) {
  const float t = 1.f / inv_t;
  OODKIT_ROW_LOOP(r, n) {
    float m, s;
    row_stats(x + r * k, k, inv_t, lane, m, s);
    if (lane == 0) out[r] = m + t * logf(s);
  }
}

__global__ void softmax_backward_kernel(const float* y, const float* g, float* dx, int64_t n, int64_t k,
                                        float inv_t) {
  OODKIT_ROW_LOOP(r, n) {
    const float* yr = y + r * k;
    const float* gr = g + r * k;
    float* dr = dx + r * k;
    float dot = 0.f;
    for (int64_t j = lane; j < k; j += 32) dot += gr[j] * yr[j];
    dot = warp_sum(dot);
    for (int64_t j = lane; j < k; j += 32) dr[j] = inv_t * yr[j] * (gr[j] - dot);
  }
}

__global__ void log_softmax_backward_kernel(const float* z, const float* g, float* dx, int64_t n, int64_t k,
                                            float inv_t) {
  OODKIT_ROW_LOOP(r, n) {
    const float* zr = z + r * k;
    const float* gr = g + r * k;
    float* dr = dx + r * k;
    float sg = 0.f;
    for (int64_t j = lane; j < k; j += 32) sg += gr[j];
    sg = warp_sum(sg);
    for (int64_t j = lane; j < k; j += 32) dr[j] = inv_t * (gr[j] - expf(zr[j]) * sg);
  }
}

__global__ void logsumexp_backward_kernel(const float* x, const float* lse, const float* g, float* dx,
                                          int64_t n, int64_t k, float inv_t) {
  OODKIT_GRID_STRIDE(i, n * k) {
    const int64_t r = i / k;
    dx[i] = g[r] * expf((x[i] - lse[r]) * inv_t);
  }
}
}  // namespace

void softmax_forward(const float* x, float* y, int64_t n, int64_t k, float inv_t, bool log_space) {
  if (n == 0) return;
  softmax_forward_kernel<<<grid_for(n, kWarps), kThreads, 0, stream()>>>(x, y, n, k, inv_t, log_space);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void logsumexp_forward(const float* x, float* out, int64_t n, int64_t k, float inv_t) {
  if (n == 0) return;
  logsumexp_forward_kernel<<<grid_for(n, kWarps), kThreads, 0, stream()>>>(x, out, n, k, inv_t);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void softmax_backward(const float* y, const float* g, float* dx, int64_t n, int64_t k, float inv_t) {
  if (n == 0) return;
  softmax_backward_kernel<<<grid_for(n, kWarps), kThreads, 0, stream()>>>(y, g, dx, n, k, inv_t);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void log_softmax_backward(const float* z, const float* g, float* dx, int64_t n, int64_t k, float inv_t) {
  if (n == 0) return;
  log_softmax_backward_kernel<<<grid_for(n, kWarps), kThreads, 0, stream()>>>(z, g, dx, n, k, inv_t);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void logsumexp_backward(const float* x, const float* lse, const float* g, float* dx, int64_t n, int64_t k,
                        float inv_t) {
  if (n * k == 0) return;
  logsumexp_backward_kernel<<<grid_for(n * k), 256, 0, stream()>>>(x, lse, g, dx, n, k, inv_t);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
