// Per-element update rules of the optimisers, shared by the CPU loop (framework/optim.cpp,
// T = float or double) and the CUDA kernel (framework/optim_cuda.cu, T = float) through the
// for_n functors SGDStep and AdamStep (framework/ops/map.h), so that both devices evaluate the
// same expressions. They follow torch.optim's single-tensor
// implementations (torch 2.x, maximize=False, amsgrad=False) term by term.
#pragma once
#include <cmath>
#include <cstdint>

#include "framework/host_device.h"

#if defined(__CUDACC__)
#define OODKIT_OPTIM_HD __host__ __device__ __forceinline__
#else
#define OODKIT_OPTIM_HD inline
#endif

namespace oodkit::optim::detail {

// Hyperparameters of one SGD step, converted to the element type.
template <class T>
struct SGDParams {
  T lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first;  // the momentum buffer does not exist yet: it becomes the gradient itself
};

// torch.optim.SGD for element i:
//   g = grad + wd * p
//   momentum != 0: buf = first ? g : momentum * buf + (1 - dampening) * g
//                  g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
// `buf` is ignored (may be null) when momentum == 0.
template <class T>
OODKIT_OPTIM_HD void sgd_update(T* p, const T* grad, T* buf, int64_t i, const SGDParams<T>& h) {
  T g = grad[i];
  if (h.weight_decay != T(0)) g = g + h.weight_decay * p[i];
  if (h.momentum != T(0)) {
    T b = h.first ? g : h.momentum * buf[i] + (T(1) - h.dampening) * g;
    buf[i] = b;
    g = h.nesterov ? g + h.momentum * b : b;
  }
  p[i] = p[i] - h.lr * g;
}

// Hyperparameters of one Adam step; the bias corrections are computed on the host in
// double from the parameter's step count t (after incrementing):
//   step_size = lr / (1 - beta1^t),  bias_correction2_sqrt = sqrt(1 - beta2^t).
template <class T>
struct AdamParams {
  T lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW
  T step_size, bias_correction2_sqrt;
};

// torch.optim.Adam / AdamW for element i:
//   AdamW: p = p * (1 - lr * wd)        Adam: g = grad + wd * p
//   m = lerp(m, g, 1 - beta1)           (torch's lerp: m + w * (g - m) for w < 0.5)
//   v = beta2 * v + (1 - beta2) * g * g
//   p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
template <class T>
OODKIT_OPTIM_HD void adam_update(T* p, const T* grad, T* m, T* v, int64_t i, const AdamParams<T>& h) {
  using std::sqrt;
  T g = grad[i];
  T pi = p[i];
  if (h.weight_decay != T(0)) {
    if (h.decoupled) pi = pi * (T(1) - h.lr * h.weight_decay);
    else g = g + h.weight_decay * pi;
  }
  const T w = T(1) - h.beta1;
  const T mi = w < T(0.5) ? m[i] + w * (g - m[i]) : g - (g - m[i]) * (T(1) - w);
  const T vi = h.beta2 * v[i] + (T(1) - h.beta2) * (g * g);
  m[i] = mi;
  v[i] = vi;
  const T denom = sqrt(vi) / h.bias_correction2_sqrt + h.eps;
  p[i] = pi - h.step_size * (mi / denom);
}

// for_n functors: element i of one parameter's update; the pointers are on the device it runs on.
template <class T>
struct SGDStep {
  T* p;
  const T* grad;
  T* buf;  // null when momentum == 0
  SGDParams<T> h;
  OODKIT_HD void operator()(int64_t i) const { sgd_update(p, grad, buf, i, h); }
};
template <class T>
struct AdamStep {
  T* p;
  const T* grad;
  T* m;  // exp_avg
  T* v;  // exp_avg_sq
  AdamParams<T> h;
  OODKIT_HD void operator()(int64_t i) const { adam_update(p, grad, m, v, i, h); }
};

}  // namespace oodkit::optim::detail
