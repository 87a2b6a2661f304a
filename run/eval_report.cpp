#include "run/eval_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <tuple>
#include <iomanip>
#include <sstream>

#include "ood/registry.h"

namespace oodkit::run {

namespace {

std::string dataset_of(const std::string& spec) { return spec.substr(0, spec.find(':')); }

// Which test sets are unseen, and the seen ones as one comma-separated list.
struct Seen {
  std::vector<size_t> unseen;
  std::string list;
  bool split_average = false;  // both kinds present: an average without the seen ones is reported
};
Seen seen_sets(const EvalSummary& s) {
  std::vector<std::string> seen_names{dataset_of(s.val_ood)};
  if (!s.decoder_oe.empty()) seen_names.push_back(dataset_of(s.decoder_oe));
  Seen out;
  for (size_t si = 0; si < s.test_sets.size(); ++si) {
    if (std::find(seen_names.begin(), seen_names.end(), dataset_of(s.test_sets[si])) == seen_names.end())
      out.unseen.push_back(si);
    else
      out.list += (out.list.empty() ? "" : ", ") + s.test_sets[si];
  }
  out.split_average = !out.list.empty() && !out.unseen.empty();
  return out;
}

ood::OodMetrics unseen_average(const ood::MethodResult& r, const Seen& seen) {
  std::vector<ood::OodMetrics> m;
  for (size_t si : seen.unseen) m.push_back(r.per_set[si]);
  return ood::mean_metrics(m);
}

// A benchmark group's figures: the mean over its sets' (found by name among s.test_sets).
ood::OodMetrics group_average(const EvalSummary& s, const ood::MethodResult& r, const SetGroup& g) {
  std::vector<ood::OodMetrics> m;
  for (const std::string& set : g.sets) {
    const auto it = std::find(s.test_sets.begin(), s.test_sets.end(), set);
    OODKIT_CHECK(it != s.test_sets.end(), "eval report: benchmark set '", set, "' of ", g.name, " was not evaluated");
    m.push_back(r.per_set[size_t(it - s.test_sets.begin())]);
  }
  return ood::mean_metrics(m);
}

// A group's name in the CSV and the table titles: "near-OOD", or "near-OOD (partial)".
std::string group_label(const SetGroup& g) { return g.partial() ? g.name + " (partial)" : g.name; }

// The table columns: each test set, the average, (split_average) the average without the seen,
// then each benchmark group.
std::vector<std::string> set_names(const EvalSummary& s, const Seen& seen) {
  std::vector<std::string> names = s.test_sets;
  names.push_back("average");
  if (seen.split_average) names.push_back("average without " + seen.list);
  for (const SetGroup& g : s.groups) names.push_back(group_label(g));
  return names;
}

// The benchmark group of column `si`, or null for the other columns.
const SetGroup* group_of_column(const EvalSummary& s, size_t si, const Seen& seen) {
  const size_t first = s.test_sets.size() + 1 + (seen.split_average ? 1 : 0);
  return si >= first && si - first < s.groups.size() ? &s.groups[si - first] : nullptr;
}

ood::OodMetrics column(const EvalSummary& s, const ood::MethodResult& r, size_t si, const Seen& seen) {
  const size_t n_sets = s.test_sets.size();
  if (const SetGroup* g = group_of_column(s, si, seen)) return group_average(s, r, *g);
  return si < n_sets ? r.per_set[si] : si == n_sets ? r.average : unseen_average(r, seen);
}

nlohmann::ordered_json metrics_json(const ood::OodMetrics& m) {
  return {{"auroc", 100 * m.auroc},
          {"aupr_in", 100 * m.aupr_in},
          {"aupr_out", 100 * m.aupr_out},
          {"fpr95_tpr", 100 * m.fpr_at_95_tpr},
          {"fpr95_tpr_openood", 100 * m.fpr_at_95_tpr_openood},
          {"n_id", m.n_id},
          {"n_ood", m.n_ood}};
}

// The five figures of m as one array (in OodMetrics' order) and back.
std::array<double, 5> figures(const ood::OodMetrics& m) {
  return {m.auroc, m.aupr_in, m.aupr_out, m.fpr_at_95_tpr, m.fpr_at_95_tpr_openood};
}
ood::OodMetrics from_figures(const std::array<double, 5>& f, const ood::OodMetrics& counts) {
  ood::OodMetrics m = counts;
  m.auroc = f[0];
  m.aupr_in = f[1];
  m.aupr_out = f[2];
  m.fpr_at_95_tpr = f[3];
  m.fpr_at_95_tpr_openood = f[4];
  return m;
}

// Mean and sample standard deviation (n - 1; 0 for one value) of each figure over `ms`.
std::pair<ood::OodMetrics, ood::OodMetrics> mean_and_std(const std::vector<ood::OodMetrics>& ms) {
  std::array<double, 5> mean{}, var{};
  for (const ood::OodMetrics& m : ms) {
    const auto f = figures(m);
    for (size_t k = 0; k < 5; ++k) mean[k] += f[k] / double(ms.size());
  }
  for (const ood::OodMetrics& m : ms) {
    const auto f = figures(m);
    for (size_t k = 0; k < 5; ++k) var[k] += (f[k] - mean[k]) * (f[k] - mean[k]);
  }
  for (double& v : var) v = ms.size() > 1 ? std::sqrt(v / double(ms.size() - 1)) : 0.0;
  ood::OodMetrics counts;
  counts.n_id = ms.front().n_id;
  counts.n_ood = ms.front().n_ood;
  return {from_figures(mean, counts), from_figures(var, counts)};
}

// The five reported metrics of a table row, in its column order (AUROC ... FPR95*).
std::array<double, 5> metric_values(const ood::OodMetrics& m) {
  return {m.auroc, m.aupr_in, m.aupr_out, m.fpr_at_95_tpr, m.fpr_at_95_tpr_openood};
}

// "12.34" or, for averaged runs, "12.34 ± 0.56".
std::string cell(double mean, double std, int runs) {
  return runs > 1 ? pct(mean) + " ± " + pct(std) : pct(mean);
}

// A number as the reports print settings (params_str's precision).
std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// The multi-detector fusions' section of results.md (none: ""): each --fuse row and "fused" with
// its components, weights and held-out ID scales, and fused's selection path.
std::string fusions_markdown(const EvalSummary& s) {
  std::ostringstream md;
  for (const ood::MethodResult& r : s.results) {
    if (!r.fusion) continue;
    const ood::FusionSummary& f = *r.fusion;
    if (md.tellp() == 0)
      md << "\n## Fused detectors\n\nEach component standardised (z) or mapped to its empirical p-value (p, "
            "pmean) by its " << f.n_heldout << " held-out ID scores; weights sum to 1.\n";
    md << "\n**" << r.name << "** (" << f.combination << ", validation AUROC " << pct(r.val_auroc) << ")";
    if (!f.candidates.empty()) {
      md << ": chosen greedily from " << f.candidates.size() << " candidates, validation AUROC after each addition";
      for (size_t i = 0; i < f.selection_auroc.size(); ++i)
        md << (i ? ", " : " ") << f.components[i] << " " << pct(f.selection_auroc[i]);
    }
    md << "\n\n| component | weight | held-out ID mean | held-out ID std |\n|---|---|---|---|\n";
    for (size_t i = 0; i < f.components.size(); ++i)
      md << "| " << f.components[i] << " | " << num(f.weights[i]) << " | " << num(f.scales[i].mean) << " | "
         << num(f.scales[i].std) << " |\n";
  }
  return md.str();
}

nlohmann::ordered_json fusion_json(const ood::FusionSummary& f) {
  nlohmann::ordered_json j;
  j["combination"] = f.combination;
  j["n_heldout"] = f.n_heldout;
  for (size_t i = 0; i < f.components.size(); ++i)
    j["components"].push_back({{"method", f.components[i]},
                               {"weight", f.weights[i]},
                               {"heldout_mean", f.scales[i].mean},
                               {"heldout_std", f.scales[i].std}});
  if (!f.candidates.empty()) {
    j["candidates"] = f.candidates;
    j["selection_validation_auroc"] = nlohmann::ordered_json::array();
    for (double a : f.selection_auroc) j["selection_validation_auroc"].push_back(100 * a);
  }
  return j;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& x : v) out += (out.empty() ? "" : ", ") + x;
  return out;
}

// The benchmark's paragraph of results.md: its groups, what is missing, the notes ("" without one).
std::string benchmark_markdown(const EvalSummary& s) {
  if (s.benchmark.empty()) return "";
  std::ostringstream md;
  md << "\nBenchmark " << s.benchmark << " (OpenOOD v1.5 groups; each group's figures are the mean over its sets):\n";
  for (const SetGroup& g : s.groups)
    md << "- " << g.name << ": " << join(g.sets)
       << (g.partial() ? " (**partial**: " + join(g.missing) + " not installed)" : "") << "\n";
  for (const std::string& n : s.benchmark_notes) md << "- Note: " << n << ".\n";
  return md.str();
}

}  // namespace

