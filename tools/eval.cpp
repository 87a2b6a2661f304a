// `oodkit eval`: a trained classifier against OOD sets with every post-hoc detector.
//
// Output in --out, each file written atomically (temporary + rename): detectors/<method>... while
// the protocol runs, then detectors/protocol.json (what `oodkit score` reads: absent, the folder
// is refused), scores.safetensors, results.json, results.csv, the browser report (plots/*.png and
// report.html, by tools/report.py: tools/report.h) and results.md, in that order. results.md is
// written last: it exists only when the run finished. Once its plan has passed (a few seconds; a
// refused run leaves --out untouched), a run removes these files of an earlier run in --out, so a
// run killed after that (SIGKILL included) leaves no results that look complete: none, or some
// without results.md; killed during the plan, it leaves the earlier run's results as they were.
#include "tools/eval.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/augment.h"
#include "data/loader.h"
#include "data/pseudo_ood.h"
#include "data/registry.h"
#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/safetensors.h"
#include "ood/detectors.h"
#include "ood/heatmap.h"
#include "ood/multi_fusion.h"
#include "ood/protocol.h"
#include "ood/scores.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/report.h"
#include "run/eval_report.h"
#include "run/extract.h"
#include "run/features_file.h"
#include "run/normalization.h"
#include "run/plan.h"
#include "run/provenance.h"
#include "run/saved_protocol.h"

namespace oodkit::tools {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Accuracy near chance for `k` classes: "at chance level" (below 1.5/k) or null. A classifier there
// has not learnt its ID set (wrong weights, architecture or normalisation).
const char* chance_level(double accuracy, int64_t k) {
  return k > 1 && accuracy < 1.5 / double(k) ? "at chance level" : nullptr;
}



// The first `limit` entries of rows (all when limit < 0).
std::vector<int64_t> first_n(const std::vector<int64_t>& rows, int64_t limit) {
  if (limit < 0 || limit >= int64_t(rows.size())) return rows;
  return std::vector<int64_t>(rows.begin(), rows.begin() + limit);
}


// A heatmap decoder trained on any of eval's validation images would make its validation AUROC
// (and the weights of its fusions) optimistic: refused, naming both sides' options.
//  - ID: the decoder trains on rows outside its held-out split (--heldout, --split-seed of
//    `heatmap fit`); every row of eval's held-out split must be in the decoder's held-out split.
//  - OE: the decoder's OE images are its --oe set from row --oe-skip on; eval's validation OOD
//    images are the first --val-ood-limit rows of --val-ood. Same set: the limit must not pass the skip.
void check_decoder_disjoint(const ood::HeatmapModelInfo& hi, const std::string& path, const Tensor& train_labels,
                            const data::HoldoutSplit& split, const EvalOptions& o) {
  if (hi.heldout != o.heldout || hi.heldout_seed != o.split_seed) {
    const int64_t n = train_labels.size(0);
    const data::HoldoutSplit theirs =
        data::holdout_split(train_labels, double(hi.heldout) / double(n), hi.heldout_seed, /*stratified=*/true);
    int64_t shared = 0;
    for (int64_t r : split.val) shared += std::binary_search(theirs.train.begin(), theirs.train.end(), r);
    OODKIT_CHECK(shared == 0, "eval: ", shared, " of the ", split.val.size(), " held-out validation images (--heldout ",
                 o.heldout, " --split-seed ", o.split_seed, ") are training images of the heatmap decoder '", path,
                 "' (fitted with --heldout ", hi.heldout, " --split-seed ", hi.heldout_seed,
                 "): evaluate with --heldout ", hi.heldout, " --split-seed ", hi.heldout_seed,
                 ", or fit the decoder with this run's");
  }
  if (o.val_ood == "pseudo" || hi.fit_options.empty()) return;
  const nlohmann::json fit = nlohmann::json::parse(hi.fit_options, nullptr, /*allow_exceptions=*/false);
  if (!fit.is_object() || !fit.contains("--oe") || !fit.contains("--oe-skip")) return;
  const std::string oe = fit["--oe"].get<std::string>();
  const int64_t skip = fit["--oe-skip"].get<int64_t>();
  if (!run::same_images(o.val_ood, oe)) return;
  OODKIT_CHECK(o.val_ood_limit >= 0 && o.val_ood_limit <= skip, "eval: --val-ood '", o.val_ood, "' with --val-ood-limit ",
               o.val_ood_limit, " validates on ", o.val_ood_limit < 0 ? "every image" : "its first " +
               std::to_string(o.val_ood_limit) + " images", ", but the heatmap decoder '", path,
               "' trained on that set's images from row ", skip, " on (its --oe '", oe, "' with --oe-skip ", skip,
               "): give --val-ood-limit ", skip, " or less, or validate on another set (--val-ood)");
}

}  // namespace

