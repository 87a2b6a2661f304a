// Elementwise arithmetic and full reductions. Inputs of a binary op must have the same
// shape, dtype and device (no broadcasting); float32 on CPU/CUDA, float64 on the CPU.
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
