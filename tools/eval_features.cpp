// `oodkit eval --features FILE`: the evaluation protocol on features from any network
// (run/features_file.h has the file's contract, docs/data.md the user's view). The same protocol,
// reports and --out layout as `oodkit eval` on images (tools/eval.cpp), with the rows taken from
// the file: fit (fitting), id_val (the held-out ID side of the validation pair), id_test,
// val_ood.<name> (the OOD side) and ood.<name> (the test sets). Methods that need more than the
// features, logits and head are listed as not run (asked for by name, they are refused up front).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/safetensors.h"
#include "ood/detectors.h"
#include "ood/protocol.h"
#include "ood/scores.h"
#include "run/eval_report.h"
#include "run/features_file.h"
#include "run/plan.h"
#include "run/provenance.h"
#include "run/saved_protocol.h"
#include "tools/common.h"
#include "tools/eval.h"
#include "tools/report.h"

namespace oodkit::tools {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

ood::ScoredSet on_device(const run::FeatureSet& s, const std::string& name, Device device) {
  ood::ScoredSet out{name, s.features, Tensor()};
  out.features.z = s.features.z.to(device);
  out.features.logits = s.features.logits.to(device);
  return out;
}

// What the plan checked and read: nothing is written before it passes.
struct FeaturesPlan {
  std::vector<std::string> methods;  // --methods (all: those that run on features), then the --fuse rows
  ood::FusedOptions fused;           // the method fused: its candidates work on features
  std::vector<std::pair<std::string, std::string>> unavailable;  // method, reason
  ood::Settings settings;
  run::FeaturesFile file;
};

FeaturesPlan plan_eval_features(const EvalOptions& o) {
  FeaturesPlan p;
  // --methods all: every method that works on features (the others listed as not run).
  EvalOptions names = o;
  if (o.methods == "all") {
    names.methods.clear();
    for (const std::string& m : ood::all_method_names(/*with_heatmap=*/true)) {
      const std::string why = run::unavailable_on_features(m);
      if (why.empty()) names.methods += (names.methods.empty() ? "" : ",") + m;
      else p.unavailable.emplace_back(m, why);
    }
  }
  // A method that needs images (or a decoder), named anywhere, is refused as such first (eval's
  // own checks below would ask for --heatmap, which does not apply here).
  const auto on_features = [](const std::string& d, const std::string& in) {
    const std::string why = run::unavailable_on_features(d);
    OODKIT_CHECK(why.empty(), "eval: method '", d, "'", in, " cannot run with --features: it ", why);
  };
  for (const std::string& m : o.methods == "all" ? std::vector<std::string>{} : split_list(o.methods)) {
    if (ood::is_registered(m)) on_features(m, "");
    else if (ood::is_fuse_name(m))
      for (const std::string& c : ood::parse_fuse_name(m).components) on_features(c, " (in " + m + ")");
  }
  for (const std::string& f : o.fuse)
    for (const std::string& c : ood::parse_fuse_spec(f, "--fuse").components) on_features(c, " (in --fuse " + f + ")");
  for (const std::string& c : split_list(o.fused_from))
    if (ood::is_registered(c)) on_features(c, " (in --fused-from)");
  // Names, --fuse rows, the method fused's options, --set and --tuning: eval's checks.
  // fused's default candidates: the detectors that work on features (--fused-from: as named).
  EvalMethods m = plan_eval_methods(names, o.methods,
                                    [](const std::string& c) { return run::unavailable_on_features(c).empty(); });
  p.methods = m.methods;
  p.settings = m.settings;
  p.fused = m.fused;
  for (const std::string& d : scored_methods(p.methods, p.fused.candidates)) on_features(d, "");
  if (!o.out_dir.empty()) run::check_output_dir(o.out_dir, "--out");
  try {
    p.file = run::read_features_file(o.features);
  } catch (const Error& e) {
    throw Error(std::string("--features: ") + e.what(), e.where());
  }
  const run::FeaturesFile& f = p.file;
  // ASH's percentiles must keep a feature of this width: left out of "all" and of fused's default
  // candidates, refused when named (in --methods, a --fuse row or --fused-from).
  const auto ash_why = [&](const std::string& d) { return run::ash_problem(d, f.feature_dim(), p.settings); };
  if (o.fused_from.empty()) {
    std::vector<std::string> kept;
    for (const std::string& c : p.fused.candidates)
      if (ash_why(c).empty()) kept.push_back(c);
    p.fused.candidates = kept;
  }
  std::vector<std::string> kept;
  for (const std::string& m : p.methods) {
    const std::vector<std::string> parts = scored_methods({m}, p.fused.candidates);
    std::string why;
    for (const std::string& d : parts)
      if (why.empty() && !ash_why(d).empty()) why = (d == m ? "" : d + ": ") + ash_why(d);
    OODKIT_CHECK(why.empty() || o.methods == "all", "eval: method '", m, "' cannot run on '", f.path, "': ", why);
    if (why.empty()) kept.push_back(m);
    else p.unavailable.emplace_back(m, why);
  }
  p.methods = kept;
  OODKIT_CHECK(!p.methods.empty(), "eval: no method of --methods '", o.methods, "' can run on '", f.path, "'");
  OODKIT_CHECK(std::find(p.methods.begin(), p.methods.end(), "fused") == p.methods.end() || !p.fused.candidates.empty(),
               "eval: the method fused has no candidate that can run on '", f.path, "' (--fused-from)");
  std::printf("oodkit eval --features: %s (%s, %lld classes, %lld features) from %s on %s; fitting on %lld rows, "
              "%lld held out\n",
              f.model.c_str(), f.id.c_str(), (long long)f.num_classes(), (long long)f.feature_dim(), f.path.c_str(),
              o.device.str().c_str(), (long long)f.fit.features.size(), (long long)f.id_val.features.size());
  for (const auto& [m, why] : p.unavailable) std::printf("not run: %s (%s)\n", m.c_str(), why.c_str());
  return p;
}

}  // namespace

