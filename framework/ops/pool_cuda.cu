// Pooling kernels. Own kernels rather than cuDNN so that the max-pool tie rule and the
// summation order of the backward match the CPU reference exactly; backward passes are
// gathers over the windows containing each input element (deterministic, no atomics).
#include <algorithm>
#include <climits>

#include "framework/cuda/context.h"
#include "framework/ops/pool_cuda.h"

namespace oodkit::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int avg_divisor(int hs, int ws, const PoolGeometry& g, bool include_pad) {
  if (include_pad) {
    const int he = min(hs + g.kh, g.h + g.ph), we = min(ws + g.kw, g.w + g.pw);
    return (he - hs) * (we - ws);
  }
  const int h0 = max(hs, 0), h1 = min(hs + g.kh, g.h);
  const int w0 = max(ws, 0), w1 = min(ws + g.kw, g.w);
  return (h1 - h0) * (w1 - w0);
}

// Output windows [lo, hi] along one axis that contain input coordinate i (empty if lo > hi).
__device__ __forceinline__ void windows_containing(int i, int pad, int k, int s, int out, int& lo, int& hi) {
  const int t = i + pad;  // coordinate in the padded input, >= 0
  lo = t < k ? 0 : (t - k) / s + 1;
  hi = min(t / s, out - 1);
}

// One thread per output element.
__global__ void max_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                        int32_t* __restrict__ arg, PoolGeometry g, int64_t total) {
  OODKIT_GRID_STRIDE(i, total) {
    const int ow = int(i % g.ow);
    const int64_t t = i / g.ow;
    const int oh = int(t % g.oh);
    const int64_t p = t / g.oh;
    const float* xp = x + p * (int64_t(g.h) * g.w);
    const int hs = oh * g.sh - g.ph, h0 = max(hs, 0), h1 = min(hs + g.kh, g.h);
    const int ws = ow * g.sw - g.pw, w0 = max(ws, 0), w1 = min(ws + g.kw, g.w);
    int best_i = -1;
    float best = 0.0f;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) {
        const float v = xp[ih * g.w + iw];
        // Same rule as the CPU reference: first maximum wins; NaN propagates.
        if (best_i < 0 || v > best || isnan(v)) {
          best = v;
          best_i = ih * g.w + iw;
        }
      }
    y[i] = best;
    arg[i] = best_i;
  }
}

// One thread per input element: sums dy over the windows whose arg-max it is, in (oh, ow)
// order (the CPU scatter's order).
__global__ void max_pool_backward_kernel(const float* __restrict__ dy, const int32_t* __restrict__ arg,
                                         float* __restrict__ dx, PoolGeometry g, int64_t total) {
  OODKIT_GRID_STRIDE(i, total) {
    const int iw = int(i % g.w);
    const int64_t t = i / g.w;
    const int ih = int(t % g.h);
    const int64_t p = t / g.h;
    int oh0, oh1, ow0, ow1;
    windows_containing(ih, g.ph, g.kh, g.sh, g.oh, oh0, oh1);
    windows_containing(iw, g.pw, g.kw, g.sw, g.ow, ow0, ow1);
    const int idx = ih * g.w + iw;
    const int64_t base = p * (int64_t(g.oh) * g.ow);
    float s = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = base + oh * g.ow + ow;
        if (arg[o] == idx) s += dy[o];
      }
    dx[i] = s;
  }
}

__global__ void avg_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y, PoolGeometry g,
                                        int64_t total, bool include_pad) {
  OODKIT_GRID_STRIDE(i, total) {
    const int ow = int(i % g.ow);
    const int64_t t = i / g.ow;
    const int oh = int(t % g.oh);
    const int64_t p = t / g.oh;
    const float* xp = x + p * (int64_t(g.h) * g.w);
    const int hs = oh * g.sh - g.ph, h0 = max(hs, 0), h1 = min(hs + g.kh, g.h);
    const int ws = ow * g.sw - g.pw, w0 = max(ws, 0), w1 = min(ws + g.kw, g.w);
    float s = 0.0f;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) s += xp[ih * g.w + iw];
    y[i] = s / float(avg_divisor(hs, ws, g, include_pad));
  }
}

__global__ void avg_pool_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, PoolGeometry g,
                                         int64_t total, bool include_pad) {
  OODKIT_GRID_STRIDE(i, total) {
    const int iw = int(i % g.w);
    const int64_t t = i / g.w;
    const int ih = int(t % g.h);
    const int64_t p = t / g.h;
    int oh0, oh1, ow0, ow1;
    windows_containing(ih, g.ph, g.kh, g.sh, g.oh, oh0, oh1);
    windows_containing(iw, g.pw, g.kw, g.sw, g.ow, ow0, ow1);
    const int64_t base = p * (int64_t(g.oh) * g.ow);
    float s = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) {
        const int div = avg_divisor(oh * g.sh - g.ph, ow * g.sw - g.pw, g, include_pad);
        s += dy[base + oh * g.ow + ow] / float(div);
      }
    dx[i] = s;
  }
}

// ---- global average pooling ------------------------------------------------------------

