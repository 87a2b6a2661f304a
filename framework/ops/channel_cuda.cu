#include <algorithm>
#include <climits>

#include "framework/cuda/context.h"
#include "framework/ops/channel_cuda.h"

namespace oodkit::cuda {

namespace {
constexpr int kThreads = 256;

// Kernels run one thread per output element over a flat grid-stride loop (consecutive
// threads write consecutive elements: coalesced over the innermost dims). Index arithmetic
// uses I = int32_t when the element count fits, int64_t otherwise.
#define CHANNEL_LOOP(I, i, n) \
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < (n); i += I(gridDim.x) * I(blockDim.x))

template <class I>
__global__ void copy_rows_kernel(const float* __restrict__ src, I src_stride, float* __restrict__ dst,
                                 I dst_stride, I total, I row_len) {
  CHANNEL_LOOP(I, i, total) {
    const I r = i / row_len;
    const I j = i - r * row_len;
    dst[r * dst_stride + j] = src[r * src_stride + j];
  }
}

template <class I>
__global__ void channel_gather_kernel(const float* __restrict__ x, float* __restrict__ y, I total, I Cx, I Hx,
                                      I Wx, I Cy, I Hy, I Wy, I stride, I offset) {
  const I hwy = Hy * Wy;
  CHANNEL_LOOP(I, i, total) {
    const I plane = i / hwy;
    const I r = i - plane * hwy;
    const I h = r / Wy;
    const I w = r - h * Wy;
    const I n = plane / Cy;
    const I c = plane - n * Cy;
    const I cs = c - offset;
    float v = 0.0f;
    if (cs >= 0 && cs < Cx) v = x[((n * Cx + cs) * Hx + h * stride) * Wx + w * stride];
    y[i] = v;
  }
}

template <class I>
__global__ void channel_scatter_subsample_kernel(const float* __restrict__ g, float* __restrict__ gx, I total,
                                                 I Cx, I Hx, I Wx, I Cg, I Hg, I Wg, I stride, I offset) {
  const I hwx = Hx * Wx;
  CHANNEL_LOOP(I, i, total) {
    const I plane = i / hwx;
    const I r = i - plane * hwx;
    const I h = r / Wx;
    const I w = r - h * Wx;
    const I n = plane / Cx;
    const I c = plane - n * Cx;
    const I hg = h / stride, wg = w / stride;
    float v = 0.0f;
    if (hg * stride == h && wg * stride == w) v = g[((n * Cg + c + offset) * Hg + hg) * Wg + wg];
    gx[i] = v;
  }
}

template <class I>
__global__ void one_hot_kernel(const int64_t* __restrict__ labels, float* __restrict__ y, I total, I K) {
  CHANNEL_LOOP(I, i, total) {
    const I n = i / K;
    const I k = i - n * K;
    y[i] = labels[n] == int64_t(k) ? 1.0f : 0.0f;
  }
}

#undef CHANNEL_LOOP

// True when every index formed by a kernel over `total` elements whose inputs span at most
// `max_input` elements (plus one stride step of slack) fits in int32.
bool fits_int32(int64_t total, int64_t max_input) {
  return total < INT_MAX / 2 && max_input < INT_MAX / 2;
}
}  // namespace

void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
               int64_t row_len) {
  const int64_t total = rows * row_len;
  if (total == 0) return;
  const unsigned grid = grid_for(total, kThreads);
  if (fits_int32(total, rows * std::max(src_stride, dst_stride))) {
    copy_rows_kernel<int32_t><<<grid, kThreads, 0, stream()>>>(src, int32_t(src_stride), dst, int32_t(dst_stride),
                                                                int32_t(total), int32_t(row_len));
  } else {
    copy_rows_kernel<int64_t><<<grid, kThreads, 0, stream()>>>(src, src_stride, dst, dst_stride, total, row_len);
  }
  OODKIT_CUDA_CHECK_LAUNCH();
}

void channel_gather(const float* x, float* y, int64_t N, int64_t Cx, int64_t Hx, int64_t Wx, int64_t Cy,
                    int64_t Hy, int64_t Wy, int stride, int64_t offset) {
  const int64_t total = N * Cy * Hy * Wy;
  if (total == 0) return;
  const unsigned grid = grid_for(total, kThreads);
  const int64_t in_total = N * Cx * Hx * Wx;
  const int64_t abs_offset = offset < 0 ? -offset : offset;
  if (fits_int32(total, in_total) && abs_offset < INT_MAX / 2 && Cy + abs_offset < INT_MAX / 2) {
    channel_gather_kernel<int32_t><<<grid, kThreads, 0, stream()>>>(
        x, y, int32_t(total), int32_t(Cx), int32_t(Hx), int32_t(Wx), int32_t(Cy), int32_t(Hy), int32_t(Wy),
        int32_t(stride), int32_t(offset));
  } else {
    channel_gather_kernel<int64_t><<<grid, kThreads, 0, stream()>>>(x, y, total, Cx, Hx, Wx, Cy, Hy, Wy,
                                                                     int64_t(stride), offset);
  }
  OODKIT_CUDA_CHECK_LAUNCH();
}

void channel_scatter_subsample(const float* g, float* gx, int64_t N, int64_t Cx, int64_t Hx, int64_t Wx,
                               int64_t Cg, int64_t Hg, int64_t Wg, int stride, int64_t offset) {
  const int64_t total = N * Cx * Hx * Wx;
  if (total == 0) return;
  const unsigned grid = grid_for(total, kThreads);
  const int64_t g_total = N * Cg * Hg * Wg;
  if (fits_int32(total, g_total) && offset >= 0 && offset < INT_MAX / 2) {
    channel_scatter_subsample_kernel<int32_t><<<grid, kThreads, 0, stream()>>>(
        g, gx, int32_t(total), int32_t(Cx), int32_t(Hx), int32_t(Wx), int32_t(Cg), int32_t(Hg), int32_t(Wg),
        int32_t(stride), int32_t(offset));
  } else {
    channel_scatter_subsample_kernel<int64_t><<<grid, kThreads, 0, stream()>>>(g, gx, total, Cx, Hx, Wx, Cg, Hg,
                                                                               Wg, int64_t(stride), offset);
  }
  OODKIT_CUDA_CHECK_LAUNCH();
}

void one_hot(const int64_t* labels, float* y, int64_t N, int64_t K) {
  const int64_t total = N * K;
  if (total == 0) return;
  const unsigned grid = grid_for(total, kThreads);
  if (fits_int32(total, N)) {
    one_hot_kernel<int32_t><<<grid, kThreads, 0, stream()>>>(labels, y, int32_t(total), int32_t(K));
  } else {
    one_hot_kernel<int64_t><<<grid, kThreads, 0, stream()>>>(labels, y, total, K);
  }
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
