// Mahalanobis distance detector (Lee et al. 2018, "MDS"), fitted on ID training features.
//
// Fit (CPU, double precision, reading float32 features in place): class means mu_c = mean of z
// over the training samples of class c, and ONE shared (tied) covariance of the class-centred
// features,
//   Sigma = (1/N) sum_i (z_i - mu_{y_i}) (z_i - mu_{y_i})^T,
// which is what the official code gets from sklearn's EmpiricalCovariance fitted on the centred
// features (their overall mean is 0); the sum runs over blocks of rows converted to double as
// they are used, as parallel rank updates (detail::scatter, ood/fit_util.h). The precision P is
// the pseudo-inverse of Sigma computed like
// scipy.linalg.pinvh (which EmpiricalCovariance uses): eigen-decompose Sigma = V diag(l) V^T
// (Eigen's SelfAdjointEigenSolver), keep the eigenvalues l_j > rcond * max_j l_j, and
// P = sum over kept j of v_j v_j^T / l_j. The default rcond is D * DBL_EPSILON (scipy's default
// rtol); the discarded directions (e.g. all but N - K of them when D > N - K, or directions the
// features never vary in) contribute nothing to the distance.
//
// Score (either device, float32; float64 on the CPU): score(z) = -min_c (z - mu_c)^T P (z - mu_c)
// (higher = more in-distribution). Computed with GEMMs in coordinates centred at the mean m of
// all training features (less cancellation in float32; the distance is unchanged):
//   y = z - m,  nu_c = mu_c - m,  d_c = y^T P y - 2 (P nu_c)^T y + nu_c^T P nu_c.
// Everything is built from differentiable framework ops (matmul, linear, mul, row-broadcast
// sub/add, sum and max along dim 1 for y^T P y and the row minimum), so when z requires grad the score and the distances carry a graph back
// to z (the input-noise variant of the method differentiates the minimum distance w.r.t. the
// input; at ties the gradient goes to the first minimising class).
#pragma once
#include <cstdint>
#include <string>

#include "framework/tensor.h"

namespace oodkit::ood {

class Mahalanobis {
 public:
  static constexpr const char* kKind = "mahalanobis";

  // z [N, D] float32 or float64 (any device; a CPU tensor is read in place), labels [N] int64 in
  // [0, num_classes) (any device). Every class needs at least one sample. rcond < 0 selects the
  // default D * DBL_EPSILON; otherwise it must lie in [0, 1). Errors: oodkit::Error naming the
  // argument (shapes, label range, empty class, non-finite features, all-zero covariance).
  void fit(const Tensor& z, const Tensor& labels, int64_t num_classes, double rcond = -1.0);

  bool fitted() const { return precision_.defined(); }
  int64_t num_classes() const;
  int64_t feature_dim() const;
  int64_t rank() const { return rank_; }     // eigenvalues kept in the pseudo-inverse
  double rcond() const { return rcond_; }    // the cutoff actually used
  // Fitted statistics, float64 CPU: means [K, D], covariance [D, D], precision [D, D],
  // class_counts [K] int64.
  const Tensor& means() const { return means_; }
  const Tensor& covariance() const { return covariance_; }
  const Tensor& precision() const { return precision_; }
  const Tensor& class_counts() const { return counts_; }

  // z [N, D] float32 (CPU or CUDA) or float64 (CPU) -> [N, K] squared Mahalanobis distances
  // d_nc = (z_n - mu_c)^T P (z_n - mu_c), in z's dtype on z's device. Differentiable w.r.t. z.
  Tensor class_distances(const Tensor& z) const;
  // z [N, D] -> [N]: -min_c d_nc. Differentiable w.r.t. z.
  Tensor score(const Tensor& z) const;

  // <path>.safetensors + <path>.json (ood/state_io.h); load validates and names the file in errors.
  void save(const std::string& path) const;
  static Mahalanobis load(const std::string& path);

 private:
  void derive();  // the scoring parameters below, from means_, center_, precision_
  void check_fitted(const char* op) const;

  Tensor means_, covariance_, precision_, counts_;  // fitted (float64 / int64, CPU)
  Tensor center_;                                   // [D] mean of all training z
  Tensor cross_weight_;                             // [K, D] -2 P nu_c (rows)
  Tensor cross_bias_;                               // [K] nu_c^T P nu_c
  int64_t rank_ = 0;
  double rcond_ = 0.0;
};

}  // namespace oodkit::ood
