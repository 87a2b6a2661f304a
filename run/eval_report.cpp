#include "run/eval_report.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

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

// The table columns: each test set, the average, and (split_average) the average without the seen.
std::vector<std::string> set_names(const EvalSummary& s, const Seen& seen) {
  std::vector<std::string> names = s.test_sets;
  names.push_back("average");
  if (seen.split_average) names.push_back("average without " + seen.list);
  return names;
}

ood::OodMetrics column(const ood::MethodResult& r, size_t si, size_t n_sets, const Seen& seen) {
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

}  // namespace

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
     << "(classic); FPR95* = fraction of ID flagged at 95% OOD caught (OpenOOD).\n";
  for (const std::string& w : s.warnings) md << "\n**Warning:** " << w << ".\n";
  if (seen.split_average)
    md << "\n" << seen.list << " shares its distribution with the validation set"
       << (s.decoder_oe.empty() ? "" : " or the heatmap decoder's OE set")
       << " (a seen distribution): the last table averages without it.\n";
  const std::vector<std::string> names = set_names(s, seen);
  for (size_t si = 0; si < names.size(); ++si) {
    md << "\n## " << names[si] << "\n\n| method | setting | AUROC | AUPR-In | AUPR-Out | FPR95 | FPR95* |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const ood::MethodResult& r : s.results) {
      const ood::OodMetrics m = column(r, si, s.test_sets.size(), seen);
      md << "| " << r.name << " | " << ood::params_str(r.chosen) << " | " << pct(m.auroc) << " | " << pct(m.aupr_in)
         << " | " << pct(m.aupr_out) << " | " << pct(m.fpr_at_95_tpr) << " | " << pct(m.fpr_at_95_tpr_openood) << " |\n";
    }
  }
  return md.str();
}

nlohmann::ordered_json eval_json(const EvalSummary& s) {
  const Seen seen = seen_sets(s);
  nlohmann::ordered_json j = s.json_header;
  if (seen.split_average) j["seen_sets"] = seen.list;
  if (!s.heatmap.is_null()) j["heatmap"] = s.heatmap;
  for (const ood::MethodResult& r : s.results) {
    nlohmann::ordered_json mj;
    mj["chosen"] = r.chosen;
    mj["validation_auroc"] = 100 * r.val_auroc;
    for (size_t si = 0; si < s.test_sets.size(); ++si) mj["sets"][s.test_sets[si]] = metrics_json(r.per_set[si]);
    mj["average"] = metrics_json(r.average);
    if (seen.split_average) mj["average_unseen"] = metrics_json(unseen_average(r, seen));
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
      const ood::OodMetrics m = column(r, si, s.test_sets.size(), seen);
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
