// Post-hoc OOD detectors behind one interface. A detector is fitted once on ID data
// (FitContext), configured with one hyper-parameter setting at a time (the protocol tries
// each setting of grid() on the validation pair and keeps the best), and scores either the
// cached Features of a dataset or, for input-perturbation methods, the images themselves.
// Convention: higher score = more in-distribution. Scores are [N] on the features' device.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ood/features.h"
#include "ood/scores.h"

namespace oodkit::ood {

using Params = std::map<std::string, double>;
std::string params_str(const Params& p);  // "k=50, p=90" ("-" when empty)

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
  virtual std::vector<Params> grid() const { return {Params{}}; }
  // The official code's setting, used when tuning is off for this detector.
  virtual Params defaults() const { return grid().front(); }
  virtual void fit(const FitContext& ctx) {}
  // Applies one setting (a member of grid(), or a saved choice).
  virtual void configure(const Params& p) { params_ = p; }
  const Params& params() const { return params_; }

  // Fitted state and the configured setting as <path>.json + <path>.safetensors (ood/state_io.h);
  // detectors with fitted statistics add their own pair at <path>.<part>. After load() the
  // detector scores without fit() or configure().
  void save(const std::string& path) const;
  void load(const std::string& path);

  virtual bool uses_images() const { return false; }
  virtual Tensor score(const Features& f) const;  // feature-based detectors
  // Input-perturbation detectors: images [B, 3, H, W] normalised, on the model's device.
  virtual Tensor score_images(const ImageContext& ctx, const Tensor& images) const;

 protected:
  double param(const char* key) const;
  virtual void save_fitted(const std::string& path) const {}  // path: the detector's base path
  virtual void load_fitted(const std::string& path) {}
  Params params_;
};

// The detectors by name: msp, maxlogit, energy, odin, mahalanobis, mahalanobis_noise, react,
// ash_p, ash_b, ash_s, dice, knn, gradnorm, vim, nap, nap_mean, fs, fs_ta; and "heatmap"
// (ood/heatmap.h), which is not in detector_names(): it needs a trained decoder (load() or
// `oodkit eval --heatmap DIR`).
std::unique_ptr<Detector> make_detector(const std::string& name);
// A detector saved with Detector::save (its kind is read from <path>.json).
std::unique_ptr<Detector> load_detector(const std::string& path);
std::vector<std::string> detector_names();

// Fusions combine two detectors' scores: NAP-E/A/R = geometric mean of (energy | ash_s | react)
// and nap with weight w; FS+TA + lambda * S_cls for cls in msp, odin, energy, gradnorm, react, ash_s;
// heatmap_<x> = (1 - w) std(S_heatmap) + w std(S_x) for x in nap, fs_ta, msp, energy, where std()
// standardises a score by the mean and standard deviation of its held-out ID (validation) scores.
enum class FusionKind { Geometric, Linear, Standardized };
struct FusionSpec {
  std::string name;         // e.g. "nap_e", "fsta_energy", "heatmap_nap"
  std::string a, b;         // component detectors: (s_cls, s_nap), (s_fs, s_cls) or (s_heatmap, s_x)
  FusionKind kind = FusionKind::Linear;  // s_a^w s_b^(1-w) | s_a + lambda s_b | standardised, above
  std::vector<double> grid; // values of w or lambda
  const char* key() const { return kind == FusionKind::Linear ? "lambda" : "w"; }
};
// The fusions of detector_names() members, then (with_heatmap) those with the heatmap detector.
std::vector<FusionSpec> fusion_specs(bool with_heatmap = false);
// a_scale / b_scale are used only by Standardized fusions.
Tensor fuse(const FusionSpec& spec, const Tensor& a, const Tensor& b, double value, ScoreScale a_scale = {},
            ScoreScale b_scale = {});
// Mean and (population) standard deviation of scores (finite; std 0 becomes 1: a constant score).
ScoreScale score_scale(const std::vector<double>& scores);

}  // namespace oodkit::ood
