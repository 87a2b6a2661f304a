#include "ood/metrics.h"

#include <algorithm>
#include <functional>
#include <cmath>
#include <utility>

#include "framework/error.h"

namespace oodkit::ood {

namespace {

// One distinct score value and how many ID / OOD samples have it.
struct Block {
  double value;
  int64_t n_id;
  int64_t n_ood;
};

void check_scores(const std::vector<double>& s, const char* which) {
  OODKIT_CHECK(!s.empty(), "compute_ood_metrics: the ", which, " score set is empty");
  for (size_t i = 0; i < s.size(); ++i)
    OODKIT_CHECK(!std::isnan(s[i]), "compute_ood_metrics: ", which, " score at index ", i, " is NaN (of ",
                 s.size(), " ", which, " scores)");
}

// All scores sorted once, grouped into tie blocks in ascending order of value.
std::vector<Block> tie_blocks(const std::vector<double>& id, const std::vector<double>& ood) {
  std::vector<std::pair<double, bool>> all;  // (score, is_id)
  all.reserve(id.size() + ood.size());
  for (double s : id) all.emplace_back(s, true);
  for (double s : ood) all.emplace_back(s, false);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Block> blocks;
  for (size_t i = 0; i < all.size();) {
    Block b{all[i].first, 0, 0};
    for (; i < all.size() && all[i].first == b.value; ++i) (all[i].second ? b.n_id : b.n_ood) += 1;
    blocks.push_back(b);
  }
  return blocks;
}

// Average precision is a mean of precisions in [0, 1]; rounding in the sum can overshoot 1 by an ulp.
double unit(double v) { return std::min(1.0, std::max(0.0, v)); }

}  // namespace

OodMetrics compute_ood_metrics(const std::vector<double>& id_scores, const std::vector<double>& ood_scores) {
  check_scores(id_scores, "ID");
  check_scores(ood_scores, "OOD");
  const int64_t n = int64_t(id_scores.size()), m = int64_t(ood_scores.size());
  // 2 * n * m must fit the unsigned 64-bit pair count below.
  OODKIT_CHECK(n < (int64_t(1) << 31) && m < (int64_t(1) << 31), "compute_ood_metrics: too many scores (", n,
               " ID, ", m, " OOD); at most 2^31 - 1 per set");
  const std::vector<Block> blocks = tie_blocks(id_scores, ood_scores);
  const size_t nb = blocks.size();
  const double dn = double(n), dm = double(m);

  OodMetrics r;
  r.n_id = n;
  r.n_ood = m;

  // AUROC: twice the Mann-Whitney U, in integers: each ID sample wins 2 against every OOD
  // sample strictly below and 1 against every OOD sample in its tie block.
  {
    uint64_t twice_u = 0, ood_below = 0;
    for (const Block& b : blocks) {
      twice_u += uint64_t(b.n_id) * (2 * ood_below + uint64_t(b.n_ood));
      ood_below += uint64_t(b.n_ood);
    }
    r.auroc = double(twice_u) / (2.0 * dn * dm);
  }

  // AUPR-In: points in descending order; recall steps only where the block holds ID samples.
  // AP = (1/n) sum_j a_j P_j, with the division done once (all precisions 1 give exactly 1).
  {
    int64_t tp = 0, fp = 0;
    double ap = 0;
    for (size_t j = nb; j-- > 0;) {
      tp += blocks[j].n_id;
      fp += blocks[j].n_ood;
      if (blocks[j].n_id > 0) ap += double(blocks[j].n_id) * (double(tp) / double(tp + fp));
    }
    r.aupr_in = unit(ap / dn);
  }

  // AUPR-Out: OOD positive, negated scores, so points in ascending order of the original score.
  {
    int64_t tp = 0, fp = 0;
    double ap = 0;
    for (size_t j = 0; j < nb; ++j) {
      tp += blocks[j].n_ood;
      fp += blocks[j].n_id;
      if (blocks[j].n_ood > 0) ap += double(blocks[j].n_ood) * (double(tp) / double(tp + fp));
    }
    r.aupr_out = unit(ap / dm);
  }

  // Classic FPR@95: see the header. tp[j], fp[j] = #ID, #OOD with score >= blocks[j].value.
  {
    std::vector<int64_t> tp(nb), fp(nb);
    int64_t t = 0, f = 0;
    for (size_t j = nb; j-- > 0;) {
      t += blocks[j].n_id;
      f += blocks[j].n_ood;
      tp[j] = t;
      fp[j] = f;
    }
    // The lowest point considered is the highest one with full recall (the lowest ID score):
    // tp is non-increasing in j and tp[0] == n.
    size_t lowest = 0;
    while (lowest + 1 < nb && tp[lowest + 1] == n) ++lowest;
    // Scan from that point upwards (descending recall); strict '<' keeps the first minimum,
    // i.e. the larger recall on equal distance and the lowest threshold within equal recall.
    size_t best = lowest;
    double best_dist = std::fabs(double(tp[lowest]) / dn - 0.95);
    for (size_t j = lowest + 1; j < nb; ++j) {
      const double dist = std::fabs(double(tp[j]) / dn - 0.95);
      if (dist < best_dist) {
        best_dist = dist;
        best = j;
      }
    }
    r.fpr_at_95_tpr = double(fp[best]) / dm;
    r.classic_threshold = blocks[best].value;
    r.classic_tpr = double(tp[best]) / dn;
  }

  // OpenOOD FPR@95: points in ascending order; the first that catches >= 95% of OOD.
  {
    int64_t caught = 0, flagged = 0;
    for (size_t j = 0; j < nb; ++j) {
      caught += blocks[j].n_ood;
      flagged += blocks[j].n_id;
      if (double(caught) / dm >= 0.95) {
        r.fpr_at_95_tpr_openood = double(flagged) / dn;
        r.openood_threshold = blocks[j].value;
        r.openood_tpr = double(caught) / dm;
        break;
      }
    }
  }
  return r;
}

OodMetrics compute_ood_metrics(const Tensor& id_scores, const Tensor& ood_scores) {
  check_defined(id_scores, "compute_ood_metrics", "id_scores");
  check_defined(ood_scores, "compute_ood_metrics", "ood_scores");
  const Tensor id = id_scores.cpu(), ood = ood_scores.cpu();
  check_float(id, "compute_ood_metrics", "id_scores");
  check_float(ood, "compute_ood_metrics", "ood_scores");
  return compute_ood_metrics(id.to(DType::F64).to_vector<double>(), ood.to(DType::F64).to_vector<double>());
}

double id_threshold(const std::vector<double>& id_scores, int keep_percent) {
  OODKIT_CHECK(!id_scores.empty(), "id_threshold: no held-out ID scores");
  OODKIT_CHECK(keep_percent > 0 && keep_percent <= 100, "id_threshold: keep_percent must be in (0, 100], got ",
               keep_percent);
  for (size_t i = 0; i < id_scores.size(); ++i)
    OODKIT_CHECK(!std::isnan(id_scores[i]), "id_threshold: held-out ID score ", i, " is NaN");
  const int64_t n = int64_t(id_scores.size());
  const int64_t kept = (n * keep_percent + 99) / 100;  // ceil(n * p / 100) >= 1
  std::vector<double> sorted = id_scores;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  return sorted[size_t(kept - 1)];
}

}  // namespace oodkit::ood
