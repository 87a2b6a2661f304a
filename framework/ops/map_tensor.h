// Tensor-level elementwise maps (host code) over the functors of framework/ops/map.h: the output
// gets the first operand's shape, dtype and device, and element i is Op<T>{T(params)...} applied
// to element i of each operand, with T = float (CUDA: cuda::map_n, which a .cu file instantiates
// for Op<float>) or T = float or double (CPU: ops::map_n). Callers check that the operands share
// shape, dtype and device; `name` names the op in the error for another dtype.
#pragma once
#include "framework/cuda_api.h"
#include "framework/ops/map.h"
#include "framework/tensor.h"

namespace oodkit::ops {

// y[i] = Op<T>{T(params)...}(x[i])
template <template <class> class Op, class... P>
Tensor unary_map(const char* name, const Tensor& x, P... params) {
  Tensor y = Tensor::empty_like(x);
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::map_n(Op<float>{float(params)...}, n, y.data<float>(), x.data<float>()));
    return y;
  }
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    ops::map_n(Op<T>{T(params)...}, n, y.data<T>(), x.data<T>());
  });
  return y;
}

// y[i] = Op<T>{T(params)...}(a[i], b[i])
template <template <class> class Op, class... P>
Tensor binary_map(const char* name, const Tensor& a, const Tensor& b, P... params) {
  Tensor y = Tensor::empty_like(a);
  const int64_t n = a.numel();
  if (a.is_cuda()) {
    OODKIT_CUDA_CALL(
        cuda::map_n(Op<float>{float(params)...}, n, y.data<float>(), a.data<float>(), b.data<float>()));
    return y;
  }
  dispatch_float(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    ops::map_n(Op<T>{T(params)...}, n, y.data<T>(), a.data<T>(), b.data<T>());
  });
  return y;
}

}  // namespace oodkit::ops
