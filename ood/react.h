// ReAct, rectified activations (Sun et al., NeurIPS 2021): clip the penultimate features at a
// threshold c before the last linear layer, then score with Energy.
//   c      = percentile p (default 90, numpy 'linear', ood/percentile.h) of ALL entries of z over
//            held-out ID data (as the official code: np.percentile(activations.flatten(), p))
//   logits = W min(z, c) + b
//   score  = T logsumexp(logits / T)  (Energy, T = 1 by default; higher = more in-distribution)
#pragma once
#include <string>

#include "framework/tensor.h"

namespace oodkit::ood {

// min(z, c) elementwise (ops::clamp(z, -inf, c): no gradient through clipped entries).
Tensor react_clip(const Tensor& z, double threshold);
// linear(min(z, c), weight [K, D], bias [K] or undefined) -> [N, K]; differentiable.
Tensor react_logits(const Tensor& z, const Tensor& weight, const Tensor& bias, double threshold);

class ReAct {
 public:
  static constexpr const char* kKind = "react";
  static constexpr double kDefaultPercentile = 90.0;

  // c = percentile(z_id, percentile) over all entries of z_id (any shape, dtype, device).
  // percentile in [0, 100]; NaN in z_id is an Error.
  void fit(const Tensor& z_id, double percentile = kDefaultPercentile);
  // A detector with a given threshold (finite); percentile() is then NaN.
  static ReAct with_threshold(double threshold);

  bool fitted() const { return fitted_; }
  double threshold() const { return threshold_; }
  double percentile() const { return percentile_; }

  Tensor clip(const Tensor& z) const;  // react_clip(z, threshold())
  // z [N, D] float32 (CPU/CUDA) or float64 (CPU); weight/bias of the classifier head, same dtype
  // and device -> [N, K] / [N].
  Tensor logits(const Tensor& z, const Tensor& weight, const Tensor& bias) const;
  Tensor score(const Tensor& z, const Tensor& weight, const Tensor& bias, double temperature = 1.0) const;

  void save(const std::string& path) const;
  static ReAct load(const std::string& path);

 private:
  void check_fitted(const char* op) const;
  bool fitted_ = false;
  double threshold_ = 0.0;
  double percentile_ = 0.0;
};

}  // namespace oodkit::ood