// (tools/eval.h) The detectors behind `methods`: "fused" replaced by its candidates, --fuse names by their
// components (the others as they are): what is extracted, needed and --set-able.
std::vector<std::string> scored_methods(const std::vector<std::string>& methods, const std::vector<std::string>& candidates) {
  std::vector<std::string> out;
  for (const std::string& m : methods) {
    const std::vector<std::string> parts =
        m == "fused" ? candidates : ood::is_fuse_name(m) ? ood::parse_fuse_name(m).components : std::vector<std::string>{m};
    for (const std::string& p : parts)
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return out;
}

void remove_eval_results(const std::string& out_dir) {
  for (const char* f : {"results.md", "results.json", "results.csv", "scores.safetensors", "report.html", "findings.md",
                        "detectors/protocol.json"})
    std::remove((out_dir + "/" + f).c_str());
  std::error_code ec;  // plots of sets this run may not have: the folder goes (a missing one is fine)
  std::filesystem::remove_all(out_dir + "/plots", ec);
}

// What plan_eval checked and loaded, for the run.
struct EvalPlan {
  std::vector<std::string> methods;             // --methods, then the --fuse rows
  std::vector<std::string> scored;              // scored_methods(methods, fused.candidates)
  ood::FusedOptions fused;                      // "fused": candidates listed (never empty)
  ood::Settings settings;
  std::string checkpoint;
  data::Dataset test, train, val_ood;
  std::vector<std::pair<std::string, data::Dataset>> ood_sets;  // --ood spec -> its images
  int64_t size = 32;                                            // image side
  LoadedClassifier lc;
  run::NormalizationChoice norm;
  std::vector<std::shared_ptr<ood::HeatmapModel>> decoders;     // --heatmap, in order
  std::vector<std::string> decoder_paths;
  run::ExtractOptions extract;                                  // device, batch, feature columns
  data::HoldoutSplit split;                                     // held-out (val) and fitting candidates
  std::vector<int64_t> fit_rows, test_rows;
};

// --save-features: the rows this run extracted, as a features file (run/features_file.h) that
// `oodkit eval --features` evaluates to the same scores.
void save_features(const EvalOptions& o, const EvalPlan& plan, const ood::ScoredSet& fit_set,
                   const ood::ProtocolInput& in) {
  const auto with = [](const ood::ScoredSet& s, Tensor labels) { return run::FeatureSet{s.name, s.features, labels}; };
  const run::FeatureSet fit = with(fit_set, data::take_rows(plan.train, plan.fit_rows).labels);
  const run::FeatureSet id_val = with(in.val_id, data::take_rows(plan.train, plan.split.val).labels);
  const run::FeatureSet id_test = with(in.test_id, data::take_rows(plan.test, plan.test_rows).labels);
  const run::FeatureSet val_ood = with(in.val_ood, Tensor());
  std::vector<run::FeatureSet> ood;
  for (const ood::ScoredSet& s : in.test_ood) ood.push_back(with(s, Tensor()));
  std::vector<std::pair<std::string, const run::FeatureSet*>> sets{
      {"fit", &fit}, {"id_val", &id_val}, {"id_test", &id_test}, {"val_ood." + o.val_ood, &val_ood}};
  for (size_t i = 0; i < ood.size(); ++i) sets.emplace_back("ood." + in.test_ood[i].name, &ood[i]);
  if (const std::string parent = std::filesystem::path(o.save_features).parent_path().string(); !parent.empty())
    make_output_dir(parent, "--save-features");
  const nn::Linear& head = plan.lc.model->head();
  run::write_features_file(o.save_features, head.weight, head.bias, sets,
                           {{"id", o.id}, {"model", plan.lc.arch}, {"checkpoint", plan.checkpoint}});
  std::printf("wrote the features of every set to %s\n", o.save_features.c_str());
}

// ---- the plan: every input loaded and checked, every split possible, --out creatable; nothing
// is extracted and nothing written before it passes (tests/cli/check_plan.py).
EvalMethods plan_eval_methods(const EvalOptions& o, const std::string& methods_given,
                              const std::function<bool(const std::string&)>& usable) {
  EvalMethods p;
  const std::string& methods_quoted = methods_given.empty() ? o.methods : methods_given;
  // Options that would leave a set empty are refused before anything is loaded.
  OODKIT_CHECK(!split_list(o.ood).empty(), "eval: --ood '", o.ood, "' names no OOD test set");
  for (const auto& [value, option] : {std::pair{o.fit_limit, "--fit-limit"}, std::pair{o.val_ood_limit, "--val-ood-limit"},
                                      std::pair{o.test_limit, "--test-limit"}, std::pair{o.ood_limit, "--ood-limit"}})
    OODKIT_CHECK(value == -1 || value > 0, "eval: ", option, " ", value,
                 " would leave a set without images; give a positive count or -1 (all)");
  OODKIT_CHECK(o.heldout > 0, "eval: --heldout ", o.heldout, " leaves no held-out ID images for validation");
  // Hyper-parameters are chosen on --val-ood: a validation set that is also a test set would let
  // test images choose them (checked before anything is loaded).
  for (const std::string& spec : split_list(o.ood))
    OODKIT_CHECK(!run::same_images(o.val_ood, spec), "eval: the OOD validation set --val-ood '", o.val_ood,
                 "' is also an OOD test set (--ood entry '", spec,
                 "'): hyper-parameters would be chosen on test images; validate on another set or split "
                 "(e.g. --val-ood tinyimagenet:val with --ood tinyimagenet)");
  // Method names, --tuning and --set are checked before anything is loaded.
  p.settings = ood::parse_settings(o.set);
  const ood::Settings& settings = p.settings;
  p.methods = o.methods == "all" ? ood::all_method_names(!o.heatmap.empty()) : split_list(o.methods);
  const std::vector<std::string>& methods = p.methods;
  for (const std::string& m : methods) {
    OODKIT_CHECK(ood::is_registered(m) || m == "fused" || ood::is_fuse_name(m), "eval: unknown method '", m,
                 "' in --methods; known: ", ood::method_list(true), ", fused");
    if (ood::is_fuse_name(m)) ood::parse_fuse_name(m);  // checks its components
  }
  // --fuse rows follow --methods; "fused" selects among --fused-from (default: every detector).
  for (const std::string& f : o.fuse) {
    const std::string name = ood::parse_fuse_spec(f, "--fuse").name();
    OODKIT_CHECK(std::find(p.methods.begin(), p.methods.end(), name) == p.methods.end(), "eval: --fuse '", f,
                 "' gives the method ", name, ", which this run already has");
    p.methods.push_back(name);
  }
  // The --fused-* options tune the method fused: without it they would do nothing.
  const EvalOptions defaults;
  if (std::find(p.methods.begin(), p.methods.end(), "fused") == p.methods.end())
    for (const auto& [given, option] : {std::pair{!o.fused_from.empty(), "--fused-from"},
                                        std::pair{o.fused_kind != defaults.fused_kind, "--fused-kind"},
                                        std::pair{o.fused_max != defaults.fused_max, "--fused-max"},
                                        std::pair{o.fused_margin != defaults.fused_margin, "--fused-margin"}})
      OODKIT_CHECK(!given, "eval: ", option, " applies to the method fused, which --methods '",
                   methods_quoted, "' does not name");
  p.fused.combination = ood::parse_combination(o.fused_kind);
  OODKIT_CHECK(o.fused_max >= 1 && o.fused_max <= int64_t(ood::kMaxFuseComponents), "eval: --fused-max ", o.fused_max,
               " must be 1 to ", ood::kMaxFuseComponents);
  p.fused.max_size = size_t(o.fused_max);
  OODKIT_CHECK(std::isfinite(o.fused_margin) && o.fused_margin >= 0 && o.fused_margin < 100, "eval: --fused-margin ",
               o.fused_margin, " must be an AUROC gain in points, 0 or more and under 100");
  p.fused.margin = o.fused_margin / 100;
  p.fused.candidates.clear();
  for (const std::string& c : ood::fused_candidates(!o.heatmap.empty()))
    if (!usable || usable(c)) p.fused.candidates.push_back(c);
  if (!o.fused_from.empty()) {
    p.fused.candidates.clear();
    for (const std::string& c : split_list(o.fused_from)) {
      OODKIT_CHECK(ood::is_registered(c), "eval: unknown method '", c, "' in --fused-from; known: ", ood::method_list(true));
      OODKIT_CHECK(std::find(p.fused.candidates.begin(), p.fused.candidates.end(), c) == p.fused.candidates.end(),
                   "eval: --fused-from names '", c, "' twice");
      p.fused.candidates.push_back(c);
    }
    OODKIT_CHECK(!p.fused.candidates.empty(), "eval: --fused-from '", o.fused_from, "' names no method");
  }
  p.scored = scored_methods(methods, p.fused.candidates);
  for (const std::string& m : p.scored)
    OODKIT_CHECK(!o.heatmap.empty() || !ood::needs_decoder({m}), "eval: method '", m,
                 "' needs a trained decoder: pass --heatmap DIR (from `oodkit heatmap fit`)");
  p.ta_thresholds = parse_doubles(o.ta_thresholds, "--ta-thresholds");
  OODKIT_CHECK(!p.ta_thresholds.empty(), "eval: --ta-thresholds is empty");
  OODKIT_CHECK(o.tuning == "all" || o.tuning == "features" || o.tuning == "none",
               "eval: --tuning must be all, features or none, got '", o.tuning, "'");
  // --set entries that name no method of this run (nor a fusion's component) would do nothing.
  std::vector<std::string>& run_methods = p.used;
  run_methods = p.scored;
  for (size_t i = 0; i < run_methods.size(); ++i)
    for (const std::string& c : ood::detector_info(run_methods[i]).components) run_methods.push_back(c);
  for (const auto& [m, keys] : settings)
    OODKIT_CHECK(std::find(run_methods.begin(), run_methods.end(), m) != run_methods.end(), "eval: --set names '", m,
                 "', which this run does not use (--methods ", methods_quoted, ")");
  return p;
}

EvalPlan plan_eval(const EvalOptions& o) {
  EvalPlan p;
  EvalMethods m = plan_eval_methods(o);
  p.methods = std::move(m.methods);
  p.scored = std::move(m.scored);
  p.fused = std::move(m.fused);
  p.settings = std::move(m.settings);
  const ood::Settings& settings = p.settings;
  const std::vector<std::string>& run_methods = m.used;
  const std::vector<double>& ta_thresholds = m.ta_thresholds;
  const std::vector<std::string>& methods = p.methods;
  if (!o.out_dir.empty()) run::check_output_dir(o.out_dir, "--out");
  if (!o.save_features.empty()) {
    const std::string parent = std::filesystem::path(o.save_features).parent_path().string();
    run::check_output_dir(parent.empty() ? "." : parent, "--save-features");
  }
  p.checkpoint = o.checkpoint.empty() ? shipped_weights_path() : o.checkpoint;
  const std::string& checkpoint = p.checkpoint;
  // The shipped weights are a CIFAR ResNet-20 (their metadata names the source repository).
  const std::string arch = o.checkpoint.empty() && o.arch.empty() ? "resnet20" : o.arch;
  p.test =
      run::load_for("--id", o.id, [&] { return data::load_dataset(o.id, "", base_load_options()); });
  const data::Dataset& test = p.test;
  note_skipped("eval", test, o.id);
  const int64_t size = p.size = test.images.size(2);
  // The classifiers take square 32x32 or 64x64 images (models/registry.h).
  OODKIT_CHECK(test.images.size(3) == size && (size == 32 || size == 64), "eval: the ID test images of --id '", o.id,
               "' are ", size, "x", test.images.size(3), " pixels; the classifiers take 32x32 or 64x64 images");
  p.lc = load_classifier(checkpoint, arch, o.num_classes ? o.num_classes : test.num_classes, int(size));
  const LoadedClassifier& lc = p.lc;
  models::Classifier& model = *lc.model;
  model.to(o.device);
  model.eval();
  p.norm = run::choose_normalization(o.mean, o.std, lc.metadata, checkpoint, o.id);
  run::check_labels_in_range(test, lc.num_classes, o.id, "--id");
  // ASH keeps the top k = D - round(D p / 100) features: a percentile that keeps none of this
  // network's D would fail after the extraction.
  for (const std::string& m : run_methods)
    if (const std::string why = run::ash_problem(m, model.feature_dim(), settings); !why.empty())
      OODKIT_FAIL("eval: method '", m, "' cannot run on the ", model.feature_dim(), " features of ", lc.arch, " ('",
                  checkpoint, "'): ", why);

  // --heatmap DIR[,DIR...]: one decoder, or several (e.g. five seeds, as the paper averages): the
  // heatmap methods then run once per decoder and are reported as mean and standard deviation.
  std::vector<std::shared_ptr<ood::HeatmapModel>>& decoders = p.decoders;
  std::vector<std::string>& decoder_paths = p.decoder_paths;
  for (const std::string& dir : split_list(o.heatmap)) {
    const std::string path = heatmap_decoder_path(dir);
    try {
      decoders.push_back(ood::HeatmapModel::load(path));
    } catch (const Error& e) {
      throw Error("--heatmap '" + dir + "': " + e.what(), e.where());
    }
    decoder_paths.push_back(path);
    decoders.back()->check_classifier(ood::module_fingerprint(model), "the heatmap decoder '" + path + "'");
    const ood::HeatmapModelInfo& hi = decoders.back()->info();
    OODKIT_CHECK(hi.id_dataset == o.id, "eval: the heatmap decoder '", path, "' was trained with ID set '",
                 hi.id_dataset, "', not '", o.id, "'");
    std::printf("heatmap decoder: %s (%d epochs, width %g, OE %s)\n", path.c_str(), hi.epoch, hi.width, hi.oe.c_str());
  }
  // "fused" chooses its components on the validation pair: with the heatmap among its candidates,
  // validating on the decoder's OE distribution (other rows of it) would favour the heatmap.
  const bool fused_heatmap = std::find(methods.begin(), methods.end(), "fused") != methods.end() &&
                             std::find(p.fused.candidates.begin(), p.fused.candidates.end(), "heatmap") != p.fused.candidates.end();
  for (size_t d = 0; d < decoders.size() && fused_heatmap; ++d) {
    const std::string oe = decoders[d]->info().oe, val = o.val_ood;
    OODKIT_CHECK(val == "pseudo" || val.substr(0, val.find(':')) != oe.substr(0, oe.find(':')), "eval: the method fused selects its components on --val-ood '",
                 val, "', the OE distribution of the heatmap decoder '", decoder_paths[d], "' (", oe,
                 "): the heatmap would look better there than on unseen OOD; validate on another set (e.g. --val-ood pseudo) "
                 "or leave heatmap out of --fused-from");
  }
  run::ExtractOptions& xo = p.extract;
  xo.device = o.device;
  xo.batch = o.batch;
  xo.features.needs = ood::feature_needs(p.scored);
  xo.features.ta_thresholds = ta_thresholds;

  // ID training data: a held-out part (validation pair, ReAct) and the fitting part.
  data::LoadOptions train_lo = base_load_options();
  train_lo.split = "train";
  p.train =
      run::load_for("--id", o.id + ":train", [&] { return data::load_dataset(o.id, "", train_lo); });
  const data::Dataset& train = p.train;
  note_skipped("eval", train, o.id + ":train");
  run::check_labels_in_range(train, lc.num_classes, o.id + ":train", "--id");
  run::check_heldout(o.heldout, train.size(), o.id + ":train", "--heldout");
  p.split = data::holdout_split(
      train.labels, double(o.heldout) / double(train.size()), o.split_seed, /*stratified=*/true);
  const data::HoldoutSplit& split = p.split;
  std::vector<int64_t>& fit_rows = p.fit_rows;
  fit_rows = split.train;
  if (o.fit_limit >= 0 && int64_t(fit_rows.size()) > o.fit_limit) {
    std::vector<int64_t> shuffled = data::shuffled_indices(int64_t(fit_rows.size()), o.seed + 1);
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < o.fit_limit; ++i) keep.push_back(fit_rows[size_t(shuffled[size_t(i)])]);
    std::sort(keep.begin(), keep.end());
    fit_rows = keep;
  }
  run::check_classes_covered(train.labels, fit_rows, lc.num_classes, o.id + ":train",
                             o.fit_limit >= 0 ? "--fit-limit" : "--heldout");
  // The decoder must not have trained on this run's validation pair: refused, not warned about.
  for (size_t d = 0; d < decoders.size(); ++d)
    check_decoder_disjoint(decoders[d]->info(), decoder_paths[d], train.labels, split, o);
  // --val-ood pseudo: transformed held-out ID images (data/pseudo_ood.h), no real OOD data.
  p.val_ood = run::load_for("--val-ood", o.val_ood, [&] {
    return o.val_ood == "pseudo"
               ? data::pseudo_ood(data::take_rows(train, first_n(split.val, o.val_ood_limit)).images, o.seed)
               : load_named(o.val_ood, size, o.val_ood_limit);
  });
  note_skipped("eval", p.val_ood, o.val_ood);
  std::vector<std::pair<std::string, data::Dataset>>& ood_sets = p.ood_sets;
  for (const std::string& spec : split_list(o.ood)) {
    ood_sets.emplace_back(spec, run::load_for("--ood", spec, [&] { return load_named(spec, size, o.ood_limit); }));
    note_skipped("eval", ood_sets.back().second, spec);
  }
  p.test_rows = first_rows(test.size(), o.test_limit);
  std::fprintf(stderr, "oodkit eval: input normalisation %s\n", run::describe(p.norm).c_str());
  std::printf("oodkit eval: %s (%s, %lld classes) from %s on %s (%s); fitting on %zu %s training images, %zu held out\n",
              lc.arch.c_str(), o.id.c_str(), (long long)lc.num_classes, checkpoint.c_str(), o.device.str().c_str(),
              o.tf32 ? "TF32" : "FP32", fit_rows.size(), o.id.c_str(), split.val.size());

  return p;
}