ood::MethodResult average_runs(const std::vector<ood::MethodResult>& runs) {
  OODKIT_CHECK(!runs.empty(), "average_runs: no runs");
  ood::MethodResult out = runs.front();
  out.runs = int(runs.size());
  out.per_run = runs;
  for (auto& r : out.per_run) r.per_run.clear();
  out.per_set.clear();
  out.per_set_std.clear();
  for (size_t si = 0; si < runs.front().per_set.size(); ++si) {
    std::vector<ood::OodMetrics> ms;
    for (const ood::MethodResult& r : runs) {
      OODKIT_CHECK(r.per_set.size() == runs.front().per_set.size(), "average_runs: runs of '", r.name,
                   "' cover different sets");
      ms.push_back(r.per_set[si]);
    }
    const auto [mean, sd] = mean_and_std(ms);
    out.per_set.push_back(mean);
    out.per_set_std.push_back(sd);
  }
  std::vector<ood::OodMetrics> averages;
  double val = 0;
  for (const ood::MethodResult& r : runs) {
    averages.push_back(r.average);
    val += r.val_auroc / double(runs.size());
  }
  std::tie(out.average, out.average_std) = mean_and_std(averages);
  out.average.n_id = runs.front().average.n_id;
  out.average.n_ood = runs.front().average.n_ood;
  out.val_auroc = val;
  return out;
}

