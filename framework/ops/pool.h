// 2-d pooling over NCHW tensors, PyTorch semantics (floor output size, no ceil mode).
#pragma once
#include "framework/tensor.h"

namespace oodkit::ops {

// Window kernel_h x kernel_w moved by stride_h / stride_w over the input padded by pad_h rows
// top and bottom and pad_w columns left and right. Valid options: kernel > 0, stride > 0,
// 0 <= pad <= kernel / 2 (as PyTorch), and a padded input at least as large as the kernel.
// Output size: OH = (H + 2*pad_h - kernel_h) / stride_h + 1 (floor), likewise OW.
struct Pool2dOptions {
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  static Pool2dOptions square(int kernel, int stride, int pad = 0) {
    return {kernel, kernel, stride, stride, pad, pad};
  }
};

// x [N, C, H, W] -> [N, C, OH, OW]: maximum over each window; padding counts as -inf.
// Backward returns {dx}: each output's gradient goes to its arg-max input element (the first
// maximum in row-major window order on ties; a NaN wins over numbers, the last NaN on several),
// summed where windows overlap. Same rule on CPU and CUDA.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o);

// x [N, C, H, W] -> [N, C, OH, OW]: mean over each window. The divisor is kernel_h*kernel_w when
// count_include_pad (padding counts as zeros), else the number of non-padding elements.
// Backward returns {dx}: each output's gradient / divisor spread over its window's inputs.
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o, bool count_include_pad = true);

// x [N, C, H, W] -> [N, C]: mean over H*W. Backward returns {dx = broadcast(dy) / (H*W)}.
Tensor global_avg_pool(const Tensor& x);

}  // namespace oodkit::ops
