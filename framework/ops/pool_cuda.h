// CUDA launchers behind framework/ops/pool.h (float32, current device, oodkit stream).
// Tensors are contiguous NCHW; `planes` = N*C; input planes are h x w, output planes oh x ow.
#pragma once
#include <cstdint>

namespace oodkit::cuda {

// Window geometry shared by the pooling launchers (plain values, checked by the caller).
struct PoolGeometry {
  int64_t planes;
  int h, w, oh, ow;
  int kh, kw, sh, sw, ph, pw;
};

// y = max over each window; argmax[i] = index (ih*w + iw) within the input plane of the
// element chosen (first max in row-major window order; a NaN wins, the last one on several).
void max_pool2d_forward(const float* x, float* y, int32_t* argmax, const PoolGeometry& g);
// dx[p, i] = sum of dy[p, o] over outputs o whose argmax is i (deterministic gather, no atomics).
void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx, const PoolGeometry& g);

// y = window sum / divisor (kh*kw when count_include_pad, else the non-padding count).
void avg_pool2d_forward(const float* x, float* y, const PoolGeometry& g, bool count_include_pad);
// dx[p, i] = sum over windows containing i of dy / divisor (deterministic gather).
void avg_pool2d_backward(const float* dy, float* dx, const PoolGeometry& g, bool count_include_pad);

// y[r] = mean(x[r*hw .. (r+1)*hw)) for r < rows.
void global_avg_pool_forward(const float* x, float* y, int64_t rows, int64_t hw);
// dx[r*hw + j] = dy[r] / hw.
void global_avg_pool_backward(const float* dy, float* dx, int64_t rows, int64_t hw);

}  // namespace oodkit::cuda
