// Internal helpers of the fitted detectors (ood/): host double-precision Eigen views of
// tensors, moving fitted double-precision parameters to a batch's dtype and device, and the
// blocked pass over training features that the fits share (for_centred_blocks, scatter).
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/ops/reduce.h"
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

// Host copy of t for a fit pass: float32 and float64 stay as they are (a float32 CPU tensor is
// `t` itself, not a copy), any other dtype becomes float64.
inline Tensor host_float(const Tensor& t) {
  const Tensor h = t.cpu();
  return h.dtype() == DType::F32 || h.dtype() == DType::F64 ? h : h.to(DType::F64);
}

// Whether every element of the float32/float64 CPU tensor t is finite (ops::all_finite: a
// vectorised test of the exponent bits, one pass).
inline bool all_finite(const Tensor& t) { return ops::all_finite({t}).item() != 0.0; }

// The blocked pass over training rows that the fits share. z [N, D] float32 or float64 (CPU,
// from host_float, read in place); row i is centred at centres.row(group ? group[i] : 0)
// (double), and the centred rows are handed to fn(lane, first_row, x) in blocks
// x [<= kFitBlock, D] of precision B (row-major): each value is (double(z_ij) - c_j) rounded to B.
// The blocks are split over kFitLanes fixed lanes (block b goes to lane b % kFitLanes) that OpenMP
// runs in parallel, so `fn` is called concurrently from different lanes (never twice at once for
// one lane): per-lane accumulators, summed in lane order, give results that do not depend on the
// number of threads. Eigen inside runs single-threaded (it detects the parallel region). `fn` must
// not throw.
constexpr int64_t kFitBlock = 256;
constexpr int kFitLanes = 4;
template <class T>
using MatrixR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T, class B, class Fn>
void for_centred_blocks(const Tensor& z, const MatrixXdR& centres, const int64_t* group, Fn&& fn) {
  const int64_t n = z.size(0), d = z.size(1);
  const T* zp = z.data<T>();
  const int64_t blocks = (n + kFitBlock - 1) / kFitBlock;
#pragma omp parallel for schedule(static, 1) if (blocks > 1)
  for (int lane = 0; lane < kFitLanes; ++lane) {
    MatrixR<B> x;
    for (int64_t b = lane; b < blocks; b += kFitLanes) {
      const int64_t r0 = b * kFitBlock, rows = std::min(kFitBlock, n - r0);
      x.resize(rows, d);
      for (int64_t i = 0; i < rows; ++i) {
        const T* zi = zp + (r0 + i) * d;
        const double* c = centres.row(group ? group[r0 + i] : 0).data();
        B* xi = x.row(i).data();
        for (int64_t j = 0; j < d; ++j) xi[j] = B(double(zi[j]) - c[j]);
      }
      fn(lane, r0, x);
    }
  }
}

// The scatter matrix S = sum_i (z_i - c_i)(z_i - c_i)^T [D, D] (symmetric) with the centring of
// for_centred_blocks, in double: each block of rows (read from float32 features in place,
// converted per block) is a double rank update (SYRK) into its lane's accumulator; the lanes are
// summed in order. Double, not float32: the precision matrix and ViM's residual subspace amplify
// the scatter's error by the covariance's condition number, and float32 sums (even of <= 256
// products per block) lost up to 4e-3 of a distance in the unit tests (docs/methods.md).
inline Eigen::MatrixXd scatter(const Tensor& z, const MatrixXdR& centres, const int64_t* group) {
  const int64_t d = z.size(1);
  std::vector<Eigen::MatrixXd> lane_sum(kFitLanes, Eigen::MatrixXd::Zero(d, d));
  dispatch_float(z.dtype(), "scatter", [&](auto tag) {
    using T = decltype(tag);
    for_centred_blocks<T, double>(z, centres, group, [&](int lane, int64_t, const MatrixXdR& x) {
      lane_sum[size_t(lane)].selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
    });
  });
  Eigen::MatrixXd s = Eigen::MatrixXd::Zero(d, d);
  for (const Eigen::MatrixXd& l : lane_sum) s.triangularView<Eigen::Lower>() += l;
  s.triangularView<Eigen::StrictlyUpper>() = s.transpose();
  return s;
}

// pinvh(sigma) for a symmetric positive semi-definite sigma [D, D] (scipy.linalg.pinvh):
// V diag(1 / lambda) V^T over the eigenvalues lambda > rc * max|lambda| (the others dropped);
// `rank` = how many are kept. Cheapest first: a Cholesky inverse, returned when a norm bound
// proves that no eigenvalue falls below the cutoff; else the eigenvalues alone (Householder
// tridiagonalisation, QR iterations without vectors), the Cholesky inverse again when they keep
// every one; else the eigenvectors. A full eigen-decomposition is therefore needed only when
// something is dropped (a rank-deficient covariance, or a large rcond); its QR iterations on the
// eigenvectors are about 60% of its time at D = 512 (docs/results.md). The paths differ in
// rounding only.
// Errors name `op` (a zero covariance; a failed eigen-decomposition). Defined in mahalanobis.cpp.
Eigen::MatrixXd pinvh(const Eigen::MatrixXd& sigma, double rc, int64_t& rank, const char* op);

}  // namespace oodkit::ood::detail