std::string pct(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << 100 * v;
  return os.str();
}

std::string eval_markdown(const EvalSummary& s) {
  const Seen seen = seen_sets(s);
  std::ostringstream md;
  md << "# oodkit eval\n\n" << s.arch << " on " << s.id << " (" << s.checkpoint << "), ID test accuracy "
     << pct(s.accuracy) << "%, " << s.n_id_test << " ID test images. Hyper-parameters chosen on " << s.id
     << " held-out vs " << s.val_ood
     << (s.val_ood == "pseudo" ? " (pseudo-OOD: the held-out images jigsawed, blurred or inverted)" : "")
     << " (AUROC). FPR95 = fraction of OOD at or above the 95%-TPR threshold "
     << "(classic); FPR95* = fraction of ID flagged at 95% OOD caught (OpenOOD). The best of each column is bold.\n";
  for (const std::string& w : s.warnings) md << "\n**Warning:** " << w << ".\n";
  if (!s.unavailable.empty()) {  // one line per reason, in the order the reasons first appear
    md << "\nNot run on features alone (they need more than the features, logits and last layer):\n";
    std::vector<std::string> reasons;
    for (const auto& [m, why] : s.unavailable)
      if (std::find(reasons.begin(), reasons.end(), why) == reasons.end()) reasons.push_back(why);
    for (const std::string& why : reasons) {
      std::string names;
      for (const auto& [m, w] : s.unavailable)
        if (w == why) names += (names.empty() ? "" : ", ") + m;
      md << "- " << names << ": " << why << "\n";
    }
  }
  md << benchmark_markdown(s);
  if (seen.split_average)
    md << "\n" << seen.list << " shares its distribution with the validation set"
       << (s.decoder_oe.empty() ? "" : " or the heatmap decoder's OE set")
       << " (a seen distribution): the last table averages without it.\n";
  const std::vector<std::string> names = set_names(s, seen);
  for (size_t si = 0; si < names.size(); ++si) {
    const SetGroup* group = group_of_column(s, si, seen);
    md << "\n## " << names[si]
       << (group ? ": mean over " + join(group->sets) + (group->partial() ? "; not installed: " + join(group->missing) : "")
                 : "")
       << "\n\n| method | setting | AUROC | AUPR-In | AUPR-Out | FPR95 | FPR95* |\n"
       << "|---|---|---|---|---|---|---|\n";
    // The best value of each metric column (higher AUROC/AUPR, lower FPR), printed bold.
    std::array<double, 5> best{-INFINITY, -INFINITY, -INFINITY, INFINITY, INFINITY};
    for (const ood::MethodResult& r : s.results) {
      const std::array<double, 5> v = metric_values(column(s, r, si, seen));
      for (size_t k = 0; k < 5; ++k) best[k] = k < 3 ? std::max(best[k], v[k]) : std::min(best[k], v[k]);
    }
    const auto shown = [&](size_t k, double mean, double sd, int n) {
      return mean == best[k] ? "**" + cell(mean, sd, n) + "**" : cell(mean, sd, n);
    };
    for (const ood::MethodResult& r : s.results) {
      const ood::OodMetrics m = column(s, r, si, seen);
      // The spread of averaged runs: per set and of the average (the unseen average shows means only).
      const ood::OodMetrics sd = r.runs > 1 && si < s.test_sets.size() ? r.per_set_std[si]
                                 : r.runs > 1 && si == s.test_sets.size() ? r.average_std
                                                                          : ood::OodMetrics{};
      const int n = si <= s.test_sets.size() ? r.runs : 1;
      md << "| " << r.name << " | " << ood::params_str(r.chosen)
         << (r.runs > 1 ? " (run 1 of " + std::to_string(r.runs) + ")" : "") << " | "
         << shown(0, m.auroc, sd.auroc, n) << " | " << shown(1, m.aupr_in, sd.aupr_in, n) << " | "
         << shown(2, m.aupr_out, sd.aupr_out, n) << " | " << shown(3, m.fpr_at_95_tpr, sd.fpr_at_95_tpr, n) << " | "
         << shown(4, m.fpr_at_95_tpr_openood, sd.fpr_at_95_tpr_openood, n) << " |\n";
    }
  }
  md << fusions_markdown(s);
  return md.str();
}

