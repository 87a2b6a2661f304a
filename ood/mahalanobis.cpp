#include "ood/mahalanobis.h"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <cfloat>
#include <cmath>
#include <vector>

#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "framework/ops/reduce.h"
#include "ood/fit_util.h"
#include "ood/state_io.h"

namespace oodkit::ood {

using detail::from_matrix;
using detail::MatrixXdR;
using detail::param_like;
using detail::to_matrix;

namespace detail {

// ood/fit_util.h has the contract.
Eigen::MatrixXd pinvh(const Eigen::MatrixXd& sigma, double rc, int64_t& rank, const char* op) {
  const int64_t d = sigma.rows();
  const double scale = sigma.cwiseAbs().maxCoeff();
  OODKIT_CHECK(scale > 0.0, op, ": the within-class covariance is zero (the features never vary within a class)");
  const auto norm_inf = [](const Eigen::MatrixXd& m) { return m.cwiseAbs().rowwise().sum().maxCoeff(); };

  // 1. Cholesky: the inverse when sigma is positive definite. The infinity norm (largest absolute
  // row sum) of a symmetric matrix bounds each |eigenvalue|: lambda_max(sigma) <= ||sigma||_inf
  // and lambda_min(sigma) = 1 / lambda_max(inv) >= 1 / ||inv||_inf. So when
  // 2 rc ||sigma||_inf ||inv||_inf < 1 (2: room for the inverse's rounding) every eigenvalue
  // exceeds rc * lambda_max: nothing is dropped and pinvh is the inverse.
  Eigen::MatrixXd inv;
  const Eigen::LLT<Eigen::MatrixXd> llt(sigma);
  if (llt.info() == Eigen::Success) {
    inv = llt.solve(Eigen::MatrixXd::Identity(d, d));
    inv = (0.5 * (inv + inv.transpose())).eval();
    if (!inv.allFinite()) inv.resize(0, 0);
    if (inv.size() > 0 && 2.0 * rc * norm_inf(sigma) * norm_inf(inv) < 1.0) {
      rank = d;
      return inv;
    }
  }
  // 2. The eigenvalues alone, from the tridiagonal form (scaled to a largest entry of 1, as
  // Eigen's SelfAdjointEigenSolver does, against overflow): when every one is kept after all,
  // the Cholesky inverse is pinvh.
  const Eigen::Tridiagonalization<Eigen::MatrixXd> tri(sigma / scale);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es;
  es.computeFromTridiagonal(tri.diagonal(), tri.subDiagonal(), Eigen::EigenvaluesOnly);
  OODKIT_CHECK(es.info() == Eigen::Success, op, ": eigen-decomposition of the covariance failed");
  const Eigen::VectorXd l = es.eigenvalues() * scale;  // ascending
  const double lmax = l.cwiseAbs().maxCoeff();
  OODKIT_CHECK(lmax > 0.0, op, ": the within-class covariance is zero (the features never vary within a class)");
  const double cutoff = rc * lmax;
  if (l(0) > cutoff && inv.size() > 0) {
    rank = d;
    return inv;
  }
  // 3. The eigenvectors of the tridiagonal matrix, rotated back by the Householder reflections:
  // V diag(1 / lambda) V^T over the kept eigenvalues.
  es.computeFromTridiagonal(tri.diagonal(), tri.subDiagonal(), Eigen::ComputeEigenvectors);
  OODKIT_CHECK(es.info() == Eigen::Success, op, ": eigen-decomposition of the covariance failed");
  const Eigen::VectorXd ls = es.eigenvalues() * scale;
  Eigen::MatrixXd vs = tri.matrixQ() * es.eigenvectors();
  rank = 0;
  for (int64_t j = 0; j < d; ++j) {
    if (ls(j) > cutoff) {
      vs.col(j) /= std::sqrt(ls(j));
      ++rank;
    } else {
      vs.col(j).setZero();
    }
  }
  Eigen::MatrixXd prec = vs * vs.transpose();
  return 0.5 * (prec + prec.transpose());
}

}  // namespace detail

void Mahalanobis::fit(const Tensor& z, const Tensor& labels, int64_t num_classes, double rcond) {
  const char* op = "Mahalanobis::fit";
  check_defined(z, op, "z");
  check_defined(labels, op, "labels");
  check_ndim(z, 2, op, "z");
  OODKIT_CHECK(z.dtype() == DType::F32 || z.dtype() == DType::F64, op, ": argument 'z' must be float32 or float64, got ",
               z.describe());
  check_dtype(labels, DType::I64, op, "labels");
  check_ndim(labels, 1, op, "labels");
  const int64_t n = z.size(0), d = z.size(1);
  OODKIT_CHECK(labels.size(0) == n, op, ": 'labels' ", shape_str(labels.shape()), " must have one entry per row of 'z' ",
               shape_str(z.shape()));
  OODKIT_CHECK(n > 0 && d > 0, op, ": 'z' is empty: ", z.describe());
  OODKIT_CHECK(num_classes >= 1, op, ": num_classes must be >= 1, got ", num_classes);
  OODKIT_CHECK(rcond < 0.0 || (rcond >= 0.0 && rcond < 1.0), op, ": rcond must lie in [0, 1) (or < 0 for the default), got ",
               rcond);

  // z is read in place (float32 features are not copied to double; blocks are converted as used).
  const Tensor zh = detail::host_float(z);
  OODKIT_CHECK(detail::all_finite(zh), op, ": 'z' contains non-finite values");
  const std::vector<int64_t> y = labels.to_vector<int64_t>();

  // Class means (sums in double), and the overall mean (the scoring origin).
  std::vector<int64_t> count(size_t(num_classes), 0);
  MatrixXdR mu = MatrixXdR::Zero(num_classes, d);
  dispatch_float(zh.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* zp = zh.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = y[size_t(i)];
      OODKIT_CHECK(c >= 0 && c < num_classes, op, ": labels[", i, "] = ", c, " lies outside [0, ", num_classes, ")");
      ++count[size_t(c)];
      double* m = mu.row(c).data();
      const T* zi = zp + i * d;
      for (int64_t j = 0; j < d; ++j) m[j] += double(zi[j]);
    }
  });
  const Eigen::RowVectorXd center = mu.colwise().sum() / double(n);  // mu holds the class sums here
  for (int64_t c = 0; c < num_classes; ++c) {
    OODKIT_CHECK(count[size_t(c)] > 0, op, ": class ", c, " has no training samples (", num_classes,
                 " classes requested)");
    mu.row(c) /= double(count[size_t(c)]);
  }

  // Tied covariance of the class-centred features: blocked double rank updates (detail::scatter).
  Eigen::MatrixXd sigma = detail::scatter(zh, mu, y.data()) / double(n);

  // Precision = pinvh(sigma) (scipy.linalg.pinvh): eigenvalues above rcond * max|lambda| kept.
  int64_t rank = 0;
  const double rc = rcond < 0.0 ? double(d) * DBL_EPSILON : rcond;
  const Eigen::MatrixXd prec = detail::pinvh(sigma, rc, rank, op);

  means_ = from_matrix(mu);
  covariance_ = from_matrix(sigma);
  precision_ = from_matrix(prec);
  center_ = from_matrix(center, {d});
  counts_ = Tensor::from_vector(count, {num_classes});
  rank_ = rank;
  rcond_ = rc;
  derive();
}

