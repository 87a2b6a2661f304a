#include "ood/react.h"

#include <cmath>
#include <limits>

#include "framework/ops/activation.h"
#include "framework/ops/linear.h"
#include "framework/ops/softmax.h"
#include "ood/percentile.h"
#include "ood/state_io.h"

namespace oodkit::ood {

Tensor react_clip(const Tensor& z, double threshold) {
  OODKIT_CHECK(std::isfinite(threshold), "react_clip: threshold must be finite, got ", threshold);
  return ops::clamp(z, -std::numeric_limits<double>::infinity(), threshold);
}

Tensor react_logits(const Tensor& z, const Tensor& weight, const Tensor& bias, double threshold) {
  check_ndim(z, 2, "react_logits", "z");
  return ops::linear(react_clip(z, threshold), weight, bias);
}

void ReAct::fit(const Tensor& z_id, double percentile) {
  OODKIT_CHECK(percentile >= 0.0 && percentile <= 100.0, "ReAct::fit: percentile must lie in [0, 100], got ",
               percentile);
  threshold_ = ood::percentile(z_id, percentile);
  OODKIT_CHECK(std::isfinite(threshold_), "ReAct::fit: the threshold (percentile ", percentile, " of 'z_id') is ",
               threshold_);
  percentile_ = percentile;
  fitted_ = true;
}

ReAct ReAct::with_threshold(double threshold) {
  OODKIT_CHECK(std::isfinite(threshold), "ReAct::with_threshold: threshold must be finite, got ", threshold);
  ReAct r;
  r.threshold_ = threshold;
  r.percentile_ = std::numeric_limits<double>::quiet_NaN();
  r.fitted_ = true;
  return r;
}

void ReAct::check_fitted(const char* op) const {
  OODKIT_CHECK(fitted_, op, ": the detector is not fitted (call fit, with_threshold or load first)");
}

Tensor ReAct::clip(const Tensor& z) const {
  check_fitted("ReAct::clip");
  return react_clip(z, threshold_);
}

Tensor ReAct::logits(const Tensor& z, const Tensor& weight, const Tensor& bias) const {
  check_fitted("ReAct::logits");
  return react_logits(z, weight, bias, threshold_);
}

Tensor ReAct::score(const Tensor& z, const Tensor& weight, const Tensor& bias, double temperature) const {
  return ops::logsumexp(logits(z, weight, bias), temperature);
}

void ReAct::save(const std::string& path) const {
  check_fitted("ReAct::save");
  StateWriter w(kKind);
  w.number("threshold", threshold_);
  if (std::isfinite(percentile_)) w.number("percentile", percentile_);
  w.save(path);
}

ReAct ReAct::load(const std::string& path) {
  StateReader r(path, kKind);
  r.expect_no_other_tensors();
  ReAct a = with_threshold(r.number("threshold"));
  // "percentile" is absent for a detector made with with_threshold.
  if (r.has("percentile")) {
    a.percentile_ = r.number("percentile");
    OODKIT_CHECK(a.percentile_ >= 0.0 && a.percentile_ <= 100.0, "detector state file '", r.json_path(),
                 "': percentile ", a.percentile_, " outside [0, 100]");
  }
  return a;
}

}  // namespace oodkit::ood
