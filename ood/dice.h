// DICE, directed sparsification (Sun & Li, ECCV 2022): keep only the largest contributions of
// the last layer's weights, then score with Energy. As the official code:
//   contribution  V[k, d] = mean_z[d] * W[k, d]  (mean_z: mean of z over the ID training set)
//   threshold     t = quantile of all K*D entries of V at `sparsity` p (numpy 'linear';
//                 np.percentile(V, 100 p) in the official code)
//   mask          M[k, d] = 1 if V[k, d] > t else 0
//   logits        (W * M) z + b,   score = T logsumexp(logits / T)  (Energy; higher = ID)
// So the top (1 - p) fraction of contributions is kept. Tie rule: the comparison is strict, so
// every entry equal to the threshold is dropped (with ties at the threshold slightly fewer than
// (1 - p) K D entries survive; without ties exactly the entries above the interpolated quantile,
// i.e. K D - 1 - floor(p (K D - 1)) of them).
#pragma once
#include <cstdint>
#include <string>

#include "framework/tensor.h"

namespace oodkit::ood {

class Dice {
 public:
  static constexpr const char* kKind = "dice";
  static constexpr double kDefaultSparsity = 0.9;

  // z_train [N, D] ID training features, weight [K, D] and bias [K] (or undefined) of the head;
  // any float dtype and device (read as double). sparsity p in [0, 1).
  void fit(const Tensor& z_train, const Tensor& weight, const Tensor& bias, double sparsity = kDefaultSparsity);

  bool fitted() const { return masked_weight_.defined(); }
  double sparsity() const { return sparsity_; }
  double contribution_threshold() const { return threshold_; }
  int64_t kept() const { return kept_; }  // number of weights the mask keeps
  // float64 CPU: mean_z [D], masked weight W * M [K, D], bias [K] (undefined when fitted without);
  // mask [K, D] uint8.
  const Tensor& mean_feature() const { return mean_; }
  const Tensor& masked_weight() const { return masked_weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& mask() const { return mask_; }

  // z [N, D] float32 (CPU/CUDA) or float64 (CPU) -> [N, K] = (W * M) z + b; differentiable w.r.t. z.
  Tensor logits(const Tensor& z) const;
  // Energy of logits(z): [N].
  Tensor score(const Tensor& z, double temperature = 1.0) const;

  void save(const std::string& path) const;
  static Dice load(const std::string& path);

 private:
  void check_fitted(const char* op) const;
  Tensor mean_, masked_weight_, bias_, mask_;
  double sparsity_ = 0.0;
  double threshold_ = 0.0;
  int64_t kept_ = 0;
};

}  // namespace oodkit::ood