nlohmann::ordered_json eval_json(const EvalSummary& s) {
  const Seen seen = seen_sets(s);
  nlohmann::ordered_json j = s.json_header;
  if (seen.split_average) j["seen_sets"] = seen.list;
  if (!s.benchmark.empty()) {
    nlohmann::ordered_json& b = j["benchmark"];
    b["name"] = s.benchmark;
    for (const SetGroup& g : s.groups)
      b["groups"][g.name] = {{"sets", g.sets}, {"missing", g.missing}, {"partial", g.partial()}};
    b["notes"] = s.benchmark_notes;
  }
  if (!s.heatmap.is_null()) j["heatmap"] = s.heatmap;
  // One result's setting, validation AUROC, per-set metrics and their average.
  const auto result_json = [&](const ood::MethodResult& r) {
    nlohmann::ordered_json rj;
    // Rows outside the registry (combinations named on the command line) are fusions.
    rj["family"] = ood::family_name(ood::is_registered(r.name) ? ood::detector_info(r.name).family : ood::Family::Fusion);
    rj["chosen"] = r.chosen;
    rj["validation_auroc"] = 100 * r.val_auroc;
    for (size_t si = 0; si < s.test_sets.size(); ++si) rj["sets"][s.test_sets[si]] = metrics_json(r.per_set[si]);
    rj["average"] = metrics_json(r.average);
    return rj;
  };
  for (const ood::MethodResult& r : s.results) {
    nlohmann::ordered_json mj = result_json(r);
    if (seen.split_average) mj["average_unseen"] = metrics_json(unseen_average(r, seen));
    for (const SetGroup& g : s.groups) {
      mj["groups"][g.name] = metrics_json(group_average(s, r, g));
      mj["groups"][g.name]["partial"] = g.partial();
    }
    if (r.fusion) mj["fusion"] = fusion_json(*r.fusion);
    if (r.runs > 1) {  // several decoders: the figures above are means; their spread and each run
      mj["runs"] = r.runs;
      for (size_t si = 0; si < s.test_sets.size(); ++si) mj["std"]["sets"][s.test_sets[si]] = metrics_json(r.per_set_std[si]);
      mj["std"]["average"] = metrics_json(r.average_std);
      for (const ood::MethodResult& run : r.per_run) mj["per_run"].push_back(result_json(run));
    }
    j["methods"][r.name] = mj;
  }
  return j;
}

std::string eval_csv(const EvalSummary& s) {
  const Seen seen = seen_sets(s);
  const std::vector<std::string> names = set_names(s, seen);
  std::ostringstream csv;
  csv << "method,setting,ood_set,auroc,aupr_in,aupr_out,fpr95_tpr,fpr95_tpr_openood\n";
  for (const ood::MethodResult& r : s.results)
    for (size_t si = 0; si < names.size(); ++si) {
      const ood::OodMetrics m = column(s, r, si, seen);
      csv << r.name << ",\"" << ood::params_str(r.chosen) << "\"," << names[si] << "," << 100 * m.auroc << ","
          << 100 * m.aupr_in << "," << 100 * m.aupr_out << "," << 100 * m.fpr_at_95_tpr << ","
          << 100 * m.fpr_at_95_tpr_openood << "\n";
    }
  return csv.str();
}

NamedTensors eval_scores(const EvalSummary& s) {
  NamedTensors scores;
  for (const ood::MethodResult& r : s.results) {
    scores.emplace_back(r.name + "/" + s.id, Tensor::from_vector(r.id_scores, {int64_t(r.id_scores.size())}));
    for (size_t si = 0; si < s.test_sets.size(); ++si)
      scores.emplace_back(r.name + "/" + s.test_sets[si],
                          Tensor::from_vector(r.ood_scores[si], {int64_t(r.ood_scores[si].size())}));
  }
  return scores;
}

}  // namespace oodkit::run