// Every method through the protocol: once, or with several decoders the methods without one once
// and the heatmap methods once per decoder (the first decoder's detectors are the ones saved),
// averaged (run::average_runs). `in` holds the first decoder on entry and on return.
std::vector<ood::MethodResult> run_methods(ood::ProtocolInput& in, const EvalPlan& plan, const ood::ProgressFn& say) {
  const std::vector<std::string>& methods = plan.methods;
  const auto& decoders = plan.decoders;
  const auto& decoder_paths = plan.decoder_paths;
  const std::string save_dir = in.save_dir;
  if (decoders.size() <= 1) return ood::run_protocol(in, methods, say);
  std::vector<ood::MethodResult> results;
  {
    // Several decoders: the methods without a decoder run once; the heatmap methods once per
    // decoder (the first decoder's detectors are the ones saved), then averaged (run::average_runs).
    std::vector<std::string> plain, with_decoder;
    const auto with_heatmap = [&](const std::string& m) { return ood::needs_decoder(scored_methods({m}, plan.fused.candidates)); };
    for (const std::string& m : methods) (with_heatmap(m) ? with_decoder : plain).push_back(m);
    std::vector<ood::MethodResult> once = plain.empty() ? std::vector<ood::MethodResult>{} : ood::run_protocol(in, plain, say);
    std::vector<std::vector<ood::MethodResult>> runs;
    for (size_t d = 0; d < decoders.size(); ++d) {
      const std::shared_ptr<ood::HeatmapModel> hm = decoders[d];
      in.extra_detectors["heatmap"] = [hm] { return std::make_unique<ood::HeatmapDetector>(hm); };
      if (d > 0) in.save_dir.clear();
      say("decoder " + std::to_string(d + 1) + "/" + std::to_string(decoders.size()) + ": " + decoder_paths[d]);
      runs.push_back(ood::run_protocol(in, with_decoder, say));
    }
    for (const std::string& m : methods) {
      if (!with_heatmap(m)) {
        results.push_back(*std::find_if(once.begin(), once.end(), [&](const ood::MethodResult& r) { return r.name == m; }));
        continue;
      }
      std::vector<ood::MethodResult> per_decoder;
      for (const auto& run_results : runs)
        per_decoder.push_back(*std::find_if(run_results.begin(), run_results.end(),
                                            [&](const ood::MethodResult& r) { return r.name == m; }));
      results.push_back(run::average_runs(per_decoder));
    }
    in.save_dir = save_dir;
    const std::shared_ptr<ood::HeatmapModel> first = decoders.front();
    in.extra_detectors["heatmap"] = [first] { return std::make_unique<ood::HeatmapDetector>(first); };
  }
  return results;
}

