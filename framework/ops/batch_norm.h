// Batch normalisation over the channel dimension (dim 1), PyTorch semantics.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ops {

// x: [N, C, H, W] or [N, C], float32 (or float64 on the CPU).
// weight, bias: [C], same dtype/device as x; either may be undefined (then 1 and 0).
// running_mean, running_var: [C], same dtype/device as x, defined, not requiring grad.
//
// training = true: normalises with the batch statistics of each channel over its
//   M = N*H*W values (mean, biased variance) and updates the running statistics IN PLACE:
//     running_mean = (1 - momentum) * running_mean + momentum * batch_mean
//     running_var  = (1 - momentum) * running_var  + momentum * batch_var * M / (M - 1)
//   (unbiased variance for the running estimate). Needs M > 1.
// training = false: normalises with running_mean / running_var (not modified).
// y = (x - mean) / sqrt(var + eps) * weight + bias, same shape as x.
//
// Backward (both modes) returns {dx, dweight, dbias} (undefined for undefined weight/bias).
// In eval mode the op is an affine map of x: dx = dy * weight / sqrt(running_var + eps).
// The running statistics receive no gradient.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace oodkit::ops
