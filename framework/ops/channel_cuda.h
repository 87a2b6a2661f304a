// CUDA launchers behind framework/ops/channel.h (float32, current device, oodkit stream).
// Tensors are contiguous NCHW; every output element is written exactly once (no atomics).
#pragma once
#include <cstdint>

namespace oodkit::cuda {

// dst[r * dst_stride + j] = src[r * src_stride + j] for r < rows, j < row_len
// (concatenation: one call per input writes its channel block of every sample).
void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
               int64_t row_len);

// y [n, cy, hy, wy] (shape [N, Cy, Hy, Wy]) from x [N, Cx, Hx, Wx]:
//   y[n, c, h, w] = x[n, c - offset, h*stride, w*stride] if 0 <= c - offset < Cx, else 0.
// Callers guarantee (Hy-1)*stride < Hx and (Wy-1)*stride < Wx. offset may be negative
// (channel slicing). Forward of subsample_pad_channels, forward and backward of slice_channels.
void channel_gather(const float* x, float* y, int64_t N, int64_t Cx, int64_t Hx, int64_t Wx, int64_t Cy,
                    int64_t Hy, int64_t Wy, int stride, int64_t offset);

// gx [N, Cx, Hx, Wx] from g [N, Cg, Hg, Wg]:
//   gx[n, c, h, w] = g[n, c + offset, h/stride, w/stride] if h % stride == 0 and w % stride == 0, else 0.
// Callers guarantee 0 <= c + offset < Cg for all c < Cx and Hg = ceil(Hx/stride), Wg likewise.
// Backward of subsample_pad_channels.
void channel_scatter_subsample(const float* g, float* gx, int64_t N, int64_t Cx, int64_t Hx, int64_t Wx,
                               int64_t Cg, int64_t Hg, int64_t Wg, int stride, int64_t offset);

// y [n, k] = (labels[n] == k) ? 1 : 0 for n < N, k < K (labels already range-checked).
void one_hot(const int64_t* labels, float* y, int64_t N, int64_t K);

}  // namespace oodkit::cuda
