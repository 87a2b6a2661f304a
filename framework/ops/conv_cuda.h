// CUDA launchers behind framework/ops/conv.h (float32, current device, oodkit stream).
#pragma once
#include <cstdint>

namespace oodkit::cuda {

// Geometry of one cross-correlation "input [n, c, h, w] * filter [k, c, kh, kw] -> output
// [n, k, ho, wo]" (NCHW, contiguous). The CPU kernels in conv.cpp use it too. ho/wo are
// given explicitly: for a transposed convolution with output_pad >= stride (allowed when
// output_pad < dilation) they may be smaller than the natural output size
// (h + 2*pad_h - dil_h*(kh-1) - 1) / stride_h + 1; output positions beyond ho/wo are dropped.
struct ConvGeometry {
  int n = 0, c = 0, h = 0, w = 0;  // input
  int k = 0, kh = 0, kw = 0;       // filter [k, c, kh, kw]
  int ho = 0, wo = 0;              // output
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
};

// y = conv(x, w) (+ bias[k] per output channel when bias is not null); y [n, k, ho, wo].
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y);
// dx = conv's gradient w.r.t. its input for output gradient dy (overwrites dx [n, c, h, w]).
// This is also the forward pass of a transposed convolution.
void conv2d_backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx);
// dw = conv's gradient w.r.t. the filter (overwrites dw [k, c, kh, kw]).
void conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw);
// y[i, ch, :] += bias[ch] for y [n, channels, hw].
void add_channel_bias(float* y, const float* bias, int n, int channels, int64_t hw);
// db[ch] = sum over n and hw of dy[n, ch, hw] (overwrites db [channels]); double accumulation.
void channel_bias_grad(const float* dy, int n, int channels, int64_t hw, float* db);

}  // namespace oodkit::cuda
