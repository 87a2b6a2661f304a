// 2-D convolution and transposed convolution (NCHW, groups = 1), PyTorch semantics.
// float32 on CPU/CUDA, float64 on the CPU. CPU: im2col/col2im per image + Eigen GEMM,
// parallel over the batch; CUDA: cuDNN (math type from oodkit::math_mode()).
// Both ops are differentiable in x, weight and bias (each gradient only when required).
#pragma once
#include "framework/tensor.h"

namespace oodkit::ops {

// Per-axis (h, w) convolution options.
struct Conv2dOptions {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;  // zero padding on both sides
  int dilation_h = 1, dilation_w = 1;
  static Conv2dOptions square(int stride, int pad, int dilation = 1);
};

// Cross-correlation (like torch.nn.functional.conv2d with groups = 1).
//  x      [N, Cin, H, W]
//  weight [Cout, Cin, kh, kw]
//  bias   [Cout] or an undefined Tensor() for none
//  -> y   [N, Cout, Ho, Wo], Ho = (H + 2*pad_h - dilation_h*(kh-1) - 1) / stride_h + 1 (floor),
//         Wo likewise; Ho and Wo must be positive.
// Backward returns {dL/dx [N,Cin,H,W], dL/dweight [Cout,Cin,kh,kw], dL/dbias [Cout]}.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o);

// Per-axis transposed-convolution options. output_pad_* adds rows/columns at the bottom/right
// of the output and must be smaller than the stride or the dilation of its axis.
struct ConvTranspose2dOptions {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int output_pad_h = 0, output_pad_w = 0;
  int dilation_h = 1, dilation_w = 1;
  static ConvTranspose2dOptions square(int stride, int pad, int output_pad = 0, int dilation = 1);
};

// Transposed convolution (like torch.nn.functional.conv_transpose2d with groups = 1): the
// adjoint of conv2d with the same options, i.e. conv2d's gradient with respect to its input.
//  x      [N, Cin, H, W]
//  weight [Cin, Cout, kh, kw]   (PyTorch's layout: input channels first)
//  bias   [Cout] or an undefined Tensor()
//  -> y   [N, Cout, Ho, Wo], Ho = (H-1)*stride_h - 2*pad_h + dilation_h*(kh-1) + output_pad_h + 1,
//         Wo likewise; Ho and Wo must be positive.
// Backward returns {dL/dx [N,Cin,H,W], dL/dweight [Cin,Cout,kh,kw], dL/dbias [Cout]}.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const ConvTranspose2dOptions& o);

}  // namespace oodkit::ops
