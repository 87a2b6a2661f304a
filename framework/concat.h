// Row concatenation: the one copy of "stack these tensors along dim 0" (features, image and map
// batches, benchmark grids).
#pragma once
#include <vector>

#include "framework/tensor.h"

namespace oodkit {

// Rows of all parts along dim 0, in order: [sum n_i, ...] from parts [n_i, ...] of any rank with
// the same trailing shape, dtype and device (the result's). Parts may be empty (n_i = 0) or
// non-contiguous; no autograd. No parts, or a mismatched part, is an error naming both shapes.
Tensor concat_rows(const std::vector<Tensor>& parts);

}  // namespace oodkit
