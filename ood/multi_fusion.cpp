#include "ood/multi_fusion.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "ood/fusion.h"  // score_scale
#include "ood/metrics.h"
#include "ood/registry.h"
#include "ood/state_io.h"

namespace oodkit::ood {

std::string combination_name(Combination c) {
  switch (c) {
    case Combination::Z: return "z";
    case Combination::Fisher: return "p";
    case Combination::PMean: return "pmean";
  }
  OODKIT_FAIL("unknown combination");
}

Combination parse_combination(const std::string& name) {
  for (Combination c : {Combination::Z, Combination::Fisher, Combination::PMean})
    if (combination_name(c) == name) return c;
  OODKIT_FAIL("unknown combination '", name, "' (z, p or pmean)");
}

std::string FuseSpec::name() const {
  std::string n = "fuse_" + combination_name(combination) + (tune_weights ? "w" : "") + "(";
  for (size_t i = 0; i < components.size(); ++i) n += (i ? "+" : "") + components[i];
  return n + ")";
}

namespace {
// "A+B+C" -> {A, B, C}, checked: 2..kMaxFuseComponents distinct registered methods.
std::vector<std::string> parse_components(const std::string& list, const std::string& text, const std::string& option) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t plus = list.find('+', start);
    const std::string c = list.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
    OODKIT_CHECK(!c.empty(), option, " '", text, "': an empty component name (expected [z|p|pmean[w]:]A+B[+C...])");
    OODKIT_CHECK(c != "fused" && c.rfind("fuse_", 0) != 0, option, " '", text, "': '", c,
                 "' is itself a fusion of several detectors; list its components instead");
    OODKIT_CHECK(is_registered(c), option, " '", text, "': unknown method '", c, "'; known: ", method_list(true));
    OODKIT_CHECK(std::find(out.begin(), out.end(), c) == out.end(), option, " '", text, "': '", c, "' is named twice");
    out.push_back(c);
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  OODKIT_CHECK(out.size() >= 2 && out.size() <= kMaxFuseComponents, option, " '", text, "': ", out.size(),
               " component", out.size() == 1 ? "" : "s", "; a fusion combines 2 to ", kMaxFuseComponents);
  return out;
}
}  // namespace

FuseSpec parse_fuse_spec(const std::string& text, const std::string& option) {
  FuseSpec s;
  std::string list = text;
  if (const size_t colon = text.find(':'); colon != std::string::npos) {
    std::string kind = text.substr(0, colon);
    list = text.substr(colon + 1);
    if (!kind.empty() && kind.back() == 'w') {
      s.tune_weights = true;
      kind.pop_back();
    }
    OODKIT_CHECK(kind == "z" || kind == "p" || kind == "pmean", option, " '", text, "': unknown combination '",
                 text.substr(0, colon), "' (z, p or pmean, each optionally followed by w: zw, pw, pmeanw)");
    s.combination = parse_combination(kind);
  }
  s.components = parse_components(list, text, option);
  return s;
}

bool is_fuse_name(const std::string& name) {
  return name.rfind("fuse_", 0) == 0 && name.size() > 6 && name.back() == ')' && name.find('(') != std::string::npos;
}

FuseSpec parse_fuse_name(const std::string& name) {
  OODKIT_CHECK(is_fuse_name(name), "'", name, "' is not a fusion name (fuse_<kind>(A+B...))");
  const size_t open = name.find('(');
  const std::string kind = name.substr(5, open - 5), list = name.substr(open + 1, name.size() - open - 2);
  FuseSpec s = parse_fuse_spec(kind + ":" + list, "method");
  OODKIT_CHECK(s.name() == name, "method '", name, "': not in canonical form (expected '", s.name(), "')");
  return s;
}

ComponentScale fit_component_scale(const std::vector<double>& heldout_id, const std::string& what) {
  OODKIT_CHECK(!heldout_id.empty(), what, ": no held-out ID scores to fit the scale on");
  size_t bad = 0;
  for (double v : heldout_id) bad += !std::isfinite(v);
  OODKIT_CHECK(bad == 0, what, ": ", bad, " of its ", heldout_id.size(),
               " held-out ID scores are not finite (NaN or inf); its scale cannot be fitted");
  ComponentScale s;
  s.z = score_scale(heldout_id);
  s.sorted = heldout_id;
  std::sort(s.sorted.begin(), s.sorted.end());
  return s;
}

double empirical_p(double s, const std::vector<double>& sorted) {
  if (std::isnan(s)) return std::numeric_limits<double>::quiet_NaN();
  const size_t at_or_below = size_t(std::upper_bound(sorted.begin(), sorted.end(), s) - sorted.begin());
  return double(1 + at_or_below) / double(sorted.size() + 1);
}

