// ViM, Virtual-logit Matching (Wang et al., CVPR 2022), fitted on ID training features.
//
// Fit (CPU; the covariance and the D x D statistics in double, the residual norms and maximum
// logits of the N rows in z's precision with sums in double; ood/fit_util.h), as the official
// code (haoqiwang/vim):
//   origin      u = -pinv(W) b  (the minimum-norm least-squares solution of W u = -b, through Eigen's
//               CompleteOrthogonalDecomposition; for a full-row-rank W, as any trained classifier
//               head with K <= D, this is exactly -pinv(W) b)
//   covariance  C = (1/N) sum_i (z_i - u)(z_i - u)^T  (EmpiricalCovariance(assume_centered=True) on
//               z - u: centred at u, not at the mean)
//   subspaces   P = the top D_p eigenvectors of C (largest eigenvalues; Eigen's
//               SelfAdjointEigenSolver), NS = the other D - D_p, an orthonormal basis [D, D - D_p]
//   alpha       = mean_i max_k (W z_i + b)_k / mean_i ||(z_i - u) NS||  (over the training set)
// Score (either device): score = logsumexp(logits) - alpha * ||(z - u) NS||, i.e. docs/methods.md's
// "logsumexp(f) - alpha ||z^{P-perp}||" (||(z - u) NS NS^T|| = ||(z - u) NS|| as NS is orthonormal;
// the official code's energy-minus-virtual-logit form). Higher = more in-distribution.
#pragma once
#include <cstdint>
#include <string>

#include "framework/tensor.h"

namespace oodkit::ood {

class Vim {
 public:
  static constexpr const char* kKind = "vim";

  // The official code's choice of D_p for a feature dimension D: 1000 for D >= 2048, 512 for
  // D >= 768, else D / 2 (so 256 for the 512-d ResNet-18 features).
  static int64_t default_principal_dim(int64_t feature_dim);

  // z_train [N, D] ID training features, weight [K, D] and bias [K] (or undefined: zeros) of the
  // classifier's last layer; float32 or float64, any device (a CPU z is read in place; another
  // dtype is read as float64). principal_dim D_p < 0
  // selects default_principal_dim(D); otherwise 0 <= D_p < D (D_p >= D is an Error: no residual
  // space would be left).
  void fit(const Tensor& z_train, const Tensor& weight, const Tensor& bias, int64_t principal_dim = -1);

  bool fitted() const { return null_space_.defined(); }
  int64_t feature_dim() const { return fitted() ? null_space_.size(0) : 0; }
  int64_t principal_dim() const { return principal_dim_; }
  double alpha() const { return alpha_; }
  // float64 CPU: origin u [D]; null_space NS [D, D - D_p] (orthonormal columns, eigenvalues of C
  // ascending); eigenvalues of C [D], ascending.
  const Tensor& origin() const { return origin_; }
  const Tensor& null_space() const { return null_space_; }
  const Tensor& eigenvalues() const { return eigenvalues_; }

  // z [N, D] float32 (CPU/CUDA) or float64 (CPU) -> [N] ||(z - u) NS||, in z's dtype and device.
  Tensor residual_norm(const Tensor& z) const;
  // alpha * residual_norm(z): the virtual logit.
  Tensor virtual_logit(const Tensor& z) const;
  // logits [N, K] (the classifier's, for the same inputs), z [N, D] -> [N]
  // logsumexp(logits) - alpha * ||(z - u) NS||. Differentiable w.r.t. both.
  Tensor score(const Tensor& logits, const Tensor& z) const;

  void save(const std::string& path) const;
  static Vim load(const std::string& path);

 private:
  void derive();
  void check_fitted(const char* op) const;

  Tensor origin_, null_space_, eigenvalues_;  // fitted (float64, CPU)
  Tensor proj_weight_, proj_bias_;            // NS^T [D - D_p, D] and -(NS^T u) [D - D_p]
  int64_t principal_dim_ = 0;
  int64_t num_classes_ = 0;
  double alpha_ = 0.0;
};

}  // namespace oodkit::ood