// results.md (also on stdout), then with --out scores.safetensors, results.json, results.csv, the
// browser report and results.md last (run/eval_report.h writes their text).
void write_reports(const EvalOptions& o, const EvalPlan& plan, const ood::ProtocolInput& in,
                   const std::vector<ood::MethodResult>& results, const std::vector<std::string>& warnings,
                   double accuracy, int64_t n_test) {
  const LoadedClassifier& lc = plan.lc;
  const std::string& checkpoint = plan.checkpoint;
  const data::Normalization& norm = plan.norm.norm;
  const std::shared_ptr<ood::HeatmapModel> heatmap = plan.decoders.empty() ? nullptr : plan.decoders.front();
  // ---- reports: Markdown (stdout and file), JSON, CSV, scores (run/eval_report.h)
  run::EvalSummary summary;
  summary.arch = lc.arch;
  summary.id = o.id;
  summary.checkpoint = checkpoint;
  summary.val_ood = o.val_ood;
  summary.accuracy = accuracy;
  summary.n_id_test = n_test;
  if (heatmap) summary.decoder_oe = heatmap->info().oe;
  for (const ood::ScoredSet& so : in.test_ood) summary.test_sets.push_back(so.name);
  summary.warnings = warnings;
  summary.results = results;
  summary.benchmark = o.benchmark_sets.name;
  summary.groups = o.benchmark_sets.groups;
  summary.benchmark_notes = o.benchmark_sets.notes;
  const std::string md = run::eval_markdown(summary);
  std::printf("%s", md.c_str());

  if (!o.out_dir.empty()) {
    nlohmann::ordered_json& j = summary.json_header;
    j["provenance"] = run::provenance();
    j["classifier_fingerprint"] = ood::module_fingerprint(*lc.model);
    j["seed"] = o.seed;
    j["split_seed"] = o.split_seed;
    j["data"] = {{"fit", {{"set", o.id + ":train"}, {"count", plan.fit_rows.size()}}},
                 {"heldout", {{"set", o.id + ":train"}, {"count", plan.split.val.size()}}},
                 {"validation_ood", {{"set", o.val_ood}, {"count", in.val_ood.features.size()}}},
                 {"test_id", {{"set", o.id}, {"count", n_test}}}};
    for (const ood::ScoredSet& so : in.test_ood) j["data"]["test_ood"][so.name] = so.features.size();
    j["warnings"] = warnings;
    j["arch"] = lc.arch;
    j["checkpoint"] = checkpoint;
    j["device"] = o.device.str();
    j["math_mode"] = o.tf32 ? "tf32" : "fp32";
    j["id"] = o.id;
    j["id_accuracy"] = 100 * accuracy;
    j["n_id_test"] = n_test;
    j["validation"] = {{"id", o.id + ":heldout"}, {"n_id", plan.split.val.size()}, {"ood", o.val_ood},
                       {"n_ood", in.val_ood.features.size()}};
    j["tuning"] = o.tuning;
    j["ta_thresholds"] = plan.extract.features.ta_thresholds;
    j["normalization"] = {{"mean", norm.mean}, {"std", norm.std}, {"source", plan.norm.source}};
    j["fit_images"] = plan.fit_rows.size();
    if (heatmap) {
      summary.heatmap = {{"decoder", plan.decoder_paths.front()}, {"epochs", heatmap->info().epoch},
                         {"width", heatmap->info().width}, {"oe", heatmap->info().oe}};
      if (plan.decoders.size() > 1) {
        summary.heatmap["decoders"] = plan.decoder_paths;
        summary.heatmap["epochs_each"] = nlohmann::json::array();
        for (const auto& d : plan.decoders) summary.heatmap["epochs_each"].push_back(d->info().epoch);
      }
    }
    save_safetensors(o.out_dir + "/scores.safetensors", run::eval_scores(summary));
    write_text_file(o.out_dir + "/results.json", run::eval_json(summary).dump(2) + "\n");
    write_text_file(o.out_dir + "/results.csv", run::eval_csv(summary));
    const bool html = write_html_report(o.out_dir, "oodkit eval: " + lc.arch + " on " + o.id);
    write_text_file(o.out_dir + "/results.md", md);  // last: marks the run finished
    std::printf("\nwrote %s/results.{json,csv,md}, scores.safetensors%s\n", o.out_dir.c_str(),
                html ? ", report.html and plots/" : "");
  }
}

