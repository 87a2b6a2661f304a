#include "ood/protocol.h"

#include <algorithm>
#include <map>

#include "framework/autograd.h"
#include "ood/state_io.h"

namespace oodkit::ood {

OodMetrics mean_metrics(const std::vector<OodMetrics>& m) {
  OodMetrics a;
  if (m.empty()) return a;
  for (const OodMetrics& x : m) {
    a.auroc += x.auroc;
    a.aupr_in += x.aupr_in;
    a.aupr_out += x.aupr_out;
    a.fpr_at_95_tpr += x.fpr_at_95_tpr;
    a.fpr_at_95_tpr_openood += x.fpr_at_95_tpr_openood;
    a.n_id += x.n_id;
    a.n_ood += x.n_ood;
  }
  const double n = double(m.size());
  a.auroc /= n;
  a.aupr_in /= n;
  a.aupr_out /= n;
  a.fpr_at_95_tpr /= n;
  a.fpr_at_95_tpr_openood /= n;
  return a;
}

namespace {

struct SetScores {
  Params chosen;
  double val_auroc = 0;
  std::vector<double> val_id, val_ood, test_id;
  std::vector<std::vector<double>> test_ood;
  std::shared_ptr<FusionSummary> fusion;
};

// The sets a method is scored on: 0 val_id, 1 val_ood, 2 test_id, 3 + i test_ood[i].
const ScoredSet& set_at(const ProtocolInput& in, size_t which) {
  return which == 0 ? in.val_id : which == 1 ? in.val_ood : which == 2 ? in.test_id : in.test_ood[which - 3];
}
const std::vector<double>& scores_at(const SetScores& s, size_t which) {
  return which == 0 ? s.val_id : which == 1 ? s.val_ood : which == 2 ? s.test_id : s.test_ood[which - 3];
}

// The detector `name`, unfitted, with its registered grid and the --set overrides.
std::unique_ptr<Detector> make_method(const ProtocolInput& in, const std::string& name) {
  std::unique_ptr<Detector> d;
  if (const auto extra = in.extra_detectors.find(name); extra != in.extra_detectors.end()) {
    d = extra->second();
    if (is_registered(name)) d->set_tuning(detector_info(name).grid, detector_info(name).defaults);
  } else if (is_fuse_name(name)) {
    d = make_detector(name);
  } else {
    const DetectorInfo& info = detector_info(name);
    OODKIT_CHECK(!info.needs_decoder || !info.components.empty(), "run_protocol: method '", name,
                 "' needs a trained decoder (`oodkit eval --heatmap DIR`)");
    d = make_detector(name);
  }
  apply_settings(*d, in.settings);
  return d;
}

}  // namespace

std::vector<MethodResult> run_protocol(const ProtocolInput& in, const std::vector<std::string>& methods,
                                       const ProgressFn& progress) {
  for (const std::string& m : methods)
    OODKIT_CHECK(in.model || !is_registered(m) || !detector_info(m).uses_images, "run_protocol: no model for '", m,
                 "' (it scores images)");
  OODKIT_CHECK(in.val_id.features.size() > 0 && in.val_ood.features.size() > 0,
               "run_protocol: the validation pair is empty");
  OODKIT_CHECK(!in.test_ood.empty(), "run_protocol: no OOD test set");
  std::map<std::string, SetScores> done;  // std::map: references stay valid as methods are added
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };

  // Runs one method (memoised): a detector, or a fusion of methods run first ("fused": its
  // components selected first among its candidates, each run as itself).
  std::function<const SetScores&(const std::string&)> run = [&](const std::string& name) -> const SetScores& {
    if (auto it = done.find(name); it != done.end()) return it->second;
    std::unique_ptr<Detector> d;
    std::shared_ptr<FusionSummary> summary;
    if (name == "fused") {
      // Greedy selection on the validation pair alone: each candidate run (and tuned) as itself.
      summary = std::make_shared<FusionSummary>();
      summary->candidates = in.fused.candidates.empty() ? fused_candidates(in.extra_detectors.count("heatmap") > 0)
                                                        : in.fused.candidates;
      std::vector<const std::vector<double>*> cid, cood;
      for (const std::string& c : summary->candidates) {
        const SetScores& s = run(c);
        cid.push_back(&s.val_id);
        cood.push_back(&s.val_ood);
      }
      const FusedSelection sel = select_fused(in.fused.combination, cid, cood, in.fused.margin, in.fused.max_size);
      std::vector<std::string> chosen;
      for (size_t i : sel.chosen) chosen.push_back(summary->candidates[i]);
      summary->selection_auroc = sel.auroc;
      d = std::make_unique<MultiFusion>("fused", in.fused.combination, chosen, /*tune_weights=*/false);
    } else {
      d = make_method(in, name);
    }
    const std::vector<std::string> component_names = d->components();
    std::vector<const SetScores*> parts;
    for (const std::string& c : component_names) parts.push_back(&run(c));
    const bool composite = !parts.empty();
    if (composite) {
      Detector::ScoreList val_id;
      for (const SetScores* p : parts) val_id.push_back(&p->val_id);
      d->fit_components(val_id);
    } else {
      d->fit(in.fit);
    }
    const ScoreContext ctx{in.model, in.input_std, in.device, in.batch_size};
    // Scores of set `which` at the configured setting (a composite: from its components' scores).
    auto score = [&](size_t which) {
      return score_method(*d, set_at(in, which), ctx, [&](const std::string& c) -> const std::vector<double>& {
        const size_t i = size_t(std::find(component_names.begin(), component_names.end(), c) - component_names.begin());
        return scores_at(*parts.at(i), which);
      });
    };
    // Fusion weights have no official value: they are always chosen on the validation pair.
    const bool tune = composite || in.tuning == Tuning::All || (in.tuning == Tuning::FeatureOnly && !d->uses_images());
    const std::vector<Params> settings = tune ? d->grid() : std::vector<Params>{d->defaults()};
    SetScores best;
    bool have = false;
    for (const Params& p : settings) {
      d->configure(p);
      std::vector<double> vid = score(0), vood = score(1);
      const double auroc = compute_ood_metrics(vid, vood).auroc;
      say(name + " [" + params_str(p) + "] validation AUROC " + std::to_string(100 * auroc));
      if (!have || auroc > best.val_auroc) {
        best.chosen = p;
        best.val_auroc = auroc;
        best.val_id = std::move(vid);
        best.val_ood = std::move(vood);
        have = true;
      }
    }
    d->configure(best.chosen);
    if (FusionSummary f = summary ? *summary : FusionSummary{}; d->describe_fusion(f))
      best.fusion = std::make_shared<FusionSummary>(std::move(f));
    if (!in.save_dir.empty()) d->save(in.save_dir + "/" + name);
    best.test_id = score(2);
    for (size_t i = 0; i < in.test_ood.size(); ++i) best.test_ood.push_back(score(3 + i));
    return done.emplace(name, std::move(best)).first->second;
  };

  std::vector<MethodResult> results;
  for (const std::string& m : methods) {
    const SetScores& s = run(m);
    MethodResult r;
    r.name = m;
    r.chosen = s.chosen;
    r.val_auroc = s.val_auroc;
    r.val_id_scores = s.val_id;
    r.threshold = id_threshold(s.val_id);
    r.id_scores = s.test_id;
    r.ood_scores = s.test_ood;
    r.fusion = s.fusion;
    for (const auto& ood : s.test_ood) r.per_set.push_back(compute_ood_metrics(s.test_id, ood));
    r.average = mean_metrics(r.per_set);
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace oodkit::ood
