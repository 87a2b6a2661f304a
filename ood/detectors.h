// Post-hoc OOD detectors behind one interface. A detector is fitted once on ID data
// (FitContext), configured with one hyper-parameter setting at a time (the protocol tries
// each setting of grid() on the validation pair and keeps the best), and scores either the
// cached Features of a dataset or, for input-perturbation methods, the images themselves.
// Convention: higher score = more in-distribution. Scores are [N] on the features' device.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ood/features.h"
#include "ood/scores.h"

namespace oodkit::ood {

using Params = std::map<std::string, double>;
std::string params_str(const Params& p);  // "k=50, p=90" ("-" when empty)

// A tuning grid as data: (key, values) axes. Its settings are the Cartesian product, the first
// axis outermost (the protocol keeps the first best setting, so the order matters).
using Axes = std::vector<std::pair<std::string, std::vector<double>>>;
std::vector<Params> expand_grid(const Axes& axes);  // {Params{}} when there are no axes


struct FitContext {
  const Features* train = nullptr;   // ID training features (class statistics, feature banks)
  Tensor train_labels;               // int64 [N] true labels of `train`
  const Features* heldout = nullptr; // held-out ID features (ReAct's percentile)
  Tensor weight, bias;               // the classifier head, [K, D] and [K], on the features' device
};

// What input-perturbation detectors need to run the network.
struct ImageContext {
  models::Classifier* model = nullptr;
  std::array<float, 3> input_std{1.f, 1.f, 1.f};  // normalisation std per channel
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual std::string name() const = 0;
  // The settings tried on the validation pair: expand_grid(axes()) unless a detector narrows it
  // to what its fitted state allows (knn) or reads it from the features (fs_ta).
  virtual std::vector<Params> grid() const { return expand_grid(axes_); }
  // The official code's setting, used when tuning is off for this detector (grid().front() when
  // the registration gives none).
  virtual Params defaults() const { return defaults_.empty() ? grid().front() : defaults_; }
  // Set by make_detector from the registration, then by apply_settings (--set).
  void set_tuning(Axes axes, Params defaults) {
    axes_ = std::move(axes);
    defaults_ = std::move(defaults);
  }
  const Axes& axes() const { return axes_; }
  // Composite detectors (fusions, ood/fusion.h) name the methods whose scores they combine; the
  // caller scores those and passes their scores on. Empty for a detector that scores features.
  virtual std::vector<std::string> components() const { return {}; }
  // Composite detectors only, with one entry per components() name, in that order (each [N]
  // host scores of one set): fit_components fits on the components' held-out ID scores,
  // combine fuses one set's component scores at the configured setting. The base class refuses
  // both (a detector without components scores features or images).
  using ScoreList = std::vector<const std::vector<double>*>;
  virtual void fit_components(const ScoreList& val_id);
  virtual std::vector<double> combine(const ScoreList& parts) const;
  virtual void fit(const FitContext& ctx) {}
  // Detectors whose fitted state belongs to one classifier (the heatmap decoder) refuse another:
  // an Error naming `what` when `fingerprint` (ood::module_fingerprint) differs. Others accept any.
  virtual void check_classifier(const std::string& fingerprint, const std::string& what) const {}
  // Applies one setting (a member of grid(), or a saved choice).
  virtual void configure(const Params& p) { params_ = p; }
  const Params& params() const { return params_; }

  // Fitted state and the configured setting as <path>.json + <path>.safetensors (ood/state_io.h);
  // detectors with fitted statistics add their own pair at <path>.<part>. After load() the
  // detector scores without fit() or configure().
  virtual void save(const std::string& path) const;
  virtual void load(const std::string& path);

  virtual bool uses_images() const { return false; }
  virtual Tensor score(const Features& f) const;  // feature-based detectors
  // Input-perturbation detectors: images [B, 3, H, W] normalised, on the model's device.
  virtual Tensor score_images(const ImageContext& ctx, const Tensor& images) const;

 protected:
  double param(const char* key) const;
  virtual void save_fitted(const std::string& path) const {}  // path: the detector's base path
  virtual void load_fitted(const std::string& path) {}
  Params params_;
  Axes axes_;        // the tuning grid (registration, --set)
  Params defaults_;  // the official setting (registration, --set); empty: grid().front()
};

// ---- The registry: one registration per method (detectors.cpp, detector_registry()) ----------
// Adding a detector or a fusion means adding one entry there; make_detector, detector_names,
// all_method_names, `oodkit eval --help`, the protocol's choice of image-based methods, the
// feature columns extracted, --set validation and the README list (tested) all derive from it.
struct DetectorInfo {
  std::string name;
  std::function<std::unique_ptr<Detector>()> make;  // unfitted, without tuning (make_detector adds it)
  bool uses_images = false;      // input perturbation: scores images (ImageContext), not features
  Params defaults;               // the official setting; empty: the grid's first
  Axes grid;                     // tuning grid (fs_ta: empty values = the extracted TA thresholds)
  FeatureNeeds needs;            // feature columns read (a fusion: its components')
  std::vector<std::string> components{};  // fusions: the two methods combined
  bool needs_decoder = false;    // heatmap and its fusions: only with a trained decoder (--heatmap)
};
const std::vector<DetectorInfo>& detector_registry();
const DetectorInfo& detector_info(const std::string& name);  // unknown name: error listing the known
bool is_registered(const std::string& name);

// A registered method, unfitted, with its registration's grid and defaults. "heatmap" comes
// without a decoder (HeatmapDetector::load, or `oodkit eval --heatmap DIR`).
std::unique_ptr<Detector> make_detector(const std::string& name);
// A detector or fusion saved with Detector::save (its kind is read from <path>.json; kind
// "fusion" is a Fusion, ood/fusion.h).
std::unique_ptr<Detector> load_detector(const std::string& path);
// The registered detectors that score by themselves: no fusions, no "heatmap".
std::vector<std::string> detector_names();
// All method names in registry order: detectors then fusions; with_heatmap adds "heatmap" and its fusions.
std::vector<std::string> all_method_names(bool with_heatmap = false);
// all_method_names(with_heatmap) as one line "msp, maxlogit, ..." (errors, --help).
std::string method_list(bool with_heatmap = true);

// Over methods and (recursively) their components:
FeatureNeeds feature_needs(const std::vector<std::string>& methods);
bool needs_images(const std::vector<std::string>& methods);
bool needs_decoder(const std::vector<std::string>& methods);

// --set overrides of the registered grids: detector -> key -> values. One value fixes the key
// (no tuning over it; it is also the default), a list is the key's grid.
using Settings = std::map<std::string, std::map<std::string, std::vector<double>>>;
// Parses "<method>.<key>=<v>[,<v>...]" entries; an unknown method or key, or a bad number, is an
// error naming the entry and listing the valid names.
Settings parse_settings(const std::vector<std::string>& entries);
// Applies the overrides for d.name() (if any) to d's grid and defaults.
void apply_settings(Detector& d, const Settings& settings);

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

}  // namespace oodkit::ood
