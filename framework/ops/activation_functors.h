// Per-element formulas of framework/ops/activation.h, shared by the CPU loop and the CUDA kernel
// (framework/ops/map.h). T = float or double (float only on CUDA). Forward functors map x to y;
// backward functors map (saved, g) to dx, where `saved` is the op's output y or input x.
#pragma once
#include <cmath>
#include <cstdint>

#include "framework/host_device.h"
#include "framework/random.h"

namespace oodkit::ops {

namespace detail {
// tanh, exp and a float product as each device spells them: the C++ standard library on the
// CPU; on CUDA tanhf/expf, and __fmul_rn (a product the compiler may not fuse into an FMA).
OODKIT_HD inline float tanh_(float v) {
#if defined(__CUDA_ARCH__)
  return tanhf(v);
#else
  return std::tanh(v);
#endif
}
OODKIT_HD inline float exp_(float v) {
#if defined(__CUDA_ARCH__)
  return expf(v);
#else
  return std::exp(v);
#endif
}
OODKIT_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
// double: CPU only.
inline double tanh_(double v) { return std::tanh(v); }
inline double exp_(double v) { return std::exp(v); }
inline double mul_rn(double a, double b) { return a * b; }
}  // namespace detail

// y = max(x, 0) (NaN propagates)
template <class T>
struct Relu {
  OODKIT_HD T operator()(T x) const { return x < T(0) ? T(0) : x; }
};
// dx = y > 0 ? g : 0
template <class T>
struct ReluBackward {
  OODKIT_HD T operator()(T y, T g) const { return y > T(0) ? g : T(0); }
};

// y = tanh(x)
template <class T>
struct Tanh {
  OODKIT_HD T operator()(T x) const { return detail::tanh_(x); }
};
// dx = g * (1 - y^2)
template <class T>
struct TanhBackward {
  OODKIT_HD T operator()(T y, T g) const { return g * (T(1) - y * y); }
};

// y = 1 / (1 + exp(-x)); exp(-x) overflows to +inf for very negative x, giving exactly 0.
template <class T>
struct Sigmoid {
  OODKIT_HD T operator()(T x) const { return T(1) / (T(1) + detail::exp_(-x)); }
};
// dx = g * y * (1 - y)
template <class T>
struct SigmoidBackward {
  OODKIT_HD T operator()(T y, T g) const { return g * y * (T(1) - y); }
};

// y = min(max(x, lo), hi); lo/hi may be -inf/+inf.
template <class T>
struct Clamp {
  T lo, hi;
  OODKIT_HD T operator()(T x) const { return x < lo ? lo : (x > hi ? hi : x); }
};
// dx = (lo < x < hi) ? g : 0
template <class T>
struct ClampBackward {
  T lo, hi;
  OODKIT_HD T operator()(T x, T g) const { return (x > lo && x < hi) ? g : T(0); }
};

// Dropout forward, and its backward applied to the gradient with the same seed:
// y[i] = keep_i ? x[i] * scale : 0, keep_i = double(counter_uniform(seed, i)) >= p. A for_n
// functor (the mask depends on the flat index i); x and y on the device it runs on.
template <class T>
struct DropoutApply {
  const T* x;
  T* y;
  uint64_t seed;
  double p;
  T scale;
  OODKIT_HD void operator()(int64_t i) const {
    const bool keep = double(counter_uniform(seed, uint64_t(i))) >= p;
    y[i] = keep ? detail::mul_rn(x[i], scale) : T(0);
  }
};

}  // namespace oodkit::ops
