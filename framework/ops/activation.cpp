#include "framework/ops/activation.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/activation_cuda.h"

namespace oodkit::ops {

namespace {

// Elementwise CPU loops go parallel above this many elements.
constexpr int64_t kParallelMin = 1 << 15;

// y[i] = f(x[i]) on the CPU for float or double x.
template <class F>
Tensor cpu_map(const Tensor& x, const char* op, F f) {
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
  });
  return y;
}

// gx[i] = f(s[i], g[i]) on the CPU, where s is the saved input or output.
template <class F>
Tensor cpu_map2(const Tensor& s, const Tensor& g, const char* op, F f) {
  Tensor gx = Tensor::empty_like(g);
  const int64_t n = g.numel();
  dispatch_float(g.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* ps = s.data<T>();
    const T* pg = g.data<T>();
    T* pgx = gx.data<T>();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) pgx[i] = f(ps[i], pg[i]);
  });
  return gx;
}

// ---- kernels: forward from x, backward from (saved, grad_output) ----

Tensor relu_fwd(const Tensor& x) {
  if (x.is_cuda()) {
    Tensor y = Tensor::empty_like(x);
    OODKIT_CUDA_CALL(cuda::relu_forward(x.data<float>(), y.data<float>(), x.numel()));
    return y;
  }
  return cpu_map(x, "relu", [](auto v) { return v < 0 ? decltype(v)(0) : v; });
}
Tensor relu_bwd(const Tensor& y, const Tensor& g) {
  if (g.is_cuda()) {
    Tensor gx = Tensor::empty_like(g);
    OODKIT_CUDA_CALL(cuda::relu_backward(y.data<float>(), g.data<float>(), gx.data<float>(), g.numel()));
    return gx;
  }
  return cpu_map2(y, g, "relu backward", [](auto yv, auto gv) { return yv > 0 ? gv : decltype(gv)(0); });
}

Tensor tanh_fwd(const Tensor& x) {
  if (x.is_cuda()) {
    Tensor y = Tensor::empty_like(x);
    OODKIT_CUDA_CALL(cuda::tanh_forward(x.data<float>(), y.data<float>(), x.numel()));
    return y;
  }
  return cpu_map(x, "tanh", [](auto v) { return std::tanh(v); });
}
Tensor tanh_bwd(const Tensor& y, const Tensor& g) {
  if (g.is_cuda()) {
    Tensor gx = Tensor::empty_like(g);
    OODKIT_CUDA_CALL(cuda::tanh_backward(y.data<float>(), g.data<float>(), gx.data<float>(), g.numel()));
    return gx;
  }
  return cpu_map2(y, g, "tanh backward", [](auto yv, auto gv) { return gv * (decltype(yv)(1) - yv * yv); });
}

Tensor sigmoid_fwd(const Tensor& x) {
  if (x.is_cuda()) {
    Tensor y = Tensor::empty_like(x);
    OODKIT_CUDA_CALL(cuda::sigmoid_forward(x.data<float>(), y.data<float>(), x.numel()));
    return y;
  }
  // exp(-x) overflows to +inf for very negative x, giving exactly 0.
  return cpu_map(x, "sigmoid", [](auto v) {
    using T = decltype(v);
    return T(1) / (T(1) + std::exp(-v));
  });
}
Tensor sigmoid_bwd(const Tensor& y, const Tensor& g) {
  if (g.is_cuda()) {
    Tensor gx = Tensor::empty_like(g);
    OODKIT_CUDA_CALL(cuda::sigmoid_backward(y.data<float>(), g.data<float>(), gx.data<float>(), g.numel()));
    return gx;
  }
  return cpu_map2(y, g, "sigmoid backward",
                  [](auto yv, auto gv) { return gv * yv * (decltype(yv)(1) - yv); });
}

