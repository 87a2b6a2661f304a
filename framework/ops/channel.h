// Channel-dimension tensor ops (NCHW): concatenation, slicing, the CIFAR-ResNet "option A"
// shortcut, and one-hot encoding. Float ops take float32 on CPU/CUDA and float64 on the CPU;
// all inputs of one call share dtype and device.
#pragma once
#include <vector>

#include "framework/tensor.h"

namespace oodkit::ops {

// Concatenates xs[i] of shape [N, Ci, H, W] (same N, H, W, dtype, device; at least one
// tensor) along dim 1 -> [N, sum Ci, H, W]. Also accepts 2-d [N, Ci] -> [N, sum Ci] (all
// inputs must have the same ndim). Backward: input i gets channels [off_i, off_i + Ci) of
// the gradient (undefined for inputs that need no grad).
Tensor concat_channels(const std::vector<Tensor>& xs);

// "Option A" shortcut of CIFAR ResNets (He et al. 2016): x [N, C, H, W] ->
// y = x[:, :, ::stride, ::stride] with zero channels padded around it: pad_before =
// (out_channels - C) / 2 channels in front, out_channels - C - pad_before behind.
// Output [N, out_channels, ceil(H/stride), ceil(W/stride)]. Needs stride >= 1 and
// out_channels >= C. (PyTorch: F.pad(x[:, :, ::2, ::2], (0,0,0,0,C//2,C//2)) for
// out_channels = 2C.) Backward: dx[n, c, h, w] = g[n, c + pad_before, h/stride, w/stride]
// where h and w are multiples of stride, else 0.
Tensor subsample_pad_channels(const Tensor& x, int stride, int64_t out_channels);

// Copies channels [start, start + count) of x [N, C, H, W] (or [N, C]) -> [N, count, H, W]
// (a new tensor, not a view). Needs 0 <= start, 0 <= count, start + count <= C.
// Backward: dx = g placed at channels [start, start + count), zeros elsewhere.
Tensor slice_channels(const Tensor& x, int64_t start, int64_t count);

// One-hot float32 [N, K] (on labels' device) from int64 labels [N]: y[n, labels[n]] = 1,
// 0 elsewhere. Labels outside [0, num_classes) throw oodkit::Error naming them (CUDA labels
// are copied to the host for this check). Not differentiable.
Tensor one_hot(const Tensor& labels, int64_t num_classes);

}  // namespace oodkit::ops
