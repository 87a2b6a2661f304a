#include "ood/vim.h"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "framework/ops/softmax.h"
#include "ood/fit_util.h"
#include "ood/row_norm.h"
#include "ood/state_io.h"

namespace oodkit::ood {

using detail::from_matrix;
using detail::MatrixXdR;
using detail::param_like;
using detail::to_matrix;

int64_t Vim::default_principal_dim(int64_t feature_dim) {
  OODKIT_CHECK(feature_dim >= 2, "Vim::default_principal_dim: feature_dim must be >= 2, got ", feature_dim);
  if (feature_dim >= 2048) return 1000;
  if (feature_dim >= 768) return 512;
  return feature_dim / 2;
}

void Vim::fit(const Tensor& z_train, const Tensor& weight, const Tensor& bias, int64_t principal_dim) {
  const char* op = "Vim::fit";
  detail::check_fit_args(op, z_train, weight, bias);
  const int64_t n = z_train.size(0), d = z_train.size(1), k = weight.size(0);
  const int64_t dp = principal_dim < 0 ? default_principal_dim(d) : principal_dim;
  OODKIT_CHECK(dp < d, op, ": principal_dim ", dp, " must be smaller than the feature dimension ", d,
               " (no residual space would be left)");

  // The passes over the N rows read z in place (float32 features are not copied to double): the
  // covariance in double (detail::scatter), the residual norms and maximum logits in z's precision
  // with sums in double; the D x D statistics are double.
  const Tensor zh = detail::host_float(z_train);
  const MatrixXdR W = to_matrix(weight);
  const Eigen::VectorXd b = bias.defined() ? Eigen::VectorXd(to_matrix(bias.reshape({k, 1})).col(0))
                                           : Eigen::VectorXd::Zero(k);
  OODKIT_CHECK(detail::all_finite(zh), op, ": 'z_train' contains non-finite values");
  OODKIT_CHECK(W.allFinite() && b.allFinite(), op, ": 'weight' or 'bias' contains non-finite values");

  // u = -pinv(W) b: the minimum-norm solution of W u = -b.
  const Eigen::MatrixXd w_col = W;
  const Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(w_col);
  const Eigen::VectorXd minus_b = -b;
  const Eigen::VectorXd u = cod.solve(minus_b);
  const MatrixXdR origin = u.transpose();

  // Covariance of z - u about u (blocked rank updates, detail::scatter), and its eigenvectors
  // (ascending eigenvalues).
  Eigen::MatrixXd c = detail::scatter(zh, origin, nullptr) / double(n);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(c);
  OODKIT_CHECK(es.info() == Eigen::Success, op, ": eigen-decomposition of the covariance failed");
  // The residual space: the D - D_p eigenvectors of the smallest eigenvalues.
  const Eigen::MatrixXd ns = es.eigenvectors().leftCols(d - dp);

  // Second pass, over the same centred blocks x = z - u: the residual norms ||x NS|| and the
  // maximum logits, (x W^T)_k + (W u + b)_k = (z W^T + b)_k, both summed in double per row.
  std::vector<double> norm(static_cast<size_t>(n)), max_logit(static_cast<size_t>(n));
  const Eigen::VectorXd logit_at_u = W * u + b;  // [K]
  dispatch_float(zh.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const detail::MatrixR<T> ns_t = ns.cast<T>();
    const detail::MatrixR<T> w_t = W.cast<T>().transpose();  // [D, K]
    detail::for_centred_blocks<T, T>(zh, origin, nullptr, [&](int, int64_t r0, const detail::MatrixR<T>& x) {
      const detail::MatrixR<T> r = x * ns_t, l = x * w_t;
      for (int64_t i = 0; i < x.rows(); ++i) {
        double s = 0.0, m = -INFINITY;
        for (int64_t j = 0; j < r.cols(); ++j) s += double(r(i, j)) * double(r(i, j));
        for (int64_t j = 0; j < k; ++j) m = std::max(m, double(l(i, j)) + logit_at_u(j));
        norm[size_t(r0 + i)] = std::sqrt(s);
        max_logit[size_t(r0 + i)] = m;
      }
    });
  });
  double max_logit_sum = 0.0, norm_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    max_logit_sum += max_logit[size_t(i)];
    norm_sum += norm[size_t(i)];
  }
  const double mean_norm = norm_sum / double(n);
  OODKIT_CHECK(mean_norm > 0.0, op, ": the training features have no residual beyond the top ", dp,
               " principal directions (alpha would be infinite)");

  origin_ = from_matrix(u, {d});
  null_space_ = from_matrix(ns);
  eigenvalues_ = from_matrix(es.eigenvalues(), {d});
  principal_dim_ = dp;
  num_classes_ = k;
  alpha_ = (max_logit_sum / double(n)) / mean_norm;
  derive();
}

