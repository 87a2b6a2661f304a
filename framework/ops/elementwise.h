// Elementwise arithmetic and full reductions; float32 on CPU/CUDA, float64 on the CPU. Inputs of
// a binary op share dtype and device; b has a's shape or broadcasts to it (same rank, each size
// equal or 1: a row [1, D] or a column [N, 1] against [N, D]), and then b's gradient is summed
// over the broadcast dimensions (ops::expand, reduce.h). Reductions along a dim: reduce.h.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ops {

Tensor add(const Tensor& a, const Tensor& b);  // a + b
Tensor sub(const Tensor& a, const Tensor& b);  // a - b
Tensor mul(const Tensor& a, const Tensor& b);  // a * b (Hadamard)
Tensor scale(const Tensor& x, double s);       // s * x
Tensor add_scalar(const Tensor& x, double s);  // x + s
Tensor sum(const Tensor& x);                   // 0-d tensor: sum of all elements
Tensor mean(const Tensor& x);                  // 0-d tensor: sum / numel

}  // namespace oodkit::ops
