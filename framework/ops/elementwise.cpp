#include "framework/ops/elementwise.h"

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/elementwise_cuda.h"
#include "framework/ops/elementwise_functors.h"
#include "framework/ops/map_tensor.h"
#include "framework/ops/reduce.h"

namespace oodkit::ops {

namespace {

// b as an operand of a: b itself when the shapes match, else b repeated along its size-1
// dimensions (expand, whose backward sums the gradient back over them).
Tensor check_binary(const Tensor& a, const Tensor& b, const char* op) {
  check_float(a, op, "a");
  check_defined(b, op, "b");
  check_same_device(a, b, op, "a", "b");
  check_dtype(b, a.dtype(), op, "b");
  if (a.shape() == b.shape()) return b;
  bool broadcastable = a.ndim() == b.ndim();
  for (int d = 0; broadcastable && d < a.ndim(); ++d) broadcastable = b.size(d) == a.size(d) || b.size(d) == 1;
  OODKIT_CHECK(broadcastable, op, ": argument 'b' ", shape_str(b.shape()), " does not broadcast to argument 'a' ",
               shape_str(a.shape()), " (same rank, each size equal or 1)");
  return expand(b, a.shape());
}

// The elementwise kernels: one formula each (elementwise_functors.h) for both devices.
Tensor axpby(const Tensor& a, const Tensor& b, double alpha, double beta) {
  return binary_map<Axpby>("axpby", a, b, alpha, beta);
}
Tensor multiply(const Tensor& a, const Tensor& b) { return binary_map<Multiply>("mul", a, b); }
Tensor affine(const Tensor& x, double alpha, double beta) { return unary_map<Affine>("affine", x, alpha, beta); }

// 0-d tensor holding scale * sum(x); CPU accumulates in double.
Tensor scaled_sum(const Tensor& x, double s) {
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::sum(x.data<float>(), n, y.data<float>(), float(s)));
    return y;
  }
  dispatch_float(x.dtype(), "sum", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    double acc = 0.0;
    for (int64_t i = 0; i < n; ++i) acc += double(px[i]);
    y.data<T>()[0] = T(acc * s);
  });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b_in) {
  const Tensor b = check_binary(a, b_in, "add");
  Tensor y = axpby(a, b, 1.0, 1.0);
  autograd::record(y, "add", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b_in) {
  const Tensor b = check_binary(a, b_in, "sub");
  Tensor y = axpby(a, b, 1.0, -1.0);
  autograd::record(y, "sub", {a, b}, [](const Tensor& g) {
    return std::vector<Tensor>{g, affine(g, -1.0, 0.0)};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b_in) {
  const Tensor b = check_binary(a, b_in, "mul");
  Tensor y = multiply(a, b);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  autograd::record(y, "mul", {a, b}, [a, b, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{ga ? multiply(g, b) : Tensor(), gb ? multiply(g, a) : Tensor()};
  });
  return y;
}

Tensor scale(const Tensor& x, double s) {
  check_float(x, "scale", "x");
  Tensor y = affine(x, s, 0.0);
  autograd::record(y, "scale", {x}, [s](const Tensor& g) { return std::vector<Tensor>{affine(g, s, 0.0)}; });
  return y;
}

Tensor add_scalar(const Tensor& x, double s) {
  check_float(x, "add_scalar", "x");
  Tensor y = affine(x, 1.0, s);
  autograd::record(y, "add_scalar", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return y;
}

namespace {
// The gradient of a (scaled) full reduction: scale * g broadcast to `shape`. On CUDA the scalar
// stays on the device (no item(), no host sync inside backward).
Tensor broadcast_grad(const Tensor& g, const Shape& shape, double scale) {
  if (g.is_cuda()) {
    Tensor out = Tensor::empty(shape, g.dtype(), g.device());
    OODKIT_CUDA_CALL(cuda::broadcast_scaled(g.data<float>(), float(scale), out.data<float>(), out.numel()));
    return out;
  }
  return Tensor::full(shape, g.item() * scale, g.dtype(), g.device());
}
}  // namespace

Tensor sum(const Tensor& x) {
  check_float(x, "sum", "x");
  Tensor y = scaled_sum(x, 1.0);
  const Shape shape = x.shape();
  autograd::record(y, "sum", {x}, [shape](const Tensor& g) {
    // d sum / dx_i = 1: broadcast the scalar gradient.
    return std::vector<Tensor>{broadcast_grad(g, shape, 1.0)};
  });
  return y;
}

Tensor mean(const Tensor& x) {
  check_float(x, "mean", "x");
  OODKIT_CHECK(x.numel() > 0, "mean: empty tensor ", x.describe());
  const double inv = 1.0 / double(x.numel());
  Tensor y = scaled_sum(x, inv);
  const Shape shape = x.shape();
  autograd::record(y, "mean", {x}, [shape, inv](const Tensor& g) {
    return std::vector<Tensor>{broadcast_grad(g, shape, inv)};
  });
  return y;
}

}  // namespace oodkit::ops