void Vim::derive() {
  const MatrixXdR ns = to_matrix(null_space_);
  const Eigen::VectorXd u = to_matrix(origin_.reshape({-1, 1})).col(0);
  proj_weight_ = from_matrix(ns.transpose());
  proj_bias_ = from_matrix(-(ns.transpose() * u), {int64_t(ns.cols())});
}

void Vim::check_fitted(const char* op) const {
  OODKIT_CHECK(fitted(), op, ": the detector is not fitted (call fit or load first)");
}

Tensor Vim::residual_norm(const Tensor& z) const {
  const char* op = "Vim::residual_norm";
  check_fitted(op);
  check_float(z, op, "z");
  check_ndim(z, 2, op, "z");
  OODKIT_CHECK(z.size(1) == feature_dim(), op, ": 'z' ", shape_str(z.shape()), " must have ", feature_dim(),
               " features (the fitted dimension)");
  // (z - u) NS = z NS - u^T NS, as one linear layer.
  return row_norm(ops::linear(z, param_like(proj_weight_, z), param_like(proj_bias_, z)));
}

Tensor Vim::virtual_logit(const Tensor& z) const { return ops::scale(residual_norm(z), alpha_); }

Tensor Vim::score(const Tensor& logits, const Tensor& z) const {
  const char* op = "Vim::score";
  check_fitted(op);
  check_float(logits, op, "logits");
  check_ndim(logits, 2, op, "logits");
  check_same_device(logits, z, op, "logits", "z");
  check_dtype(z, logits.dtype(), op, "z");
  OODKIT_CHECK(logits.size(0) == z.size(0), op, ": 'logits' ", shape_str(logits.shape()), " and 'z' ",
               shape_str(z.shape()), " must have the same number of rows");
  OODKIT_CHECK(logits.size(1) == num_classes_, op, ": 'logits' ", shape_str(logits.shape()), " must have ",
               num_classes_, " classes (the fitted head's)");
  return ops::sub(ops::logsumexp(logits), virtual_logit(z));
}

void Vim::save(const std::string& path) const {
  check_fitted("Vim::save");
  StateWriter(kKind)
      .integer("feature_dim", feature_dim())
      .integer("principal_dim", principal_dim_)
      .integer("num_classes", num_classes_)
      .number("alpha", alpha_)
      .text("score", "logsumexp(logits) - alpha * ||(z - origin) null_space||")
      .tensor("origin", origin_)
      .tensor("null_space", null_space_)
      .tensor("eigenvalues", eigenvalues_)
      .save(path);
}

Vim Vim::load(const std::string& path) {
  StateReader r(path, kKind);
  const int64_t d = r.integer("feature_dim"), dp = r.integer("principal_dim"), k = r.integer("num_classes");
  OODKIT_CHECK(d > 0 && k > 0 && dp >= 0 && dp < d, "detector state file '", r.json_path(), "': feature_dim ", d,
               ", principal_dim ", dp, ", num_classes ", k, " are inconsistent (need 0 <= principal_dim < feature_dim)");
  Vim v;
  v.principal_dim_ = dp;
  v.num_classes_ = k;
  v.alpha_ = r.number("alpha");
  v.origin_ = r.tensor("origin", DType::F64, {d});
  v.null_space_ = r.tensor("null_space", DType::F64, {d, d - dp});
  v.eigenvalues_ = r.tensor("eigenvalues", DType::F64, {d});
  r.expect_no_other_tensors();
  v.derive();
  return v;
}

}  // namespace oodkit::ood
