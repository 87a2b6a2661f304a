// Matrix products: matmul (2-D, optional transposes) and the fully connected layer.
// Row-major float32 on CPU/CUDA, float64 on the CPU. CPU uses Eigen GEMM; CUDA uses
// cublasGemmEx with the compute type of oodkit::math_mode() (strict FP32 or TF32).
#pragma once
#include "framework/tensor.h"

namespace oodkit::ops {

// C = op(a) op(b) with op(a) [M, K], op(b) [K, N] -> C [M, N]:
//   a is [M, K], or [K, M] when trans_a (op(a) = a^T); b is [K, N], or [N, K] when trans_b.
// Backward: grad_a = G op(b)^T (transposed back to a's layout when trans_a), grad_b = op(a)^T G
// (likewise when trans_b), each only where that input requires grad.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// Fully connected layer: x [N, in], weight [out, in] (PyTorch layout), bias [out] or undefined
// -> y [N, out] = x weight^T + bias (bias added to every row).
// Backward: grad_x = G weight [N, in], grad_weight = G^T x [out, in], grad_bias = column sums of
// G [out] (each only where required; none for an undefined bias).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace oodkit::ops
