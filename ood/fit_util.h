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
  OODKIT_CHECK(shape_numel(shape) == int64_t(m.size()), "from_matrix: shape ", shape_str(shape), " does not hold ",
               m.rows(), "x", m.cols());
  Eigen::Map<MatrixXdR>(t.data<double>(), m.rows(), m.cols()) = m;
  return t;
}

// `param` (a float64 CPU master) in the dtype and on the device of `like`.
inline Tensor param_like(const Tensor& param, const Tensor& like) {
  return param.to(like.dtype()).to(like.device());
}

}  // namespace oodkit::ood::detail