std::vector<double> combine_scaled(Combination c, const std::vector<double>& w, const std::vector<ComponentScale>& scales,
                                   const std::vector<const std::vector<double>*>& parts) {
  const size_t k = parts.size();
  OODKIT_CHECK(k > 0 && w.size() == k && scales.size() == k, "combine_scaled: ", k, " components, ", w.size(),
               " weights, ", scales.size(), " scales");
  const size_t n = parts[0]->size();
  for (size_t i = 0; i < k; ++i)
    OODKIT_CHECK(parts[i]->size() == n, "combine_scaled: component ", i + 1, " has ", parts[i]->size(),
                 " scores, component 1 has ", n);
  std::vector<double> out(n, 0.0);
  for (size_t i = 0; i < k; ++i) {
    const std::vector<double>& s = *parts[i];
    const double kw = double(k) * w[i];
    for (size_t r = 0; r < n; ++r) {
      if (c == Combination::Z)
        out[r] += kw * (s[r] - scales[i].z.mean) / scales[i].z.std;
      else if (c == Combination::Fisher)
        out[r] += 2 * kw * std::log(empirical_p(s[r], scales[i].sorted));
      else
        out[r] += w[i] * empirical_p(s[r], scales[i].sorted);
    }
  }
  return out;
}

std::vector<std::vector<double>> simplex_grid(size_t k) {
  OODKIT_CHECK(k >= 1, "simplex_grid: no components");
  const int m = k == 2 ? 10 : k == 3 ? 6 : 4;
  std::vector<std::vector<double>> grid{std::vector<double>(k, 1.0 / double(k))};
  std::vector<int> counts(k, 0);
  // Compositions of m into k parts, n_1 descending first.
  std::function<void(size_t, int)> walk = [&](size_t i, int left) {
    if (i + 1 == k) {
      counts[i] = left;
      std::vector<double> w(k);
      bool equal = true;
      for (size_t j = 0; j < k; ++j) {
        w[j] = double(counts[j]) / double(m);
        equal &= counts[j] * int(k) == m;
      }
      if (!equal) grid.push_back(w);
      return;
    }
    for (int c = left; c >= 0; --c) {
      counts[i] = c;
      walk(i + 1, left - c);
    }
  };
  walk(0, m);
  return grid;
}

// ---- MultiFusion ----------------------------------------------------------------------------

MultiFusion::MultiFusion(std::string name, Combination c, std::vector<std::string> components, bool tune_weights)
    : name_(std::move(name)), combination_(c), components_(std::move(components)), tune_weights_(tune_weights) {}

namespace {
std::string wkey(size_t i) { return "w" + std::to_string(i + 1); }
Params weight_params(const std::vector<double>& w) {
  Params p;
  for (size_t i = 0; i < w.size(); ++i) p[wkey(i)] = w[i];
  return p;
}
}  // namespace

std::vector<Params> MultiFusion::grid() const {
  const std::vector<std::vector<double>> points =
      tune_weights_ ? simplex_grid(components_.size())
                    : std::vector<std::vector<double>>{std::vector<double>(components_.size(), 1.0 / double(components_.size()))};
  std::vector<Params> g;
  for (const auto& w : points) g.push_back(weight_params(w));
  return g;
}

std::vector<double> MultiFusion::weights() const {
  std::vector<double> w;
  for (size_t i = 0; i < components_.size(); ++i) w.push_back(param(wkey(i).c_str()));
  return w;
}

void MultiFusion::fit_components(const ScoreList& val_id) {
  OODKIT_CHECK(val_id.size() == components_.size(), name_, ": ", components_.size(), " components, got ",
               val_id.size(), " held-out ID score lists");
  std::vector<ComponentScale> s;
  for (size_t i = 0; i < val_id.size(); ++i) s.push_back(fit_component_scale(*val_id[i], name_ + " component '" + components_[i] + "'"));
  scales_ = std::move(s);
}

std::vector<double> MultiFusion::combine(const ScoreList& parts) const {
  OODKIT_CHECK(parts.size() == components_.size(), name_, ": ", components_.size(), " components, got ", parts.size(),
               " score lists");
  OODKIT_CHECK(scales_.size() == components_.size(), name_, ": the components' scales are not fitted");
  return combine_scaled(combination_, weights(), scales_, parts);
}

bool MultiFusion::describe_fusion(FusionSummary& out) const {
  out.combination = combination_name(combination_);
  out.components = components_;
  out.weights = weights();
  out.scales.clear();
  for (const ComponentScale& sc : scales_) out.scales.push_back(sc.z);
  out.n_heldout = scales_.empty() ? 0 : int64_t(scales_.front().sorted.size());
  return true;
}