// Rows of hw <= 1024 contiguous floats: groups of G lanes (G a power of two <= 32) reduce one
// row each, so a warp reads 32 consecutive floats per step (coalesced) even for small rows
// (G = 16 for 4x4 maps: two rows per warp). The loop bound is uniform across each warp, so
// every lane reaches the full-mask shuffles.
template <int G>
__global__ void gap_forward_group_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t rows,
                                         int hw) {
  constexpr int kRowsPerWarp = 32 / G;
  const int lane_in_warp = threadIdx.x & 31;
  const int lane = lane_in_warp & (G - 1);
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  for (int64_t first = warp * kRowsPerWarp; first < rows; first += warps * kRowsPerWarp) {
    const int64_t r = first + lane_in_warp / G;
    float s = 0.0f;
    if (r < rows) {
      const float* xr = x + r * hw;
      for (int j = lane; j < hw; j += G) s += xr[j];
    }
#pragma unroll
    for (int off = G / 2; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (r < rows && lane == 0) y[r] = s / float(hw);
  }
}

// Large maps: one block per row, warp shuffles then one shared-memory step.
__global__ void gap_forward_block_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t rows,
                                         int64_t hw) {
  __shared__ float warp_sums[kThreads / 32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * hw;
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < hw; j += kThreads) s += xr[j];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) warp_sums[wid] = s;
    __syncthreads();
    if (wid == 0) {
      s = lane < kThreads / 32 ? warp_sums[lane] : 0.0f;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0) y[r] = s / float(hw);
    }
    __syncthreads();  // warp_sums is reused by the next row
  }
}

// dx = dy[row] / hw, four consecutive elements of one row per thread (hw % 4 == 0; dx is
// 16-byte aligned) with one 16-byte store.
__global__ void gap_backward_vec4_kernel(const float* __restrict__ dy, float4* __restrict__ dx, int64_t total4,
                                         int64_t hw4, float fhw) {
  OODKIT_GRID_STRIDE(i, total4) {
    const float v = dy[i / hw4] / fhw;
    dx[i] = make_float4(v, v, v, v);
  }
}

__global__ void gap_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, int64_t total,
                                    int64_t hw) {
  OODKIT_GRID_STRIDE(i, total) dx[i] = dy[i / hw] / float(hw);
}

template <int G>
void launch_gap_group(const float* x, float* y, int64_t rows, int64_t hw) {
  gap_forward_group_kernel<G><<<grid_for(rows * G, kThreads), kThreads, 0, stream()>>>(x, y, rows, int(hw));
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace

void max_pool2d_forward(const float* x, float* y, int32_t* argmax, const PoolGeometry& g) {
  const int64_t total = g.planes * g.oh * g.ow;
  if (total == 0) return;
  max_pool_forward_kernel<<<grid_for(total), kThreads, 0, stream()>>>(x, y, argmax, g, total);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx, const PoolGeometry& g) {
  const int64_t total = g.planes * g.h * g.w;
  if (total == 0) return;
  max_pool_backward_kernel<<<grid_for(total), kThreads, 0, stream()>>>(dy, argmax, dx, g, total);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void avg_pool2d_forward(const float* x, float* y, const PoolGeometry& g, bool count_include_pad) {
  const int64_t total = g.planes * g.oh * g.ow;
  if (total == 0) return;
  avg_pool_forward_kernel<<<grid_for(total), kThreads, 0, stream()>>>(x, y, g, total, count_include_pad);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void avg_pool2d_backward(const float* dy, float* dx, const PoolGeometry& g, bool count_include_pad) {
  const int64_t total = g.planes * g.h * g.w;
  if (total == 0) return;
  avg_pool_backward_kernel<<<grid_for(total), kThreads, 0, stream()>>>(dy, dx, g, total, count_include_pad);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void global_avg_pool_forward(const float* x, float* y, int64_t rows, int64_t hw) {
  if (rows == 0) return;
  if (hw > 1024) {
    const unsigned blocks = unsigned(std::min<int64_t>(rows, 65535LL * 8));
    gap_forward_block_kernel<<<blocks, kThreads, 0, stream()>>>(x, y, rows, hw);
    OODKIT_CUDA_CHECK_LAUNCH();
  } else if (hw > 16) {
    launch_gap_group<32>(x, y, rows, hw);
  } else if (hw > 8) {
    launch_gap_group<16>(x, y, rows, hw);
  } else if (hw > 4) {
    launch_gap_group<8>(x, y, rows, hw);
  } else if (hw > 2) {
    launch_gap_group<4>(x, y, rows, hw);
  } else if (hw > 1) {
    launch_gap_group<2>(x, y, rows, hw);
  } else {
    launch_gap_group<1>(x, y, rows, hw);
  }
}

void global_avg_pool_backward(const float* dy, float* dx, int64_t rows, int64_t hw) {
  const int64_t total = rows * hw;
  if (total == 0) return;
  if (hw % 4 == 0 && reinterpret_cast<uintptr_t>(dx) % 16 == 0) {
    const int64_t total4 = total / 4;
    gap_backward_vec4_kernel<<<grid_for(total4), kThreads, 0, stream()>>>(dy, reinterpret_cast<float4*>(dx),
                                                                          total4, hw / 4, float(hw));
  } else {
    gap_backward_kernel<<<grid_for(total), kThreads, 0, stream()>>>(dy, dx, total, hw);
  }
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
