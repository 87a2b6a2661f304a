#include <algorithm>
#include <cmath>

#include "framework/cuda/device_check.cuh"
#include "framework/cuda/reduce.cuh"
#include "framework/ops/elementwise_cuda.h"
#include "framework/ops/loss_cuda.h"

namespace oodkit::cuda {

namespace {
constexpr int kWarps = 8;               // cross-entropy: one warp per row, 8 rows per block
constexpr int kThreads = 32 * kWarps;

// Row loss = log s + (1 - eps) (m - x_y) + eps / k * sum_j (m - x_j), m the row max and
// s = sum_j exp(x_j - m): the smoothed cross-entropy without cancellation for large logits.
__global__ void cross_entropy_rows_kernel(const float* x, const int64_t* labels, int64_t n, int64_t k, float eps,
                                          float* row_loss, float* lse, DeviceCheckSlot* check) {
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
      // Labels are checked here, not on the host (no sync): a bad one gives a NaN row and is
      // reported at the next synchronisation.
      const bool ok = y >= 0 && y < k;
      if (!ok) report_bad_value(check, kCrossEntropyLabel, r, y, k);
      const float xy = ok ? xr[y] : NAN;
      const float log_s = logf(s);
      lse[r] = m + log_s;
      // The smoothing term only when eps > 0: a -inf logit makes gap inf, and 0 * inf is NaN.
      row_loss[r] = log_s + (1.f - eps) * (m - xy) + (eps > 0.f ? eps / float(k) * gap : 0.f);
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
  double acc = 0.0;
  OODKIT_GRID_STRIDE(i, count) {
    const double d = double(p[i]) - double(t[i]);
    acc += (w ? double(w[i]) : 1.0) * d * d;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
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
  DeviceCheckSlot* check = device_check_slot();
  cross_entropy_rows_kernel<<<grid_for(n, kWarps), kThreads, 0, stream()>>>(logits, labels, n, k, smoothing,
                                                                              row_loss, lse, check);
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
  const int blocks = reduce_blocks(count);
  double* partial = static_cast<double*>(workspace(sizeof(double) * kReduceBlocks));
  weighted_sq_partial_kernel<<<blocks, kReduceThreads, 0, stream()>>>(pred, target, weight, count, partial);
  OODKIT_CUDA_CHECK_LAUNCH();
  finish_partial_sums(partial, blocks, out, scale);
}

void weighted_mse_backward(const float* pred, const float* target, const float* weight, const float* g,
                           int64_t count, float scale, float* dpred, float* dtarget) {
  if (count == 0) return;
  weighted_mse_backward_kernel<<<grid_for(count), 256, 0, stream()>>>(pred, target, weight, g, count, scale, dpred,
                                                                      dtarget);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