void MultiFusion::save(const std::string& path) const {
  OODKIT_CHECK(scales_.size() == components_.size(), name_, ": cannot save before the scales are fitted");
  StateWriter w("multi_fusion");
  std::string list;
  for (size_t i = 0; i < components_.size(); ++i) list += (i ? "+" : "") + components_[i];
  w.text("name", name_).text("combination", combination_name(combination_)).text("components", list);
  w.integer("tune_weights", tune_weights_);
  const std::vector<double> ws = weights();
  for (size_t i = 0; i < components_.size(); ++i) {
    w.number(wkey(i), ws[i]).number("m" + std::to_string(i + 1), scales_[i].z.mean).number("sd" + std::to_string(i + 1), scales_[i].z.std);
    if (combination_ != Combination::Z)
      w.tensor("heldout" + std::to_string(i + 1),
               Tensor::from_vector(scales_[i].sorted, {int64_t(scales_[i].sorted.size())}));
  }
  w.integer("n_heldout", int64_t(scales_.front().sorted.size()));
  w.save(path);
}

void MultiFusion::load(const std::string& path) {
  StateReader r(path, "multi_fusion");
  const std::string list = r.text("components");
  std::vector<std::string> comps;
  for (size_t start = 0;;) {
    const size_t plus = list.find('+', start);
    comps.push_back(list.substr(start, plus == std::string::npos ? std::string::npos : plus - start));
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  OODKIT_CHECK(!comps.empty() && comps.size() <= kMaxFuseComponents, "'", r.json_path(), "': ", comps.size(),
               " components");
  const Combination c = parse_combination(r.text("combination"));
  const int64_t n = r.integer("n_heldout");
  OODKIT_CHECK(n > 0, "'", r.json_path(), "': n_heldout ", n);
  std::vector<ComponentScale> scales(comps.size());
  Params p;
  for (size_t i = 0; i < comps.size(); ++i) {
    const std::string k = std::to_string(i + 1);
    p[wkey(i)] = r.number(wkey(i));
    scales[i].z = {r.number("m" + k), r.number("sd" + k)};
    OODKIT_CHECK(scales[i].z.std > 0, "'", r.json_path(), "': sd", k, " is not positive");
    if (c != Combination::Z) {
      scales[i].sorted = r.tensor("heldout" + k, DType::F64, {n}).to_vector<double>();
      OODKIT_CHECK(std::is_sorted(scales[i].sorted.begin(), scales[i].sorted.end()), "'", r.tensors_path(),
                   "': heldout", k, " is not sorted");
    }
  }
  r.expect_no_other_tensors();
  name_ = r.text("name");
  combination_ = c;
  components_ = comps;
  tune_weights_ = r.integer("tune_weights") != 0;
  scales_ = std::move(scales);
  params_ = p;
}

std::unique_ptr<MultiFusion> MultiFusion::load_state(const std::string& path) {
  auto f = std::make_unique<MultiFusion>("", Combination::Z, std::vector<std::string>{}, false);
  f->load(path);
  return f;
}

// ---- fused: greedy forward selection ---------------------------------------------------------

FusedSelection select_fused(Combination c, const std::vector<const std::vector<double>*>& val_id,
                            const std::vector<const std::vector<double>*>& val_ood, double margin, size_t max_size) {
  OODKIT_CHECK(!val_id.empty() && val_id.size() == val_ood.size(), "select_fused: ", val_id.size(), " and ",
               val_ood.size(), " candidates' scores");
  OODKIT_CHECK(max_size >= 1, "select_fused: max_size 0");
  std::vector<ComponentScale> scales;
  for (size_t i = 0; i < val_id.size(); ++i)
    scales.push_back(fit_component_scale(*val_id[i], "fused candidate " + std::to_string(i + 1)));
  // The validation AUROC of the equal-weight fusion of `set`.
  auto auroc_of = [&](const std::vector<size_t>& set) {
    std::vector<ComponentScale> sc;
    std::vector<const std::vector<double>*> id, ood;
    for (size_t i : set) {
      sc.push_back(scales[i]);
      id.push_back(val_id[i]);
      ood.push_back(val_ood[i]);
    }
    const std::vector<double> w(set.size(), 1.0 / double(set.size()));
    return compute_ood_metrics(combine_scaled(c, w, sc, id), combine_scaled(c, w, sc, ood)).auroc;
  };
  FusedSelection out;
  while (out.chosen.size() < max_size) {
    double best = -1;
    size_t best_i = 0;
    for (size_t i = 0; i < val_id.size(); ++i) {
      if (std::find(out.chosen.begin(), out.chosen.end(), i) != out.chosen.end()) continue;
      std::vector<size_t> set = out.chosen;
      set.push_back(i);
      const double a = auroc_of(set);
      if (a > best) {
        best = a;
        best_i = i;
      }
    }
    if (best < 0) break;  // every candidate chosen
    if (!out.chosen.empty() && !(best > out.auroc.back() + margin)) break;
    out.chosen.push_back(best_i);
    out.auroc.push_back(best);
  }
  return out;
}

std::vector<std::string> fused_candidates(bool with_heatmap) {
  std::vector<std::string> c = detector_names();
  if (with_heatmap) c.push_back("heatmap");
  return c;
}

}  // namespace oodkit::ood
