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

#include "ood/detector.h"
#include "ood/scores.h"

namespace oodkit::ood {

// Fusions combine two methods' scores: NAP-E/A/R = geometric mean of (energy | ash_s | react)
// and nap with weight w; FS+TA + lambda * S_cls for cls in msp, odin, energy, gradnorm, react, ash_s;
// heatmap_<x> = (1 - w) std(S_heatmap) + w std(S_x) for x in nap, fs_ta, msp, energy, where std()
// standardises a score by the mean and standard deviation of its held-out ID (validation) scores.
enum class FusionKind { Geometric, Linear, Standardized };
struct FusionSpec {
  std::string name;         // e.g. "nap_e", "fsta_energy", "heatmap_nap"
  std::string a, b;         // component methods: (s_cls, s_nap), (s_fs, s_cls) or (s_heatmap, s_x)
  FusionKind kind = FusionKind::Linear;  // s_a^w s_b^(1-w) | s_a + lambda s_b | standardised, above
  std::vector<double> grid; // values of w or lambda
  const char* key() const { return kind == FusionKind::Linear ? "lambda" : "w"; }
};
// The fusion table (the registry's fusion entries are made from it): those of detector_names()
// members, then (with_heatmap) those with the heatmap detector.
std::vector<FusionSpec> fusion_specs(bool with_heatmap = false);
// a_scale / b_scale are used only by Standardized fusions.
Tensor fuse(const FusionSpec& spec, const Tensor& a, const Tensor& b, double value, ScoreScale a_scale = {},
            ScoreScale b_scale = {});
// Mean and (population) standard deviation of scores (finite; std 0 becomes 1: a constant score).
ScoreScale score_scale(const std::vector<double>& scores);


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
  // The fitted standardisation of each component (Standardized fusions; {0, 1} otherwise).
  const ScoreScale& a_scale() const { return a_scale_; }
  const ScoreScale& b_scale() const { return b_scale_; }

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
