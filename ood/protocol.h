// The evaluation protocol, independent of where data comes from: detectors are fitted on ID
// training features, each hyper-parameter setting is tried on the validation pair (held-out
// ID vs an OOD validation set, never a test set) and the one with the best AUROC is kept
// (first on ties), then the ID test set is scored against every OOD test set.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ood/detector.h"
#include "ood/registry.h"
#include "ood/method_scores.h"
#include "ood/metrics.h"
#include "ood/multi_fusion.h"

namespace oodkit::ood {


// Which detectors try their whole grid on the validation pair; the others use defaults().
// Input-perturbation detectors cost a forward and backward pass per setting and image.
enum class Tuning { All, FeatureOnly, None };

struct ProtocolInput {
  Tuning tuning = Tuning::All;
  models::Classifier* model = nullptr;  // in eval mode, on `device`; null: no input-perturbation method
  Device device = Device::cpu();
  std::array<float, 3> input_std{1.f, 1.f, 1.f};
  int64_t batch_size = 256;             // for input-perturbation detectors
  FitContext fit;                       // ID training (and held-out) features, head
  ScoredSet val_id, val_ood;            // the validation pair
  ScoredSet test_id;
  std::vector<ScoredSet> test_ood;
  // When set, every detector run is saved there (Detector::save) with its kept setting, and
  // each fusion's choice as <dir>/<fusion>.json, so `oodkit score` needs no refit.
  std::string save_dir;
  // Detectors made outside the protocol (e.g. "heatmap" with its trained decoder), by name; they
  // are fitted (fit() is called, a no-op for them) and tuned like the others (with their
  // registration's grid when the name is registered). A registered method that needs a decoder
  // (heatmap, heatmap_*) runs only when "heatmap" is here.
  std::map<std::string, std::function<std::unique_ptr<Detector>()>> extra_detectors;
  Settings settings;  // --set overrides of the registered grids (parse_settings)
  // The method "fused" (ood/multi_fusion.h: select_fused): its combination, stopping rule and
  // candidates (empty: fused_candidates(), with "heatmap" when extra_detectors has it).
  FusedOptions fused;
};

struct MethodResult {
  std::string name;
  Params chosen;                        // the setting kept ("w"/"lambda" for fusions)
  double val_auroc = 0;                 // of the kept setting
  std::vector<double> val_id_scores;    // held-out ID scores of the kept setting
  double threshold = 0;                 // id_threshold(val_id_scores): 95% of held-out ID kept
  std::vector<OodMetrics> per_set;      // one per test_ood entry
  OodMetrics average;                   // field-wise mean over per_set
  std::vector<double> id_scores;        // test_id scores of the kept setting
  std::vector<std::vector<double>> ood_scores;  // per test_ood entry
  std::shared_ptr<const FusionSummary> fusion;  // --fuse rows and "fused"; null for other methods
  // Several runs of one method averaged (`eval --heatmap` with several decoders, run::average_runs):
  // per_set, average and val_auroc are then the runs' means, the fields below their spread; the
  // scores, chosen and threshold are the first run's. runs = 1 for a single run.
  int runs = 1;
  std::vector<OodMetrics> per_set_std;  // sample standard deviation (n - 1) of each figure, per set
  OodMetrics average_std;
  std::vector<MethodResult> per_run;    // each run as it was (runs > 1)
};

using ProgressFn = std::function<void(const std::string&)>;

// Runs the named methods (all_method_names(true) or extra_detectors names) in order, each on one
// path: make, fit (a fusion: on its components' held-out ID scores), try each setting on the
// validation pair, keep the best, save, score the test sets. Fusion components are run as
// needed (once each) and reported only when named. Methods may also be --fuse names
// (is_fuse_name) and "fused", whose components select_fused picks from in.fused's candidates
// (each run once, shared with its stand-alone row) on the validation pair alone.
std::vector<MethodResult> run_protocol(const ProtocolInput& input, const std::vector<std::string>& methods,
                                       const ProgressFn& progress = {});

OodMetrics mean_metrics(const std::vector<OodMetrics>& m);

}  // namespace oodkit::ood
