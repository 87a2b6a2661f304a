#include "framework/ops/linear.h"

#include <Eigen/Core>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/linear_cuda.h"

namespace oodkit::ops {

namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;

// Row-major c [m, n] = op(a) op(b) (+ c when accumulate) with Eigen's GEMM.
template <class T>
void gemm_cpu(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
              bool accumulate) {
  Eigen::Map<RowMat<T>> C(c, m, n);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) C.setZero();
    return;
  }
  Eigen::Map<const RowMat<T>> A(a, ta ? k : m, ta ? m : k);
  Eigen::Map<const RowMat<T>> B(b, tb ? n : k, tb ? k : n);
  if (accumulate) {
    if (!ta && !tb) C.noalias() += A * B;
    else if (ta && !tb) C.noalias() += A.transpose() * B;
    else if (!ta && tb) C.noalias() += A * B.transpose();
    else C.noalias() += A.transpose() * B.transpose();
  } else {
    if (!ta && !tb) C.noalias() = A * B;
    else if (ta && !tb) C.noalias() = A.transpose() * B;
    else if (!ta && tb) C.noalias() = A * B.transpose();
    else C.noalias() = A.transpose() * B.transpose();
  }
}

// op(a) op(b) into a new tensor (no checks, no autograd). Dimensions as in matmul.
Tensor gemm(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t m = ta ? a.size(1) : a.size(0);
  const int64_t k = ta ? a.size(0) : a.size(1);
  const int64_t n = tb ? b.size(0) : b.size(1);
  Tensor c = Tensor::empty({m, n}, a.dtype(), a.device());
  if (a.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::gemm(a.data<float>(), b.data<float>(), c.data<float>(), m, n, k, ta, tb, false));
    return c;
  }
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    gemm_cpu<T>(a.data<T>(), b.data<T>(), c.data<T>(), m, n, k, ta, tb, false);
  });
  return c;
}

// Column sums of g [rows, cols] -> [cols].
Tensor column_sum(const Tensor& g) {
  const int64_t rows = g.size(0), cols = g.size(1);
  Tensor out = Tensor::empty({cols}, g.dtype(), g.device());
  if (g.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::column_sum(g.data<float>(), out.data<float>(), rows, cols));
    return out;
  }
  dispatch_float(g.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    Eigen::Map<RowVec<T>> o(out.data<T>(), cols);
    if (rows == 0) {
      o.setZero();
      return;
    }
    Eigen::Map<const RowMat<T>> G(g.data<T>(), rows, cols);
    o.noalias() = G.colwise().sum();
  });
  return out;
}

std::string mat_desc(const Tensor& t, bool trans) {
  return shape_str(t.shape()) + (trans ? " (transposed)" : "");
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_float(a, "matmul", "a");
  check_ndim(a, 2, "matmul", "a");
  check_ndim(b, 2, "matmul", "b");
  check_same_device(a, b, "matmul", "a", "b");
  check_dtype(b, a.dtype(), "matmul", "b");
  const int64_t ka = trans_a ? a.size(0) : a.size(1);
  const int64_t kb = trans_b ? b.size(1) : b.size(0);
  OODKIT_CHECK(ka == kb, "matmul: inner dimensions differ: a is ", mat_desc(a, trans_a), " and b is ",
               mat_desc(b, trans_b), " (", ka, " vs ", kb, ")");
  Tensor c = gemm(a, b, trans_a, trans_b);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  autograd::record(c, "matmul", {a, b}, [a, b, trans_a, trans_b, ga, gb](const Tensor& g) {
    // C = op(A) op(B):  d op(A) = G op(B)^T,  d op(B) = op(A)^T G; transposed back where needed.
    Tensor da, db;
    if (ga) da = trans_a ? gemm(b, g, trans_b, true) : gemm(g, b, false, !trans_b);
    if (gb) db = trans_b ? gemm(g, a, true, trans_a) : gemm(a, g, !trans_a, false);
    return std::vector<Tensor>{da, db};
  });
  return c;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_float(x, "linear", "x");
  check_ndim(x, 2, "linear", "x");
  check_ndim(weight, 2, "linear", "weight");
  check_same_device(x, weight, "linear", "x", "weight");
  check_dtype(weight, x.dtype(), "linear", "weight");
  OODKIT_CHECK(x.size(1) == weight.size(1), "linear: x is ", shape_str(x.shape()), " but weight is ",
               shape_str(weight.shape()), ": x.size(1) must equal weight.size(1) (in_features)");
  const int64_t n = x.size(0), in = x.size(1), out = weight.size(0);
  if (bias.defined()) {
    check_ndim(bias, 1, "linear", "bias");
    check_same_device(x, bias, "linear", "x", "bias");
    check_dtype(bias, x.dtype(), "linear", "bias");
    OODKIT_CHECK(bias.size(0) == out, "linear: bias is ", shape_str(bias.shape()), " but weight is ",
                 shape_str(weight.shape()), ": bias must have weight.size(0) = ", out, " elements");
  }

  Tensor y = Tensor::empty({n, out}, x.dtype(), x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::gemm(x.data<float>(), weight.data<float>(), y.data<float>(), n, out, in, false,
                                true, false));
    if (bias.defined()) OODKIT_CUDA_CALL(cuda::add_bias(y.data<float>(), bias.data<float>(), n, out));
  } else {
    dispatch_float(x.dtype(), "linear", [&](auto tag) {
      using T = decltype(tag);
      if (bias.defined()) {
        // Start from the broadcast bias and accumulate the product into it.
        Eigen::Map<RowMat<T>> Y(y.data<T>(), n, out);
        Eigen::Map<const RowVec<T>> B(bias.data<T>(), out);
        Y.rowwise() = B;
      }
      gemm_cpu<T>(x.data<T>(), weight.data<T>(), y.data<T>(), n, out, in, false, true, bias.defined());
    });
  }

  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gbias = bias.defined() && bias.requires_grad();
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  const bool has_bias = bias.defined();
  autograd::record(y, "linear", inputs, [x, weight, gx, gw, gbias, has_bias](const Tensor& g) {
    std::vector<Tensor> grads{gx ? gemm(g, weight, false, false) : Tensor(),   // G W      [N, in]
                              gw ? gemm(g, x, true, false) : Tensor()};       // G^T x    [out, in]
    if (has_bias) grads.push_back(gbias ? column_sum(g) : Tensor());          // sum_n G  [out]
    return grads;
  });
  return y;
}

}  // namespace oodkit::ops