void Mahalanobis::derive() {
  const MatrixXdR mu = to_matrix(means_);
  const MatrixXdR P = to_matrix(precision_);
  const Eigen::RowVectorXd m = to_matrix(center_.reshape({1, -1}));
  const MatrixXdR nu = mu.rowwise() - m;
  const MatrixXdR pn = nu * P;  // rows P nu_c (P symmetric)
  cross_weight_ = from_matrix(-2.0 * pn);
  cross_bias_ = from_matrix(nu.cwiseProduct(pn).rowwise().sum(), {int64_t(mu.rows())});
}

void Mahalanobis::check_fitted(const char* op) const {
  OODKIT_CHECK(fitted(), op, ": the detector is not fitted (call fit or load first)");
}

int64_t Mahalanobis::num_classes() const { return fitted() ? means_.size(0) : 0; }
int64_t Mahalanobis::feature_dim() const { return fitted() ? means_.size(1) : 0; }

Tensor Mahalanobis::class_distances(const Tensor& z) const {
  const char* op = "Mahalanobis::class_distances";
  check_fitted(op);
  check_float(z, op, "z");
  check_ndim(z, 2, op, "z");
  const int64_t n = z.size(0), d = feature_dim(), k = num_classes();
  OODKIT_CHECK(z.size(1) == d, op, ": 'z' ", shape_str(z.shape()), " must have ", d,
               " features (the fitted dimension)");
  if (n == 0) return Tensor::empty({0, k}, z.dtype(), z.device());
  // y = z - m (m [1, D] broadcast over the rows).
  const Tensor y = ops::sub(z, param_like(center_, z).reshape({1, d}));
  // y^T P y for every row [N, 1], broadcast over the K columns of the cross term.
  const Tensor quad = ops::sum(ops::mul(ops::matmul(y, param_like(precision_, z)), y), 1, true);
  // -2 (P nu_c)^T y + nu_c^T P nu_c.
  const Tensor cross = ops::linear(y, param_like(cross_weight_, z), param_like(cross_bias_, z));
  return ops::add(cross, quad);
}

Tensor Mahalanobis::score(const Tensor& z) const {
  const Tensor dist = class_distances(z);
  // -min_c d = max_c (-d) (gradient to the first arg-max).
  return ops::max(ops::scale(dist, -1.0), 1);
}

void Mahalanobis::save(const std::string& path) const {
  check_fitted("Mahalanobis::save");
  StateWriter(kKind)
      .integer("feature_dim", feature_dim())
      .integer("num_classes", num_classes())
      .integer("rank", rank_)
      .number("rcond", rcond_)
      .text("covariance", "tied, (1/N) sum (z - mu_y)(z - mu_y)^T")
      .text("precision", "pinvh: eigenvalues > rcond * max kept")
      .tensor("means", means_)
      .tensor("center", center_)
      .tensor("covariance", covariance_)
      .tensor("precision", precision_)
      .tensor("class_counts", counts_)
      .save(path);
}

Mahalanobis Mahalanobis::load(const std::string& path) {
  StateReader r(path, kKind);
  const int64_t d = r.integer("feature_dim"), k = r.integer("num_classes");
  OODKIT_CHECK(d > 0 && k > 0, "detector state file '", r.json_path(), "': feature_dim ", d, " and num_classes ", k,
               " must be positive");
  Mahalanobis m;
  m.rank_ = r.integer("rank");
  OODKIT_CHECK(m.rank_ >= 0 && m.rank_ <= d, "detector state file '", r.json_path(), "': rank ", m.rank_,
               " outside [0, ", d, "]");
  m.rcond_ = r.number("rcond");
  m.means_ = r.tensor("means", DType::F64, {k, d});
  m.center_ = r.tensor("center", DType::F64, {d});
  m.covariance_ = r.tensor("covariance", DType::F64, {d, d});
  m.precision_ = r.tensor("precision", DType::F64, {d, d});
  m.counts_ = r.tensor("class_counts", DType::I64, {k});
  r.expect_no_other_tensors();
  m.derive();
  return m;
}

}  // namespace oodkit::ood