int run_eval_features(const EvalOptions& o) {
  const auto t0 = Clock::now();
  const FeaturesPlan plan = plan_eval_features(o);
  const run::FeaturesFile& f = plan.file;

  // ---- the run: an earlier run's results in --out go first (as tools/eval.cpp).
  if (!o.out_dir.empty()) {
    make_output_dir(o.out_dir, "--out");
    remove_eval_results(o.out_dir);
  }
  const ood::ScoredSet fit_set = on_device(f.fit, "fit", o.device);
  ood::ProtocolInput in;
  in.device = o.device;
  in.settings = plan.settings;
  in.fused = plan.fused;
  in.tuning = o.tuning == "all" ? ood::Tuning::All : o.tuning == "features" ? ood::Tuning::FeatureOnly : ood::Tuning::None;
  in.val_id = on_device(f.id_val, f.id + ":heldout", o.device);
  in.fit = {&fit_set.features, f.fit.labels.to(o.device), &in.val_id.features, f.weight.to(o.device),
            f.bias.to(o.device)};
  in.val_ood = on_device(f.val_ood, f.val_ood.name, o.device);
  in.test_id = on_device(f.id_test, f.id, o.device);
  for (const run::FeatureSet& s : f.ood) in.test_ood.push_back(on_device(s, s.name, o.device));

  const std::vector<int64_t> predicted = ood::predicted_classes(in.test_id.features.logits).cpu().to_vector<int64_t>();
  const std::vector<int64_t> labels = f.id_test.labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) correct += predicted[i] == labels[i];
  const double accuracy = double(correct) / double(labels.size());
  std::printf("ID test accuracy %.2f%% (%lld/%zu)\n", 100 * accuracy, (long long)correct, labels.size());
  std::fflush(stdout);
  std::vector<std::string> warnings;
  const auto warn = [&](const std::string& w) {
    std::fprintf(stderr, "oodkit eval: warning: %s\n", w.c_str());
    warnings.push_back(w);
  };
  const int64_t k = f.num_classes();
  if (k > 1 && accuracy < 1.5 / double(k))
    warn("the classifier's ID test accuracy " + run::pct(accuracy) + "% is at chance level (chance: " +
         run::pct(1.0 / double(k)) + "% for " + std::to_string(k) + " classes): its OOD scores say little about the "
         "detectors; check that head.* is the layer after these features and id_test.labels the rows' classes");

  if (!o.out_dir.empty()) {
    in.save_dir = o.out_dir + "/detectors";
    make_output_dir(in.save_dir, "--out");
  }
  const auto t1 = Clock::now();
  const auto say = [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); };
  const std::vector<ood::MethodResult> results = ood::run_protocol(in, plan.methods, say);
  std::printf("%zu methods scored in %.1f s\n\n", results.size(), seconds_since(t1));
  for (const ood::MethodResult& r : results)
    if (r.val_auroc < 0.5)
      warn(r.name + ": validation AUROC " + run::pct(r.val_auroc) + " is below 50 (" + f.id + " held-out vs " +
           f.val_ood.name + "): the score ranks OOD above ID there, so its test results are likely inverted as well");

  run::EvalSummary summary;
  summary.arch = f.model;
  summary.id = f.id;
  summary.checkpoint = f.path;
  summary.val_ood = f.val_ood.name;
  summary.accuracy = accuracy;
  summary.n_id_test = int64_t(labels.size());
  for (const ood::ScoredSet& so : in.test_ood) summary.test_sets.push_back(so.name);
  summary.warnings = warnings;
  summary.unavailable = plan.unavailable;
  summary.results = results;
  const std::string md = run::eval_markdown(summary);
  std::printf("%s", md.c_str());
  if (o.out_dir.empty()) return 0;

  // detectors/protocol.json: what `oodkit score --features` checks a file of new rows against.
  const std::string fingerprint = run::head_fingerprint(f.weight, f.bias);
  nlohmann::json p{{"features", f.path},     {"model", f.model},
                   {"num_classes", k},        {"feature_dim", f.feature_dim()},
                   {"head_fingerprint", fingerprint}, {"id", f.id},
                   {"methods", plan.methods}};
  run::write_saved_protocol(in.save_dir, std::move(p), results);

  nlohmann::ordered_json& j = summary.json_header;
  j["provenance"] = run::provenance();
  j["features"] = f.path;
  j["checkpoint"] = f.path;  // the browser report's header names it
  j["head_fingerprint"] = fingerprint;
  j["data"] = {{"fit", {{"set", "fit"}, {"count", f.fit.features.size()}}},
               {"heldout", {{"set", "id_val"}, {"count", f.id_val.features.size()}}},
               {"validation_ood", {{"set", "val_ood." + f.val_ood.name}, {"count", f.val_ood.features.size()}}},
               {"test_id", {{"set", "id_test"}, {"count", labels.size()}}}};
  for (const ood::ScoredSet& so : in.test_ood) j["data"]["test_ood"][so.name] = so.features.size();
  j["warnings"] = warnings;
  j["arch"] = f.model;
  j["device"] = o.device.str();
  j["id"] = f.id;
  j["id_accuracy"] = 100 * accuracy;
  j["n_id_test"] = labels.size();
  j["validation"] = {{"id", f.id + ":heldout"}, {"n_id", f.id_val.features.size()}, {"ood", f.val_ood.name},
                     {"n_ood", f.val_ood.features.size()}};
  j["tuning"] = o.tuning;
  j["fit_images"] = f.fit.features.size();
  for (const auto& [m, why] : plan.unavailable) j["not_run"][m] = why;
  save_safetensors(o.out_dir + "/scores.safetensors", run::eval_scores(summary));
  write_text_file(o.out_dir + "/results.json", run::eval_json(summary).dump(2) + "\n");
  write_text_file(o.out_dir + "/results.csv", run::eval_csv(summary));
  const bool html = write_html_report(o.out_dir, "oodkit eval: " + f.model + " features on " + f.id);
  write_text_file(o.out_dir + "/results.md", md);  // last: marks the run finished
  std::printf("\nwrote %s/results.{json,csv,md}, scores.safetensors%s in %.1f s\n", o.out_dir.c_str(),
              html ? ", report.html and plots/" : "", seconds_since(t0));
  return 0;
}

}  // namespace oodkit::tools
