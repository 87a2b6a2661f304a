// Internal helpers of the fitted detectors (ood/): host double-precision Eigen views of
// tensors, and moving fitted double-precision parameters to a batch's dtype and device.
#pragma once
#include <Eigen/Core>

#include "framework/tensor.h"

namespace oodkit::ood::detail {

using MatrixXdR = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A float64 CPU copy of `t` (any dtype, any device; always a new tensor, never `t` itself).
inline Tensor host_f64(const Tensor& t) {
  Tensor h = t.cpu().to(DType::F64);  // host first: the cast then runs on the CPU
  return h.same_storage(t) ? h.clone() : h;
}

// Row-major [rows, cols] double matrix of a 2-D tensor (copied to the host as double).
inline MatrixXdR to_matrix(const Tensor& t) {
  const Tensor h = t.cpu().to(DType::F64);
  const int64_t rows = h.size(0), cols = h.ndim() > 1 ? h.size(1) : 1;
  return Eigen::Map<const MatrixXdR>(h.data<double>(), rows, cols);
}

// Float64 CPU tensor [rows, cols] (or `shape` when given) holding a copy of m.
template <class Derived>
Tensor from_matrix(const Eigen::MatrixBase<Derived>& m, Shape shape = {}) {
  if (shape.empty()) shape = {int64_t(m.rows()), int64_t(m.cols())};
  Tensor t = Tensor::empty(shape, DType::F64);
  OODKIT_ASSERT(shape_numel(shape) == int64_t(m.size()), "from_matrix: shape ", shape_str(shape), " does not hold ",
               m.rows(), "x", m.cols());
  Eigen::Map<MatrixXdR>(t.data<double>(), m.rows(), m.cols()) = m;
  return t;
}

// `param` (a float64 CPU master) in the dtype and on the device of `like`.
inline Tensor param_like(const Tensor& param, const Tensor& like) {
  return param.to(like.dtype()).to(like.device());
}

// Validates the (features, head) arguments of a fit: z_train [N, D] non-empty, weight [K, D],
// bias [K] or undefined; messages name `op` and the argument.
inline void check_fit_args(const char* op, const Tensor& z_train, const Tensor& weight, const Tensor& bias) {
  check_defined(z_train, op, "z_train");
  check_defined(weight, op, "weight");
  check_ndim(z_train, 2, op, "z_train");
  check_ndim(weight, 2, op, "weight");
  const int64_t n = z_train.size(0), d = z_train.size(1), k = weight.size(0);
  OODKIT_CHECK(n > 0 && d > 0, op, ": 'z_train' is empty: ", z_train.describe());
  OODKIT_CHECK(k > 0, op, ": 'weight' has no rows: ", weight.describe());
  OODKIT_CHECK(weight.size(1) == d, op, ": 'weight' ", shape_str(weight.shape()), " must be [K, ", d,
               "] to match 'z_train' ", shape_str(z_train.shape()));
  if (bias.defined()) {
    check_ndim(bias, 1, op, "bias");
    OODKIT_CHECK(bias.size(0) == k, op, ": 'bias' ", shape_str(bias.shape()), " must be [", k, "] to match 'weight' ",
                 shape_str(weight.shape()));
  }
}

}  // namespace oodkit::ood::detail