Tensor clamp_fwd(const Tensor& x, double lo, double hi) {
  if (x.is_cuda()) {
    Tensor y = Tensor::empty_like(x);
    OODKIT_CUDA_CALL(cuda::clamp_forward(x.data<float>(), y.data<float>(), float(lo), float(hi), x.numel()));
    return y;
  }
  Tensor y;
  dispatch_float(x.dtype(), "clamp", [&](auto tag) {
    using T = decltype(tag);
    const T l = T(lo), h = T(hi);
    y = cpu_map(x, "clamp", [l, h](T v) { return v < l ? l : (v > h ? h : v); });
  });
  return y;
}
Tensor clamp_bwd(const Tensor& x, const Tensor& g, double lo, double hi) {
  if (g.is_cuda()) {
    Tensor gx = Tensor::empty_like(g);
    OODKIT_CUDA_CALL(cuda::clamp_backward(x.data<float>(), g.data<float>(), gx.data<float>(), float(lo),
                                          float(hi), g.numel()));
    return gx;
  }
  Tensor gx;
  dispatch_float(g.dtype(), "clamp backward", [&](auto tag) {
    using T = decltype(tag);
    const T l = T(lo), h = T(hi);
    gx = cpu_map2(x, g, "clamp backward", [l, h](T xv, T gv) { return (xv > l && xv < h) ? gv : T(0); });
  });
  return gx;
}

// y[i] = keep_i ? x[i] * scale : 0 with keep_i = counter_uniform(seed, i) >= p. Forward
// and backward of dropout are this same map (backward applies it to the gradient).
Tensor dropout_apply(const Tensor& x, uint64_t seed, double p) {
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  const double inv_keep = 1.0 / (1.0 - p);
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::dropout_apply(x.data<float>(), y.data<float>(), seed, p, float(inv_keep), n));
    return y;
  }
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T scale = T(inv_keep);
    const T* px = x.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i)
      py[i] = double(counter_uniform(seed, uint64_t(i))) >= p ? px[i] * scale : T(0);
  });
  return y;
}

}  // namespace

Tensor relu(const Tensor& x) {
  check_float(x, "relu", "x");
  Tensor y = relu_fwd(x);
  autograd::record(y, "relu", {x}, [y = y.detach()](const Tensor& g) {
    return std::vector<Tensor>{relu_bwd(y, g)};
  });
  return y;
}

Tensor tanh(const Tensor& x) {
  check_float(x, "tanh", "x");
  Tensor y = tanh_fwd(x);
  autograd::record(y, "tanh", {x}, [y = y.detach()](const Tensor& g) {
    return std::vector<Tensor>{tanh_bwd(y, g)};
  });
  return y;
}

Tensor sigmoid(const Tensor& x) {
  check_float(x, "sigmoid", "x");
  Tensor y = sigmoid_fwd(x);
  autograd::record(y, "sigmoid", {x}, [y = y.detach()](const Tensor& g) {
    return std::vector<Tensor>{sigmoid_bwd(y, g)};
  });
  return y;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  check_float(x, "clamp", "x");
  OODKIT_CHECK(!std::isnan(lo) && !std::isnan(hi) && lo <= hi, "clamp: need lo <= hi (not NaN), got lo = ", lo,
               ", hi = ", hi, " for x ", x.describe());
  Tensor y = clamp_fwd(x, lo, hi);
  autograd::record(y, "clamp", {x}, [x = x.detach(), lo, hi](const Tensor& g) {
    return std::vector<Tensor>{clamp_bwd(x, g, lo, hi)};
  });
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_float(x, "dropout", "x");
  OODKIT_CHECK(p >= 0.0 && p < 1.0, "dropout: p must lie in [0, 1), got p = ", p, " for x ", x.describe());
  if (!training || p == 0.0) return x;
  const uint64_t seed = gen.next_u64();
  Tensor y = dropout_apply(x, seed, p);
  autograd::record(y, "dropout", {x}, [seed, p](const Tensor& g) {
    return std::vector<Tensor>{dropout_apply(g, seed, p)};
  });
  return y;
}

}  // namespace oodkit::ops