int run_eval(const EvalOptions& o) {
  const auto t0 = Clock::now();
  const MathModeGuard math(o.tf32 ? MathMode::TF32 : MathMode::FP32);
  const EvalPlan plan = plan_eval(o);
  const std::vector<std::string>& methods = plan.methods;
  const std::string& checkpoint = plan.checkpoint;
  const data::Dataset& test = plan.test;
  const data::Dataset& train = plan.train;
  const data::HoldoutSplit& split = plan.split;
  const std::vector<int64_t>& fit_rows = plan.fit_rows;
  const std::vector<int64_t>& test_rows = plan.test_rows;
  const LoadedClassifier& lc = plan.lc;
  models::Classifier& model = *lc.model;
  const run::NormalizationChoice& norm_choice = plan.norm;
  const data::Normalization norm = norm_choice.norm;
  const std::vector<std::shared_ptr<ood::HeatmapModel>>& decoders = plan.decoders;
  const std::shared_ptr<ood::HeatmapModel> heatmap = decoders.empty() ? nullptr : decoders.front();
  const run::ExtractOptions& xo = plan.extract;
  const ood::FeatureOptions& fo = xo.features;
  // Images are kept only for input-perturbation methods (and fusions of them).
  const bool need_images = ood::needs_images(plan.scored);
  const ood::Settings& settings = plan.settings;
  const data::Dataset& val_ood = plan.val_ood;
  const auto& ood_sets = plan.ood_sets;

  // ---- the run: the plan passed; an earlier run's results in --out go first (see the top of this file).
  if (!o.out_dir.empty()) {
    make_output_dir(o.out_dir, "--out");
    remove_eval_results(o.out_dir);
  }
  const ood::ScoredSet fit_set = run::extract(model, train, fit_rows, norm, o.id + ":train", xo);
  ood::ProtocolInput in;
  in.model = &model;
  in.device = o.device;
  in.input_std = norm.std;
  in.batch_size = o.batch;
  in.settings = settings;
  if (heatmap) in.extra_detectors["heatmap"] = [heatmap] { return std::make_unique<ood::HeatmapDetector>(heatmap); };
  in.fused = plan.fused;
  in.tuning = o.tuning == "all" ? ood::Tuning::All : o.tuning == "features" ? ood::Tuning::FeatureOnly : ood::Tuning::None;
  run::ExtractOptions xi = xo;
  xi.keep_images = need_images;
  in.val_id = run::extract(model, train, split.val, norm, o.id + ":heldout", xi);
  const Tensor fit_labels = data::take_rows(train, fit_rows).labels.to(o.device);
  in.fit = {&fit_set.features, fit_labels, &in.val_id.features, model.head().weight, model.head().bias};
  in.val_ood = run::extract(model, val_ood, first_rows(val_ood.size(), -1), norm, o.val_ood, xi);
  in.test_id = run::extract(model, test, test_rows, norm, o.id, xi);
  for (const auto& [spec, d] : ood_sets)
    in.test_ood.push_back(run::extract(model, d, first_rows(d.size(), -1), norm, spec, xi));
  OODKIT_CHECK(!in.test_ood.empty(), "eval: no OOD test set given (--ood)");
  if (!o.save_features.empty()) save_features(o, plan, fit_set, in);
  // Files --skip-unreadable left out: listed in <out>/skipped_images.txt, or on stderr without --out.
  write_skipped_list("eval", o.out_dir.empty() ? "" : o.out_dir + "/skipped_images.txt");

  // ID accuracy of the classifier on the ID test rows.
  const std::vector<int64_t> predicted = ood::predicted_classes(in.test_id.features.logits).cpu().to_vector<int64_t>();
  const std::vector<int64_t> labels = data::take_rows(test, test_rows).labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) correct += predicted[i] == labels[i];
  const double accuracy = double(correct) / double(labels.size());
  std::printf("features extracted in %.1f s; ID test accuracy %.2f%% (%lld/%zu)\n", seconds_since(t0),
              100 * accuracy, (long long)correct, labels.size());
  std::fflush(stdout);
  // Results that mean little are said so, on stderr and in the report (results.md, results.json).
  std::vector<std::string> warnings;
  const auto warn = [&](const std::string& w) {
    std::fprintf(stderr, "oodkit eval: warning: %s\n", w.c_str());
    warnings.push_back(w);
  };
  if (const char* w = chance_level(accuracy, lc.num_classes))
    warn("the classifier's ID test accuracy " + run::pct(accuracy) + "% is " + w + " (chance: " +
         run::pct(1.0 / double(lc.num_classes)) + "% for " + std::to_string(lc.num_classes) +
         " classes): its OOD scores say little about the detectors; check --checkpoint, --arch and the "
         "normalisation");

  std::string protocol_json;
  if (!o.out_dir.empty()) {
    // Fitted detectors + the settings `oodkit score` needs to reproduce the features.
    make_output_dir(o.out_dir, "--out");
    in.save_dir = o.out_dir + "/detectors";
    make_output_dir(in.save_dir, "--out");
    nlohmann::json p{{"arch", lc.arch},
                     {"num_classes", lc.num_classes},
                     {"checkpoint", checkpoint},
                     {"id", o.id},
                     {"image_size", plan.size},
                     {"image_fit", data::image_fit_name(image_fit())},
                     {"ta_thresholds", fo.ta_thresholds},
                     {"input_mean", norm.mean},
                     {"input_std", norm.std},
                     {"normalization", norm_choice.source},
                     {"nap_eps", fo.nap_eps},
                     {"methods", methods}};
    protocol_json = p.dump(2) + "\n";
  }
  const auto t1 = Clock::now();
  // Progress (one line per setting tried) on stderr, so stdout stays the report.
  const auto say = [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); };
  const std::vector<ood::MethodResult> results = run_methods(in, plan, say);
  // Written once every detector is saved: a folder without it is an unfinished run's. Each method's
  // decision threshold (95% of held-out ID kept) goes with it, and the held-out scores it came from.
  if (!o.out_dir.empty()) {
    run::write_saved_protocol(in.save_dir, nlohmann::json::parse(protocol_json), results);
  }
  std::printf("%zu methods scored in %.1f s\n\n", results.size(), seconds_since(t1));
  for (const ood::MethodResult& r : results)
    if (r.val_auroc < 0.5)
      warn(r.name + ": validation AUROC " + run::pct(r.val_auroc) + " is below 50 (" + o.id + " held-out vs " + o.val_ood +
           "): the score ranks OOD above ID there, so its test results are likely inverted as well");

  write_reports(o, plan, in, results, warnings, accuracy, int64_t(labels.size()));
  return 0;
}

