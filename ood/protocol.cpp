#include "ood/protocol.h"

#include <map>

#include "framework/autograd.h"
#include "ood/state_io.h"

namespace oodkit::ood {

std::vector<double> to_doubles(const Tensor& scores) {
  return scores.detach().to(DType::F64).cpu().to_vector<double>();
}

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

std::vector<std::string> all_method_names(bool with_heatmap) {
  std::vector<std::string> names = detector_names();
  if (with_heatmap) names.push_back("heatmap");
  for (const FusionSpec& f : fusion_specs(with_heatmap)) names.push_back(f.name);
  return names;
}

std::string fusion_kind_name(FusionKind k) {
  switch (k) {
    case FusionKind::Geometric: return "geometric";
    case FusionKind::Linear: return "linear";
    case FusionKind::Standardized: return "standardized";
  }
  OODKIT_FAIL("unknown fusion kind");
}

FusionKind parse_fusion_kind(const std::string& name) {
  for (FusionKind k : {FusionKind::Geometric, FusionKind::Linear, FusionKind::Standardized})
    if (fusion_kind_name(k) == name) return k;
  OODKIT_FAIL("unknown fusion kind '", name, "' (geometric, linear or standardized)");
}

namespace {

// Scores of one configured detector on one set.
std::vector<double> score_set(const Detector& d, const ProtocolInput& in, const ScoredSet& set) {
  if (!d.uses_images()) return to_doubles(d.score(set.features));
  OODKIT_CHECK(set.images.defined(), d.name(), ": needs the images of set '", set.name,
               "' (input perturbation), but none were kept");
  ImageContext ctx{in.model, in.input_std};
  std::vector<double> out;
  const int64_t n = set.images.size(0);
  for (int64_t b = 0; b < n; b += in.batch_size) {
    const int64_t len = std::min(in.batch_size, n - b);
    const std::vector<double> s = to_doubles(d.score_images(ctx, set.images.narrow(b, len).to(in.device)));
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

struct SetScores {
  Params chosen;
  double val_auroc = 0;
  std::vector<double> val_id, val_ood, test_id;
  std::vector<std::vector<double>> test_ood;
};

}  // namespace

std::vector<MethodResult> run_protocol(const ProtocolInput& in, const std::vector<std::string>& methods,
                                       const ProgressFn& progress) {
  OODKIT_CHECK(in.model, "run_protocol: no model");
  OODKIT_CHECK(in.val_id.features.size() > 0 && in.val_ood.features.size() > 0,
               "run_protocol: the validation pair is empty");
  OODKIT_CHECK(!in.test_ood.empty(), "run_protocol: no OOD test set");
  std::map<std::string, SetScores> done;
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };

  // Runs a plain detector (memoised): fit, select on validation, score the test sets.
  std::function<const SetScores&(const std::string&)> run_detector = [&](const std::string& name) -> const SetScores& {
    if (auto it = done.find(name); it != done.end()) return it->second;
    const auto extra = in.extra_detectors.find(name);
    std::unique_ptr<Detector> d = extra != in.extra_detectors.end() ? extra->second() : make_detector(name);
    d->fit(in.fit);
    SetScores best;
    bool have = false;
    const bool tune = in.tuning == Tuning::All || (in.tuning == Tuning::FeatureOnly && !d->uses_images());
    const std::vector<Params> settings = tune ? d->grid() : std::vector<Params>{d->defaults()};
    for (const Params& p : settings) {
      d->configure(p);
      std::vector<double> vid = score_set(*d, in, in.val_id), vood = score_set(*d, in, in.val_ood);
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
    if (!in.save_dir.empty()) d->save(in.save_dir + "/" + name);
    best.test_id = score_set(*d, in, in.test_id);
    for (const ScoredSet& s : in.test_ood) best.test_ood.push_back(score_set(*d, in, s));
    return done.emplace(name, std::move(best)).first->second;
  };

  auto run_fusion = [&](const FusionSpec& spec) -> const SetScores& {
    if (auto it = done.find(spec.name); it != done.end()) return it->second;
    const SetScores& a = run_detector(spec.a);
    const SetScores& b = run_detector(spec.b);
    // Standardised fusions put both scores on the scale of their held-out ID scores.
    ScoreScale sa, sb;
    if (spec.kind == FusionKind::Standardized) {
      sa = score_scale(a.val_id);
      sb = score_scale(b.val_id);
    }
    auto fuse_vec = [&](const std::vector<double>& x, const std::vector<double>& y, double v) {
      return to_doubles(fuse(spec, Tensor::from_vector(x, {int64_t(x.size())}),
                             Tensor::from_vector(y, {int64_t(y.size())}), v, sa, sb));
    };
    const char* key = spec.key();
    SetScores best;
    bool have = false;
    for (double v : spec.grid) {
      const double auroc =
          compute_ood_metrics(fuse_vec(a.val_id, b.val_id, v), fuse_vec(a.val_ood, b.val_ood, v)).auroc;
      if (!have || auroc > best.val_auroc) {
        best.chosen = {{key, v}};
        best.val_auroc = auroc;
        have = true;
      }
    }
    const double v = best.chosen[key];
    if (!in.save_dir.empty()) {
      StateWriter w("fusion");
      w.text("name", spec.name).text("a", spec.a).text("b", spec.b).text("fusion_kind", fusion_kind_name(spec.kind));
      w.integer("geometric", spec.kind == FusionKind::Geometric).number(key, v);
      if (spec.kind == FusionKind::Standardized)
        w.number("a_mean", sa.mean).number("a_std", sa.std).number("b_mean", sb.mean).number("b_std", sb.std);
      w.save(in.save_dir + "/" + spec.name);
    }
    say(spec.name + " [" + params_str(best.chosen) + "] validation AUROC " + std::to_string(100 * best.val_auroc));
    best.test_id = fuse_vec(a.test_id, b.test_id, v);
    for (size_t i = 0; i < in.test_ood.size(); ++i) best.test_ood.push_back(fuse_vec(a.test_ood[i], b.test_ood[i], v));
    return done.emplace(spec.name, std::move(best)).first->second;
  };

  const std::vector<FusionSpec> fusions = fusion_specs(in.extra_detectors.count("heatmap") > 0);
  std::vector<MethodResult> results;
  for (const std::string& m : methods) {
    const FusionSpec* fusion = nullptr;
    for (const FusionSpec& f : fusions)
      if (f.name == m) fusion = &f;
    const SetScores& s = fusion ? run_fusion(*fusion) : run_detector(m);
    MethodResult r;
    r.name = m;
    r.chosen = s.chosen;
    r.val_auroc = s.val_auroc;
    r.id_scores = s.test_id;
    r.ood_scores = s.test_ood;
    for (const auto& ood : s.test_ood) r.per_set.push_back(compute_ood_metrics(s.test_id, ood));
    r.average = mean_metrics(r.per_set);
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace oodkit::ood
