#include "ood/dice.h"

#include <cmath>

#include "framework/ops/linear.h"
#include "framework/ops/softmax.h"
#include "ood/fit_util.h"
#include "ood/percentile.h"
#include "ood/state_io.h"

namespace oodkit::ood {

using detail::from_matrix;
using detail::MatrixXdR;
using detail::param_like;
using detail::to_matrix;

void Dice::fit(const Tensor& z_train, const Tensor& weight, const Tensor& bias, double sparsity) {
  const char* op = "Dice::fit";
  detail::check_fit_args(op, z_train, weight, bias);
  const int64_t d = z_train.size(1), k = weight.size(0);
  OODKIT_CHECK(sparsity >= 0.0 && sparsity < 1.0, op, ": sparsity must lie in [0, 1), got ", sparsity);

  const MatrixXdR Z = to_matrix(z_train);
  const MatrixXdR W = to_matrix(weight);
  OODKIT_CHECK(Z.allFinite(), op, ": 'z_train' contains non-finite values");
  OODKIT_CHECK(W.allFinite(), op, ": 'weight' contains non-finite values");
  const Eigen::RowVectorXd mean = Z.colwise().mean();
  const MatrixXdR contrib = W.array().rowwise() * mean.array();
  const double t = quantile(from_matrix(contrib), sparsity);

  Tensor mask = Tensor::empty({k, d}, DType::U8);
  uint8_t* pm = mask.data<uint8_t>();
  MatrixXdR masked = W;
  int64_t kept = 0;
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < d; ++c) {
      const bool keep = contrib(r, c) > t;
      pm[r * d + c] = keep ? 1 : 0;
      if (!keep) masked(r, c) = 0.0;
      kept += keep;
    }

  mean_ = from_matrix(mean, {d});
  masked_weight_ = from_matrix(masked);
  bias_ = bias.defined() ? detail::host_f64(bias) : Tensor();
  mask_ = mask;
  sparsity_ = sparsity;
  threshold_ = t;
  kept_ = kept;
}

void Dice::check_fitted(const char* op) const {
  OODKIT_CHECK(fitted(), op, ": the detector is not fitted (call fit or load first)");
}

Tensor Dice::logits(const Tensor& z) const {
  const char* op = "Dice::logits";
  check_fitted(op);
  check_float(z, op, "z");
  check_ndim(z, 2, op, "z");
  OODKIT_CHECK(z.size(1) == masked_weight_.size(1), op, ": 'z' ", shape_str(z.shape()), " must have ",
               masked_weight_.size(1), " features (the fitted dimension)");
  return ops::linear(z, param_like(masked_weight_, z), bias_.defined() ? param_like(bias_, z) : Tensor());
}

Tensor Dice::score(const Tensor& z, double temperature) const { return ops::logsumexp(logits(z), temperature); }

void Dice::save(const std::string& path) const {
  check_fitted("Dice::save");
  const int64_t k = masked_weight_.size(0), d = masked_weight_.size(1);
  StateWriter w(kKind);
  w.integer("feature_dim", d)
      .integer("num_classes", k)
      .number("sparsity", sparsity_)
      .number("contribution_threshold", threshold_)
      .integer("kept", kept_)
      .integer("has_bias", bias_.defined() ? 1 : 0)
      .tensor("mean_feature", mean_)
      .tensor("mask", mask_)
      .tensor("masked_weight", masked_weight_);
  if (bias_.defined()) w.tensor("bias", bias_);
  w.save(path);
}

Dice Dice::load(const std::string& path) {
  StateReader r(path, kKind);
  const int64_t d = r.integer("feature_dim"), k = r.integer("num_classes"), has_bias = r.integer("has_bias");
  OODKIT_CHECK(d > 0 && k > 0 && (has_bias == 0 || has_bias == 1), "detector state file '", r.json_path(),
               "': feature_dim ", d, ", num_classes ", k, ", has_bias ", has_bias, " are invalid");
  Dice x;
  x.sparsity_ = r.number("sparsity");
  OODKIT_CHECK(x.sparsity_ >= 0.0 && x.sparsity_ < 1.0, "detector state file '", r.json_path(), "': sparsity ",
               x.sparsity_, " outside [0, 1)");
  x.threshold_ = r.number("contribution_threshold");
  x.kept_ = r.integer("kept");
  x.mean_ = r.tensor("mean_feature", DType::F64, {d});
  x.mask_ = r.tensor("mask", DType::U8, {k, d});
  x.masked_weight_ = r.tensor("masked_weight", DType::F64, {k, d});
  if (has_bias) x.bias_ = r.tensor("bias", DType::F64, {k});
  r.expect_no_other_tensors();
  // The masked weight must be zero wherever the mask drops an entry, and the count must agree.
  const uint8_t* pm = x.mask_.data<uint8_t>();
  const double* pw = x.masked_weight_.data<double>();
  int64_t kept = 0;
  for (int64_t i = 0; i < k * d; ++i) {
    OODKIT_CHECK(pm[i] <= 1 && (pm[i] == 1 || pw[i] == 0.0), "detector state file '", r.tensors_path(),
                 "': 'mask' and 'masked_weight' disagree at flat index ", i);
    kept += pm[i];
  }
  OODKIT_CHECK(kept == x.kept_, "detector state file '", r.json_path(), "': 'kept' is ", x.kept_, " but the mask keeps ",
               kept);
  return x;
}

}  // namespace oodkit::ood
