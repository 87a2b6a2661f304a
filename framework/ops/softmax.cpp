#include "framework/ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/softmax_cuda.h"

namespace oodkit::ops {

namespace {

enum class Kind { Softmax, LogSoftmax, LogSumExp };

void check_input(const Tensor& x, double temperature, const char* op) {
  check_float(x, op, "x");
  check_ndim(x, 2, op, "x");
  OODKIT_CHECK(x.size(1) > 0, op, ": x must have at least one class (dim 1), got ", x.describe());
  OODKIT_CHECK(std::isfinite(temperature) && temperature > 0, op,
               ": temperature must be a positive finite number, got ", temperature);
}

// Parallelise row loops only when there is enough work to pay for the threads.
constexpr int64_t kParallelElems = 1 << 15;

// Row shift m (the row max; 0 when the max is -inf, so that an all -inf row gives s = 0 rather
// than NaN) and s = sum_j exp((x_j - m) * inv_t) (accumulated in double). A NaN anywhere in the
// row makes s (or m) NaN, so every output of that row is NaN.
template <class T>
void row_stats(const T* xr, int64_t k, T inv_t, T& m, double& s) {
  m = xr[0];
  for (int64_t j = 1; j < k; ++j) m = std::max(m, xr[j]);
  if (m == -std::numeric_limits<T>::infinity()) m = T(0);
  s = 0.0;
  for (int64_t j = 0; j < k; ++j) s += double(std::exp((xr[j] - m) * inv_t));
}

// Forward for all three kinds: y is [n, k] (Softmax, LogSoftmax) or [n] (LogSumExp).
template <class T>
void forward_cpu(const T* x, T* y, int64_t n, int64_t k, double temperature, Kind kind) {
  const T inv_t = T(1.0 / temperature);
#pragma omp parallel for schedule(static) if (n * k >= kParallelElems)
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * k;
    T m;
    double s;
    row_stats(xr, k, inv_t, m, s);
    if (kind == Kind::LogSumExp) {
      y[r] = T(double(m) + temperature * std::log(s));
      continue;
    }
    T* yr = y + r * k;
    if (kind == Kind::Softmax) {
      const T inv_s = T(1.0 / s);
      for (int64_t j = 0; j < k; ++j) yr[j] = std::exp((xr[j] - m) * inv_t) * inv_s;
    } else {
      const T log_s = T(std::log(s));
      for (int64_t j = 0; j < k; ++j) yr[j] = (xr[j] - m) * inv_t - log_s;
    }
  }
}

Tensor forward(const Tensor& x, double temperature, Kind kind) {
  const int64_t n = x.size(0), k = x.size(1);
  Tensor y = kind == Kind::LogSumExp ? Tensor::empty({n}, x.dtype(), x.device()) : Tensor::empty_like(x);
  if (x.is_cuda()) {
    const float inv_t = float(1.0 / temperature);
    if (kind == Kind::LogSumExp)
      OODKIT_CUDA_CALL(cuda::logsumexp_forward(x.data<float>(), y.data<float>(), n, k, inv_t));
    else
      OODKIT_CUDA_CALL(cuda::softmax_forward(x.data<float>(), y.data<float>(), n, k, inv_t,
                                             kind == Kind::LogSoftmax));
    return y;
  }
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    forward_cpu<T>(x.data<T>(), y.data<T>(), n, k, temperature, kind);
  });
  return y;
}

// Backward of softmax (from output y) or log_softmax (from output z).
Tensor softmax_backward(const Tensor& y, const Tensor& g, double temperature, bool log_space) {
  const int64_t n = y.size(0), k = y.size(1);
  Tensor dx = Tensor::empty_like(y);
  if (y.is_cuda()) {
    const float inv_t = float(1.0 / temperature);
    if (log_space)
      OODKIT_CUDA_CALL(cuda::log_softmax_backward(y.data<float>(), g.data<float>(), dx.data<float>(), n, k, inv_t));
    else
      OODKIT_CUDA_CALL(cuda::softmax_backward(y.data<float>(), g.data<float>(), dx.data<float>(), n, k, inv_t));
    return dx;
  }
  dispatch_float(y.dtype(), "softmax backward", [&](auto tag) {
    using T = decltype(tag);
    const T inv_t = T(1.0 / temperature);
    const T* py = y.data<T>();
    const T* pg = g.data<T>();
    T* pd = dx.data<T>();
#pragma omp parallel for schedule(static) if (n * k >= kParallelElems)
    for (int64_t r = 0; r < n; ++r) {
      const T* yr = py + r * k;
      const T* gr = pg + r * k;
      T* dr = pd + r * k;
      double acc = 0.0;
      if (log_space) {
        for (int64_t j = 0; j < k; ++j) acc += double(gr[j]);
        const T sg = T(acc);
        for (int64_t j = 0; j < k; ++j) dr[j] = inv_t * (gr[j] - std::exp(yr[j]) * sg);
      } else {
        for (int64_t j = 0; j < k; ++j) acc += double(gr[j]) * double(yr[j]);
        const T dot = T(acc);
        for (int64_t j = 0; j < k; ++j) dr[j] = inv_t * yr[j] * (gr[j] - dot);
      }
    }
  });
  return dx;
}

// Backward of logsumexp from its input x [n, k], output lse [n] and gradient g [n].
Tensor logsumexp_backward(const Tensor& x, const Tensor& lse, const Tensor& g, double temperature) {
  const int64_t n = x.size(0), k = x.size(1);
  Tensor dx = Tensor::empty_like(x);
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::logsumexp_backward(x.data<float>(), lse.data<float>(), g.data<float>(),
                                              dx.data<float>(), n, k, float(1.0 / temperature)));
    return dx;
  }
  dispatch_float(x.dtype(), "logsumexp backward", [&](auto tag) {
    using T = decltype(tag);
    const T inv_t = T(1.0 / temperature);
    const T* px = x.data<T>();
    const T* pl = lse.data<T>();
    const T* pg = g.data<T>();
    T* pd = dx.data<T>();
#pragma omp parallel for schedule(static) if (n * k >= kParallelElems)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < k; ++j) pd[r * k + j] = pg[r] * std::exp((px[r * k + j] - pl[r]) * inv_t);
  });
  return dx;
}

}  // namespace

Tensor softmax(const Tensor& x, double temperature) {
  check_input(x, temperature, "softmax");
  Tensor y = forward(x, temperature, Kind::Softmax);
  // Saves the output (a detached handle: the graph must not hold its own output alive).
  const Tensor ys = y.detach();
  autograd::record(y, "softmax", {x}, [ys, temperature](const Tensor& g) {
    return std::vector<Tensor>{softmax_backward(ys, g, temperature, false)};
  });
  return y;
}

Tensor log_softmax(const Tensor& x, double temperature) {
  check_input(x, temperature, "log_softmax");
  Tensor y = forward(x, temperature, Kind::LogSoftmax);
  const Tensor ys = y.detach();
  autograd::record(y, "log_softmax", {x}, [ys, temperature](const Tensor& g) {
    return std::vector<Tensor>{softmax_backward(ys, g, temperature, true)};
  });
  return y;
}

Tensor logsumexp(const Tensor& x, double temperature) {
  check_input(x, temperature, "logsumexp");
  Tensor y = forward(x, temperature, Kind::LogSumExp);
  const Tensor ys = y.detach();
  autograd::record(y, "logsumexp", {x}, [x, ys, temperature](const Tensor& g) {
    return std::vector<Tensor>{logsumexp_backward(x, ys, g, temperature)};
  });
  return y;
}

}  // namespace oodkit::ops
