// Fusions of any number of detectors (`--fuse`, and the recommended detector `fused`): each
// component's score is put on one scale fitted on held-out ID scores only, then the scaled scores
// are combined with weights on the simplex (docs/methods.md, "Fusing any detectors").
//
//   z      S = sum_i K w_i z_i,          z_i = (s_i - m_i) / sd_i  (held-out ID mean, population std)
//   p      S = 2 sum_i K w_i ln p_i      (Fisher's method; equal weights: minus Fisher's X^2)
//   pmean  S = sum_i w_i p_i             (equal weights: the mean p-value)
// with p_i = (1 + #{held-out ID scores of component i <= s_i}) / (n + 1), the conservative
// empirical p-value (a tie counts as at least as extreme), in [1/(n+1), 1]. K components, weights
// w_i >= 0 summing to 1 (equal: 1/K). Higher S = more ID, as for every detector.
//
// NaN: a held-out ID score that is not finite is refused at fit time (an Error naming the
// component); a NaN component score of a scored image gives that image a NaN fused score (the
// metrics then refuse it, naming the set); +-inf map to z = +-inf and p = 1 or 1/(n+1).
//
// Saved state (kind "multi_fusion", ood/state_io.h): name, combination, components (joined by
// "+"), w1..wK, m1..mK and sd1..sdK, and the tensor "heldout<i>" (float64 [n], sorted) per
// component for the p combinations.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ood/detector.h"
#include "ood/scores.h"

namespace oodkit::ood {

enum class Combination { Z, Fisher, PMean };
std::string combination_name(Combination c);               // "z", "p", "pmean"
Combination parse_combination(const std::string& name);    // error naming the valid ones

// One --fuse entry: "[KIND:]A+B[+C...]", KIND in z | p | pmean (default z), with a trailing "w"
// (zw, pw, pmeanw) to choose the weights on the validation pair (simplex_grid) instead of equal.
struct FuseSpec {
  Combination combination = Combination::Z;
  bool tune_weights = false;
  std::vector<std::string> components;  // 2..kMaxFuseComponents distinct registered detectors
  std::string name() const;             // "fuse_z(heatmap+knn+nap)", "fuse_zw(knn+nap)"
};
constexpr size_t kMaxFuseComponents = 8;
// Parses a --fuse entry; `option` names the option in errors. Components must be registered
// methods (fusions included); "fused" and nested fuse names are refused.
FuseSpec parse_fuse_spec(const std::string& text, const std::string& option = "--fuse");
// Whether `name` has the form of FuseSpec::name(), and its spec back (an error when malformed).
bool is_fuse_name(const std::string& name);
FuseSpec parse_fuse_name(const std::string& name);

// One component's scale, fitted on its held-out ID scores (all finite, at least one).
struct ComponentScale {
  ScoreScale z;                 // mean, population std (0 -> 1)
  std::vector<double> sorted;   // the held-out ID scores, ascending (the p combinations)
};
ComponentScale fit_component_scale(const std::vector<double>& heldout_id, const std::string& what);
// (1 + #{x in sorted : x <= s}) / (n + 1); NaN for NaN s.
double empirical_p(double s, const std::vector<double>& sorted);
// The fused scores of N images from K components' scores (parts[i]: [N]) at weights w (sum 1).
std::vector<double> combine_scaled(Combination c, const std::vector<double>& w, const std::vector<ComponentScale>& scales,
                                   const std::vector<const std::vector<double>*>& parts);

// Equal weights, then every point of {w : w_i = n_i / m, n_i >= 0 integers, sum n_i = m} in
// lexicographic order of (n_1, ..., n_K) descending, without repeating the equal point; m = 10
// for K = 2, 6 for K = 3, 4 for K >= 4.
std::vector<std::vector<double>> simplex_grid(size_t k);

// A fusion of several detectors (--fuse names, "fused"): what it combines and how.
struct FusionSummary {
  std::string combination;              // z | p | pmean
  std::vector<std::string> components;  // the fusion's order ("fused": the order selected)
  std::vector<double> weights;          // the kept w_i (sum 1)
  std::vector<ScoreScale> scales;       // each component's held-out ID mean and std
  int64_t n_heldout = 0;                // held-out ID scores each scale was fitted on
  std::vector<std::string> candidates;  // "fused" only: the detectors it selected from
  std::vector<double> selection_auroc;  // "fused" only: validation AUROC after each addition
};

class MultiFusion : public Detector {
 public:
  MultiFusion(std::string name, Combination c, std::vector<std::string> components, bool tune_weights);
  explicit MultiFusion(const FuseSpec& spec) : MultiFusion(spec.name(), spec.combination, spec.components, spec.tune_weights) {}
  std::string name() const override { return name_; }
  std::vector<std::string> components() const override { return components_; }
  // Equal weights, or (tune_weights) simplex_grid: params "w1".."wK".
  std::vector<Params> grid() const override;
  Params defaults() const override { return grid().front(); }
  void fit_components(const ScoreList& val_id) override;   // the components' held-out ID scores
  std::vector<double> combine(const ScoreList& parts) const override;
  void save(const std::string& path) const override;
  void load(const std::string& path) override;
  static std::unique_ptr<MultiFusion> load_state(const std::string& path);

  Combination combination() const { return combination_; }
  const std::vector<ComponentScale>& scales() const { return scales_; }
  std::vector<double> weights() const;  // the configured w1..wK
  bool describe_fusion(FusionSummary& out) const override;

 private:
  std::string name_;
  Combination combination_;
  std::vector<std::string> components_;
  bool tune_weights_;
  std::vector<ComponentScale> scales_;
};

// The recommended detector `fused`: greedy forward selection on the validation pair. Start from
// the candidate with the best validation AUROC (alone; first on ties), then repeatedly add the
// candidate whose equal-weight fusion (combination c, each scale fitted on val_id) has the best
// validation AUROC, while that AUROC exceeds the current one by more than `margin` and fewer than
// `max_size` are chosen. val_id[i], val_ood[i]: candidate i's held-out ID and validation OOD scores.
struct FusedOptions {
  Combination combination = Combination::Z;
  double margin = 0.002;   // AUROC as a fraction (0.2 points)
  size_t max_size = 4;
  std::vector<std::string> candidates;  // empty: fused_candidates()
};
struct FusedSelection {
  std::vector<size_t> chosen;   // candidate indices in the order added
  std::vector<double> auroc;    // validation AUROC after each addition
};
FusedSelection select_fused(Combination c, const std::vector<const std::vector<double>*>& val_id,
                            const std::vector<const std::vector<double>*>& val_ood, double margin, size_t max_size);
// The default candidates: every stand-alone detector (detector_names()), and "heatmap" with a decoder.
std::vector<std::string> fused_candidates(bool with_heatmap);

}  // namespace oodkit::ood
