#include "framework/ops/activation.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/activation_functors.h"
#include "framework/ops/map_tensor.h"

namespace oodkit::ops {

namespace {

// ---- kernels: forward from x, backward from (saved, grad_output); one formula each
// (activation_functors.h) for both devices ----

Tensor relu_fwd(const Tensor& x) { return unary_map<Relu>("relu", x); }
Tensor relu_bwd(const Tensor& y, const Tensor& g) { return binary_map<ReluBackward>("relu backward", y, g); }

Tensor tanh_fwd(const Tensor& x) { return unary_map<Tanh>("tanh", x); }
Tensor tanh_bwd(const Tensor& y, const Tensor& g) { return binary_map<TanhBackward>("tanh backward", y, g); }

Tensor sigmoid_fwd(const Tensor& x) { return unary_map<Sigmoid>("sigmoid", x); }
Tensor sigmoid_bwd(const Tensor& y, const Tensor& g) {
  return binary_map<SigmoidBackward>("sigmoid backward", y, g);
}

Tensor clamp_fwd(const Tensor& x, double lo, double hi) { return unary_map<Clamp>("clamp", x, lo, hi); }
Tensor clamp_bwd(const Tensor& x, const Tensor& g, double lo, double hi) {
  return binary_map<ClampBackward>("clamp backward", x, g, lo, hi);
}

// Forward and backward of dropout are this same map (backward applies it to the gradient).
Tensor dropout_apply(const Tensor& x, uint64_t seed, double p) {
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  const double inv_keep = 1.0 / (1.0 - p);
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(
        cuda::for_n(n, DropoutApply<float>{x.data<float>(), y.data<float>(), seed, p, float(inv_keep)}));
    return y;
  }
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    for_n(n, DropoutApply<T>{x.data<T>(), y.data<T>(), seed, p, T(inv_keep)});
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