void add_eval_command(CLI::App& app, CommandList& commands) {
  const auto opts = std::make_shared<EvalOptions>();
  EvalOptions& ev = *opts;
  Command c;
  auto* eval_cmd = c.app = app.add_subcommand("eval", "Evaluate a classifier against OOD sets with every post-hoc detector");
  eval_cmd->add_option("--checkpoint", ev.checkpoint, "safetensors state dict, or a torch.save .pt/.pth one (default: the shipped ResNet-20)");
  eval_cmd->add_option("--arch", ev.arch, "architecture (default: the checkpoint's, else resnet20)");
  eval_cmd->add_option("--num-classes", ev.num_classes, "classes (default: from the checkpoint)");
  eval_cmd->add_option("--mean", ev.mean,
                       "input normalisation mean per channel, e.g. 0.4914,0.4822,0.4465 (with --std; default: the "
                       "checkpoint's input_mean metadata, else the ID set's default)");
  eval_cmd->add_option("--std", ev.std, "input normalisation std per channel (with --mean)");
  eval_cmd->add_option("--id", ev.id, "ID dataset")->capture_default_str();
  eval_cmd->add_option("--ood", ev.ood, "OOD test sets, comma-separated name[:split]")->capture_default_str();
  eval_cmd->add_option("--benchmark", ev.benchmark,
                       "openood-cifar10 | openood-cifar100: OpenOOD v1.5's near-OOD and far-OOD groups as the OOD "
                       "test sets (the installed ones; a missing set is named with where to get it), with an average "
                       "per group; sets --id, excludes --ood");
  eval_cmd->add_option("--val-ood", ev.val_ood,
                       "OOD validation set for hyper-parameters: name[:split], or pseudo (transformed held-out ID "
                       "images: jigsaw, blur, inversion; no real OOD data)")
      ->capture_default_str();
  eval_cmd->add_option("--methods", ev.methods,
                       "comma-separated methods or 'all': " + ood::method_list(true) +
                           "; also fused (the recommended fusion, not in 'all')")
      ->capture_default_str();
  eval_cmd->add_option("--fuse", ev.fuse,
                       "[z|p|pmean[w]:]A+B[+C...]: a row fusing detectors on one scale fitted on held-out ID (z: sum "
                       "of z-scores, the default; p: Fisher's method on empirical p-values; pmean: their mean; a "
                       "trailing w chooses weights on the validation pair), e.g. --fuse z:knn+nap+energy; repeatable");
  eval_cmd->add_option("--fused-from", ev.fused_from,
                       "the method fused (greedy selection on the validation pair): its candidates, comma-separated "
                       "(default: every detector, and heatmap with --heatmap)");
  eval_cmd->add_option("--fused-kind", ev.fused_kind, "the method fused: z | p | pmean")->capture_default_str();
  eval_cmd->add_option("--fused-max", ev.fused_max, "the method fused: at most this many components")->capture_default_str();
  eval_cmd->add_option("--fused-margin", ev.fused_margin,
                       "the method fused: add a component only if validation AUROC gains more than this (points)")
      ->capture_default_str();
  eval_cmd->add_option("--set", ev.set,
                       "<method>.<key>=<v>[,<v>...]: one value fixes a hyper-parameter (no tuning over it), a list is "
                       "its tuning grid (e.g. --set react.p=90 --set knn.k=10,50); repeatable");
  eval_cmd->add_option("--tuning", ev.tuning, "all | features (input-perturbation methods use defaults) | none")
      ->capture_default_str();
  eval_cmd->add_option("--fit-limit", ev.fit_limit, "ID training images for fitting (-1: all)")->capture_default_str();
  eval_cmd->add_option("--heldout", ev.heldout, "held-out ID training images (validation)")->capture_default_str();
  eval_cmd->add_option("--val-ood-limit", ev.val_ood_limit, "OOD validation images")->capture_default_str();
  eval_cmd->add_option("--test-limit", ev.test_limit, "ID test images (-1: all)")->capture_default_str();
  eval_cmd->add_option("--ood-limit", ev.ood_limit, "images per OOD test set (-1: all)")->capture_default_str();
  eval_cmd->add_option("--ta-thresholds", ev.ta_thresholds, "Threshold Activation k values")->capture_default_str();
  eval_cmd->add_option("--batch", ev.batch)->capture_default_str()->check(positive_count());
  eval_cmd->add_option("--seed", ev.seed, "--fit-limit's draw and the pseudo-OOD transforms")->capture_default_str();
  eval_cmd->add_option("--split-seed", ev.split_seed,
                       "seed of the held-out ID split (validation pair; a --heatmap decoder must have been fitted "
                       "with the same --heldout and --split-seed)")
      ->capture_default_str();
  add_device_option(eval_cmd, c);
  eval_cmd->add_option("--out", ev.out_dir, "folder for results.{json,csv,md}");
  add_image_fit_option(eval_cmd);
  add_skip_unreadable_option(eval_cmd);
  // Kept so that existing command lines keep working: per-image scores are always written now.
  eval_cmd->add_flag("--dump-scores", "no effect: scores.safetensors is always written with --out");
  eval_cmd->add_flag("--tf32", ev.tf32, "TF32 math in cuDNN/cuBLAS for the classifier (CUDA; k-NN stays strict FP32)");
  eval_cmd->add_option("--heatmap", ev.heatmap,
                       "a decoder trained by `oodkit heatmap fit` (its --out folder): adds the heatmap detector and "
                       "its fusions");
  eval_cmd->add_option("--features", ev.features,
                       "a features file from any network (docs/data.md): evaluates its rows instead of a "
                       "classifier's images; only --methods, --fuse, --fused-*, --set, --tuning, --device and --out apply");
  eval_cmd->add_option("--save-features", ev.save_features,
                       "also write the extracted rows as a features file (for `eval --features`)");
  c.run = [opts, eval_cmd](Device device) {
    opts->device = device;
    if (!opts->benchmark.empty() && opts->features.empty())
      apply_benchmark(*opts, eval_cmd->get_option("--id")->count() > 0, eval_cmd->get_option("--ood")->count() > 0);
    if (opts->features.empty()) return run_eval(*opts);
    // Everything else names images, a classifier or how to split them: the file decides those.
    for (const CLI::Option* opt : eval_cmd->get_options()) {
      const std::string name = opt->get_name();
      const bool applies = name == "--features" || name == "--methods" || name == "--set" || name == "--tuning" ||
                           name == "--fuse" || name.rfind("--fused-", 0) == 0 || name == "--device" ||
                           name == "--out" || name == "--help";
      OODKIT_CHECK(applies || opt->count() == 0, "eval: ", name,
                   " does not apply with --features (the file holds the rows, their split and the head: docs/data.md)");
    }
    return run_eval_features(*opts);
  };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
