#include "ood/input_ops.h"

#include <cmath>

#include "framework/cuda_api.h"
#include "ood/input_ops_cuda.h"

namespace oodkit::ood {

Tensor perturb_against_gradient(const Tensor& x, const Tensor& g, double eps, const std::array<float, 3>& std) {
  check_float(x, "perturb_against_gradient", "x");
  check_ndim(x, 4, "perturb_against_gradient", "x");
  OODKIT_CHECK(x.size(1) == 3, "perturb_against_gradient: x must have 3 channels, got ", x.describe());
  check_same_shape(x, g, "perturb_against_gradient", "x", "g");
  check_same_device(x, g, "perturb_against_gradient", "x", "g");
  check_dtype(g, x.dtype(), "perturb_against_gradient", "g");
  OODKIT_CHECK(std::isfinite(eps) && eps >= 0, "perturb_against_gradient: eps must be finite and >= 0, got ", eps);
  for (float s : std) OODKIT_CHECK(s > 0, "perturb_against_gradient: std entries must be positive");
  const Tensor xd = x.detach(), gd = g.detach();
  Tensor y = Tensor::empty_like(xd);
  const int64_t n = x.numel(), hw = x.size(2) * x.size(3);
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::perturb_against_gradient(xd.data<float>(), gd.data<float>(), y.data<float>(), n, hw,
                                                    float(eps), 1.0f / std[0], 1.0f / std[1], 1.0f / std[2]));
    return y;
  }
  dispatch_float(x.dtype(), "perturb_against_gradient", [&](auto tag) {
    using T = decltype(tag);
    const T* px = xd.data<T>();
    const T* pg = gd.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = (i / hw) % 3;
      const T sign = pg[i] >= T(0) ? T(1) : T(-1);
      py[i] = px[i] - T(eps) * (sign * T(1.0f / std[size_t(c)]));
    }
  });
  return y;
}

Tensor normalize_rows(const Tensor& x) {
  check_float(x, "normalize_rows", "x");
  check_ndim(x, 2, "normalize_rows", "x");
  const Tensor xd = x.detach();
  Tensor y = Tensor::empty_like(xd);
  const int64_t rows = x.size(0), d = x.size(1);
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::normalize_rows(xd.data<float>(), y.data<float>(), rows, d));
    return y;
  }
  dispatch_float(x.dtype(), "normalize_rows", [&](auto tag) {
    using T = decltype(tag);
    const T* px = xd.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for if (rows >= 256)
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t j = 0; j < d; ++j) acc += double(px[r * d + j]) * double(px[r * d + j]);
      const T inv = T(1.0 / (std::sqrt(acc) + 1e-10));
      for (int64_t j = 0; j < d; ++j) py[r * d + j] = px[r * d + j] * inv;
    }
  });
  return y;
}

}  // namespace oodkit::ood
