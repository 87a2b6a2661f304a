#include <algorithm>
#include <cmath>

#include "framework/cuda/context.h"
#include "framework/ops/elementwise_cuda.h"
#include "framework/ops/loss_cuda.h"

namespace oodkit::cuda {

namespace {
constexpr int kWarps = 8;               // cross-entropy: one warp per row, 8 rows per block
constexpr int kThreads = 32 * kWarps;
constexpr int kSumThreads = 256;        // weighted MSE: two-pass block reduction
constexpr int kSumBlocks = 256;

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Row loss = log s + (1 - eps) (m - x_y) + eps / k * sum_j (m - x_j), m the row max and
// s = sum_j exp(x_j - m): the smoothed cross-entropy without cancellation for large logits.
__global__ void cross_entropy_rows_kernel(const float* x, const int64_t* labels, int64_t n, int64_t k, float eps,
                                          float* row_loss, float* lse) {
  const int lane = threadIdx.x & 31;
  for (int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < n; r += int64_t(gridDim.x) * kWarps) {
    const float* xr = x + r * k;
    float m = -INFINITY;
    for (int64_t j = lane; j < k; j += 32) m = fmaxf(m, xr[j]);
    m = warp_max(m);
    float s = 0.f, gap = 0.f;
    for (int64_t j = lane; j < k; j += 32) {
      s += expf(xr[j] - m);
      gap += m - xr[j];
    }
    s = warp_sum(s);
    gap = warp_sum(gap);
    if (lane == 0) {
      const int64_t y = labels[r];
      // Labels were validated on the host; an out-of-range one here would read out of bounds.
      const float xy = (y >= 0 && y < k) ? xr[y] : NAN;
      const float log_s = logf(s);
      lse[r] = m + log_s;
      row_loss[r] = log_s + (1.f - eps) * (m - xy) + eps / float(k) * gap;
    }
  }
}

__global__ void cross_entropy_backward_kernel(const float* x, const int64_t* labels, const float* lse,
                                              const float* g, int64_t n, int64_t k, float eps, float* dx) {
  const float scale = g[0] / float(n);
  const float on = 1.f - eps, off = eps / float(k);
  OODKIT_GRID_STRIDE(i, n * k) {
    const int64_t r = i / k, j = i - r * k;
    dx[i] = scale * (expf(x[i] - lse[r]) - (j == labels[r] ? on : 0.f) - off);
  }
}

// Pass 1: block b writes the double sum of w (p - t)^2 over its grid-stride slice to partial[b].
__global__ void weighted_sq_partial_kernel(const float* p, const float* t, const float* w, int64_t count,
                                           double* partial) {
  __shared__ double sh[kSumThreads];
  double acc = 0.0;
  OODKIT_GRID_STRIDE(i, count) {
    const double d = double(p[i]) - double(t[i]);
    acc += (w ? double(w[i]) : 1.0) * d * d;
  }
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kSumThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}
// Pass 2: one block adds the partials in a fixed order.
__global__ void partial_final_kernel(const double* partial, int count, float* out, float scale) {
  __shared__ double sh[kSumThreads];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += kSumThreads) acc += partial[i];
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kSumThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = float(sh[0] * double(scale));
}

__global__ void weighted_mse_backward_kernel(const float* p, const float* t, const float* w, const float* g,
                                             int64_t count, float scale, float* dp, float* dt) {
  const float c = g[0] * scale;
  OODKIT_GRID_STRIDE(i, count) {
    const float d = c * (w ? w[i] : 1.f) * (p[i] - t[i]);
    if (dp) dp[i] = d;
    if (dt) dt[i] = -d;
  }
}
}  // namespace

void cross_entropy_forward(const float* logits, const int64_t* labels, int64_t n, int64_t k, float smoothing,
                           float* row_loss, float* lse, float* out) {
  cross_entropy_rows_kernel<<<grid_for(n, kWarps), kThreads, 0, stream()>>>(logits, labels, n, k, smoothing,
                                                                              row_loss, lse);
  OODKIT_CUDA_CHECK_LAUNCH();
  sum(row_loss, n, out, float(1.0 / double(n)));  // deterministic two-pass mean (elementwise_cuda.h)
}

void cross_entropy_backward(const float* logits, const int64_t* labels, const float* lse, const float* g,
                            int64_t n, int64_t k, float smoothing, float* dx) {
  if (n * k == 0) return;
  cross_entropy_backward_kernel<<<grid_for(n * k), 256, 0, stream()>>>(logits, labels, lse, g, n, k, smoothing, dx);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void weighted_mse_forward(const float* pred, const float* target, const float* weight, int64_t count,
                          float scale, float* out) {
  const int blocks =
      int(std::min<int64_t>(kSumBlocks, std::max<int64_t>(1, (count + kSumThreads - 1) / kSumThreads)));
  double* partial = static_cast<double*>(workspace(sizeof(double) * kSumBlocks));
  weighted_sq_partial_kernel<<<blocks, kSumThreads, 0, stream()>>>(pred, target, weight, count, partial);
  OODKIT_CUDA_CHECK_LAUNCH();
  partial_final_kernel<<<1, kSumThreads, 0, stream()>>>(partial, blocks, out, scale);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void weighted_mse_backward(const float* pred, const float* target, const float* weight, const float* g,
                           int64_t count, float scale, float* dpred, float* dtarget) {
  if (count == 0) return;
  weighted_mse_backward_kernel<<<grid_for(count), 256, 0, stream()>>>(pred, target, weight, g, count, scale, dpred,
                                                                      dtarget);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
