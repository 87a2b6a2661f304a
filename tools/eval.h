#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "framework/dtype.h"
#include "ood/multi_fusion.h"
#include "ood/registry.h"
#include "run/benchmark.h"

namespace oodkit::tools {

struct EvalOptions {
  std::string checkpoint;       // "" = the shipped ResNet-20 weights
  std::string arch;             // "" = from the checkpoint's metadata (resnet20 for the shipped weights)
  int64_t num_classes = 0;      // 0 = from the checkpoint
  std::string id = "cifar10";   // ID dataset (test split scored, train split fitted)
  std::string ood = "isun,tinyimagenet,mnist,fashion-mnist";
  std::string val_ood = "tinyimagenet:val";  // OOD validation set: <name>[:<split>]
  std::string methods = "all";
  std::string tuning = "all";   // all | features | none
  std::vector<std::string> set;  // --set <method>.<key>=<v>[,<v>...]: grid overrides (ood::parse_settings)
  int64_t fit_limit = -1;       // ID training images used for fitting (-1: all but the held-out ones)
  int64_t heldout = 1000;       // held-out ID training images (validation pair, ReAct percentile)
  int64_t val_ood_limit = 1000;
  int64_t test_limit = -1;      // ID test images (-1: all)
  int64_t ood_limit = -1;       // images per OOD test set (-1: all)
  std::string ta_thresholds = "0.1,0.15,0.2";
  int64_t batch = 256;
  uint64_t seed = 0;            // --fit-limit's draw, pseudo-OOD
  uint64_t split_seed = 0;      // the held-out split's seed (the same for eval and heatmap fit)
  Device device = Device::cpu();
  bool tf32 = false;            // TF32 math in cuDNN/cuBLAS for the classifier (CUDA only)
  std::string out_dir;          // results.{json,csv,md}, scores.safetensors, report.html, plots/
  std::string heatmap;          // `oodkit heatmap fit` folders (or decoder files), comma-separated: "heatmap" and its fusions
  std::vector<std::string> fuse;  // --fuse [z|p|pmean[w]:]A+B[+...]: rows fusing detectors (ood/multi_fusion.h)
  std::string fused_from;       // the method "fused": its candidates, comma-separated ("" = every detector)
  std::string fused_kind = "z"; // its combination: z | p | pmean
  int64_t fused_max = 4;        // at most this many components
  double fused_margin = 0.2;    // stop when the best addition gains no more validation AUROC (points)
  std::string mean, std;        // --mean/--std: input normalisation ("" = checkpoint metadata, else the ID set's default)
  std::string features;         // --features FILE: rows from any network instead of a classifier and images
  std::string save_features;    // --save-features FILE: the extracted rows as a features file
  std::string benchmark;        // --benchmark NAME (run/benchmark.h): sets id and ood before the plan
  run::BenchmarkChoice benchmark_sets;  // what apply_benchmark chose (its groups go into the reports)
};

// --benchmark (tools/eval_benchmark.cpp): checks it against --id/--ood (given: whether the user
// named them), chooses the installed sets, prints one line per missing set on stderr, and sets
// o.id, o.ood and o.benchmark_sets. Throws (naming the option) before any work.
void apply_benchmark(EvalOptions& o, bool id_given, bool ood_given);

// What an eval run's options select, checked without loading anything (the first part of eval's
// plan: set lists and limits, method names, --fuse, --fused-*, --tuning, --set, --ta-thresholds);
// `oodkit study` checks its eval step with it before training. Throws naming the option.
struct EvalMethods {
  std::vector<std::string> methods;    // --methods, then the --fuse rows
  std::vector<std::string> scored;     // the methods scored (with fused's candidates)
  std::vector<std::string> used;       // scored and every fusion's components (what --set may name)
  ood::FusedOptions fused;             // "fused": candidates listed (never empty)
  ood::Settings settings;              // --set
  std::vector<double> ta_thresholds;   // --ta-thresholds
};
// `eval --features` expands --methods all to the methods that run on features before calling:
// `methods_given` (when not empty) is the --methods its messages quote, and fused's default
// candidates are those `usable` accepts (when given), filtered before --set is checked.
EvalMethods plan_eval_methods(const EvalOptions& o, const std::string& methods_given = "",
                              const std::function<bool(const std::string&)>& usable = nullptr);
// The detectors behind `methods`: "fused" replaced by `candidates`, --fuse names by their
// components, the others as they are (each once, in order).
std::vector<std::string> scored_methods(const std::vector<std::string>& methods, const std::vector<std::string>& candidates);

// Writes <out_dir>/results.md last, after the other results (tools/eval.cpp has the order and the
// contract: results.md exists only when the run finished).
int run_eval(const EvalOptions& o);

// `oodkit eval --features FILE` (tools/eval_features.cpp): the same protocol and reports on the
// rows of a features file (run/features_file.h); only --methods, --fuse, --fused-*, --set, --tuning, --device
// and --out apply.
int run_eval_features(const EvalOptions& o);

// Removes an earlier run's results.{md,json,csv}, scores.safetensors, report.html, plots/ and detectors/protocol.json
// from `out_dir` (run_eval does it first; `oodkit study` too, for its report).
void remove_eval_results(const std::string& out_dir);

}  // namespace oodkit::tools
