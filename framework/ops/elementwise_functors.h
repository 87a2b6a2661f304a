// Per-element formulas of framework/ops/elementwise.h, shared by the CPU loop and the CUDA kernel
// (framework/ops/map.h). T = float or double (float only on CUDA).
#pragma once
#include "framework/host_device.h"

namespace oodkit::ops {

// y = alpha*a + beta*b
template <class T>
struct Axpby {
  T alpha, beta;
  OODKIT_HD T operator()(T a, T b) const { return alpha * a + beta * b; }
};

// y = a * b
template <class T>
struct Multiply {
  OODKIT_HD T operator()(T a, T b) const { return a * b; }
};

// y = alpha*x + beta
template <class T>
struct Affine {
  T alpha, beta;
  OODKIT_HD T operator()(T x) const { return alpha * x + beta; }
};

}  // namespace oodkit::ops
