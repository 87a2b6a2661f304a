// Reductions along one dimension, their adjoint (expand: repeat a size-1 dimension) and a fused
// all-finite check over a list of tensors. float32 on CPU/CUDA, float64 on the CPU; any rank >= 1.
//
// A dimension `dim` may be negative (counting from the end, -1 = last). Around it x is viewed as
// [outer, r, inner] (outer = product of the sizes before dim, inner = product after); the result
// has shape x.shape() without dim, or with dim kept as size 1 when keepdim is true.
//
// Sums are accumulated in double in a fixed order (r ascending) on both devices, then rounded
// to the tensor's dtype once: the CUDA kernels use no atomics, and their sums equal the CPU's.
// NaN: max propagates it and argmax returns the index of the first NaN (NaN counts as larger
// than every number, as in PyTorch); otherwise both pick the first maximal index on ties.
// Empty dim (r == 0): sum gives zeros; max and argmax throw (a maximum of nothing is undefined).
#pragma once
#include <vector>

#include "framework/tensor.h"

namespace oodkit::ops {

// y = sum_j x[.., j, ..] along dim. Backward: dx[o, j, i] = g[o, i] (g repeated along dim).
Tensor sum(const Tensor& x, int dim, bool keepdim = false);

// y = max_j x[.., j, ..] along dim. Backward: g goes to the index argmax(x, dim) picks, 0 elsewhere.
Tensor max(const Tensor& x, int dim, bool keepdim = false);

// int64 index in [0, r) of the maximum along dim (first on ties, first NaN if any); no gradient.
Tensor argmax(const Tensor& x, int dim, bool keepdim = false);

// x repeated along each dimension where it has size 1 and `shape` does not (same rank; every
// other size must match). The row/column broadcast of add/sub/mul (elementwise.h).
// Backward: sum of g over each repeated dimension (keepdim).
Tensor expand(const Tensor& x, const Shape& shape);

// 0-d float32 flag on the tensors' device: 1 when every element of every defined tensor in
// `tensors` is finite, 0 when any is NaN or +-Inf. One pass, no host synchronisation (on CUDA one
// kernel per 64 tensors; the flag is read back only by the caller's item()). Undefined tensors
// (a parameter without a gradient) are skipped; with none defined the flag is 1 on the CPU.
// The defined tensors must be float32/float64 on one device. No gradient.
Tensor all_finite(const std::vector<Tensor>& tensors);

}  // namespace oodkit::ops
