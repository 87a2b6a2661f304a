// The post-hoc OOD detector interface. A detector is fitted once on ID data
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

namespace oodkit::ood {

using Params = std::map<std::string, double>;
std::string params_str(const Params& p);  // "k=50, p=90" ("-" when empty)

// A tuning grid as data: (key, values) axes. Its settings are the Cartesian product, the first
// axis outermost (the protocol keeps the first best setting, so the order matters).
using Axes = std::vector<std::pair<std::string, std::vector<double>>>;
std::vector<Params> expand_grid(const Axes& axes);  // {Params{}} when there are no axes


struct FusionSummary;  // ood/multi_fusion.h

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
  // Composite detectors fill in `out`'s combination, components, weights, scales and n_heldout
  // (at the configured setting, after fit_components) and return true; the other fields of `out`
  // are left as they are. Others return false and leave `out` alone.
  virtual bool describe_fusion(FusionSummary& out) const { return false; }
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

}  // namespace oodkit::ood
