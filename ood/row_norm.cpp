#include "ood/row_norm.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "ood/row_norm_cuda.h"

namespace oodkit::ood {

namespace {

constexpr int64_t kParallelElems = 1 << 15;

Tensor row_norm_forward(const Tensor& x) {
  const int64_t n = x.size(0), d = x.size(1);
  Tensor y = Tensor::empty({n}, x.dtype(), x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::row_norm_forward(x.data<float>(), y.data<float>(), n, d));
    return y;
  }
  dispatch_float(x.dtype(), "row_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for schedule(static) if (n * d >= kParallelElems)
    for (int64_t r = 0; r < n; ++r) {
      const T* xr = px + r * d;
      double s = 0.0;
      for (int64_t j = 0; j < d; ++j) s += double(xr[j]) * double(xr[j]);
      py[r] = T(std::sqrt(s));
    }
  });
  return y;
}

Tensor row_norm_backward(const Tensor& x, const Tensor& y, const Tensor& g) {
  const int64_t n = x.size(0), d = x.size(1);
  Tensor dx = Tensor::empty_like(x);
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::row_norm_backward(x.data<float>(), y.data<float>(), g.data<float>(), dx.data<float>(),
                                             n, d));
    return dx;
  }
  dispatch_float(x.dtype(), "row_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    const T* pg = g.data<T>();
    T* pd = dx.data<T>();
#pragma omp parallel for schedule(static) if (n * d >= kParallelElems)
    for (int64_t r = 0; r < n; ++r) {
      const T yr = py[r];
      const T s = yr > T(0) ? pg[r] / yr : T(0);
      for (int64_t j = 0; j < d; ++j) pd[r * d + j] = s * px[r * d + j];
    }
  });
  return dx;
}

}  // namespace

Tensor row_norm(const Tensor& x) {
  check_float(x, "row_norm", "x");
  check_ndim(x, 2, "row_norm", "x");
  Tensor y = row_norm_forward(x);
  const Tensor ys = y.detach();  // the graph must not hold its own output alive
  autograd::record(y, "row_norm", {x}, [x, ys](const Tensor& g) {
    return std::vector<Tensor>{row_norm_backward(x, ys, g)};
  });
  return y;
}

}  // namespace oodkit::ood
