// A fusion is a detector too: a composite of two registered methods (FusionSpec, ood/detectors.h)
// with its own tuning grid (w or lambda) and saved state. It does not score features itself:
// components() names the methods to score first; combine() fuses their scores at the configured
// weight. Standardized fusions are first fitted on the components' held-out ID scores.
//
// Saved state (kind "fusion", no tensors): name, a, b, fusion_kind ("geometric" | "linear" |
// "standardized"), geometric (0/1), the weight under its key ("w" | "lambda"), and for
// standardized fusions a_mean, a_std, b_mean, b_std. States without fusion_kind (older runs) are
// geometric or linear by `geometric`.
#pragma once
#include <string>
#include <vector>

#include "ood/detectors.h"

namespace oodkit::ood {

class Fusion : public Detector {
 public:
  explicit Fusion(FusionSpec spec) : spec_(std::move(spec)) {}
  std::string name() const override { return spec_.name; }
  const FusionSpec& spec() const { return spec_; }
  std::vector<std::string> components() const override { return {spec_.a, spec_.b}; }
  // Standardized fusions: the mean and std of each component's held-out ID scores (no-op otherwise).
  void fit_components(const std::vector<double>& a_val_id, const std::vector<double>& b_val_id);
  // The fused scores of one set from its component scores (same length), at the configured weight.
  std::vector<double> combine(const std::vector<double>& a, const std::vector<double>& b) const;
  // The Detector interface's forms of the two above: exactly two entries, (a, b).
  void fit_components(const ScoreList& val_id) override;
  std::vector<double> combine(const ScoreList& parts) const override;

  void save(const std::string& path) const override;
  void load(const std::string& path) override;
  // A fusion state of any layout above, whatever its name.
  static std::unique_ptr<Fusion> load_state(const std::string& path);

 private:
  FusionSpec spec_;
  ScoreScale a_scale_, b_scale_;
};

// The fusion state file kinds ("geometric", "linear", "standardized") and back.
std::string fusion_kind_name(FusionKind k);
FusionKind parse_fusion_kind(const std::string& name);

}  // namespace oodkit::ood
