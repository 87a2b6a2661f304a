// OOD metrics: hand-worked cases, brute-force references on random tied data, and values
// computed once with scikit-learn (and the Outlier-Exposure reference FPR code).
#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "framework/error.h"
#include "ood/metrics.h"
#include "testing.h"

using namespace oodkit;
using oodkit::ood::compute_ood_metrics;
using oodkit::ood::OodMetrics;

namespace {

constexpr double kExact = 1e-12;  // sums of a few hundred exact ratios

// ---- plain brute-force references ---------------------------------------------------

double brute_auroc(const std::vector<double>& id, const std::vector<double>& ood) {
  double wins = 0;
  for (double a : id)
    for (double b : ood) wins += a > b ? 1.0 : a == b ? 0.5 : 0.0;
  return wins / (double(id.size()) * double(ood.size()));
}

// sklearn's average precision: sum over distinct thresholds t (descending) of
// (R_t - R_prev) * P_t, positives = `pos`, classifier "positive iff score >= t".
double brute_ap(const std::vector<double>& pos, const std::vector<double>& neg) {
  std::set<double> values(pos.begin(), pos.end());
  values.insert(neg.begin(), neg.end());
  double ap = 0, prev_recall = 0;
  for (auto it = values.rbegin(); it != values.rend(); ++it) {
    const double t = *it;
    double tp = 0, fp = 0;
    for (double s : pos) tp += s >= t;
    for (double s : neg) fp += s >= t;
    const double recall = tp / double(pos.size()), precision = tp / (tp + fp);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
  }
  return ap;
}

std::vector<double> negated(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}

// The Outlier-Exposure `fpr_and_fdr_at_recall` written out plainly: distinct thresholds in
// descending order down to the first with full recall, then argmin |recall - 0.95| taking the
// first minimum in the reversed (ascending-threshold) order.
double brute_fpr_classic(const std::vector<double>& id, const std::vector<double>& ood) {
  std::set<double> values(id.begin(), id.end());
  values.insert(ood.begin(), ood.end());
  std::vector<double> recall, fpr;  // in descending threshold order
  for (auto it = values.rbegin(); it != values.rend(); ++it) {
    double tp = 0, fp = 0;
    for (double s : id) tp += s >= *it;
    for (double s : ood) fp += s >= *it;
    recall.push_back(tp / double(id.size()));
    fpr.push_back(fp / double(ood.size()));
    if (tp == double(id.size())) break;
  }
  size_t best = recall.size() - 1;
  for (size_t k = recall.size(); k-- > 0;)
    if (std::fabs(recall[k] - 0.95) < std::fabs(recall[best] - 0.95)) best = k;
  return fpr[best];
}

// OpenOOD: the first distinct threshold t (ascending) with #{ood <= t} / m >= 0.95;
// fraction of ID with score <= t.
double brute_fpr_openood(const std::vector<double>& id, const std::vector<double>& ood) {
  std::set<double> values(id.begin(), id.end());
  values.insert(ood.begin(), ood.end());
  for (double t : values) {
    double caught = 0, flagged = 0;
    for (double s : ood) caught += s <= t;
    for (double s : id) flagged += s <= t;
    if (caught / double(ood.size()) >= 0.95) return flagged / double(id.size());
  }
  return -1;  // unreachable: the largest value catches every OOD sample
}

void expect_in_unit_range(const OodMetrics& r) {
  for (double v : {r.auroc, r.aupr_in, r.aupr_out, r.fpr_at_95_tpr, r.fpr_at_95_tpr_openood}) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
}

// ---- hand-worked cases ---------------------------------------------------------------

TEST(Metrics, PerfectSeparation) {
  const OodMetrics r = compute_ood_metrics(std::vector<double>{2, 3, 4}, std::vector<double>{0, 1});
  EXPECT_EQ(r.auroc, 1.0);
  EXPECT_NEAR(r.aupr_in, 1.0, kExact);
  EXPECT_NEAR(r.aupr_out, 1.0, kExact);
  EXPECT_EQ(r.fpr_at_95_tpr, 0.0);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, 0.0);
  EXPECT_EQ(r.n_id, 3);
  EXPECT_EQ(r.n_ood, 2);
}

TEST(Metrics, InvertedScores) {
  const OodMetrics r = compute_ood_metrics(std::vector<double>{0, 1}, std::vector<double>{2, 3, 4});
  EXPECT_EQ(r.auroc, 0.0);
  // ID positive, descending: ID at 1 gives P = 1/4, ID at 0 gives P = 2/5; each recall step 1/2.
  EXPECT_NEAR(r.aupr_in, 0.5 * 0.25 + 0.5 * 0.4, kExact);
  // OOD positive, ascending: OOD at 2, 3, 4 give P = 1/3, 2/4, 3/5; each recall step 1/3.
  EXPECT_NEAR(r.aupr_out, (1.0 / 3) * (1.0 / 3 + 0.5 + 0.6), kExact);
  EXPECT_EQ(r.fpr_at_95_tpr, 1.0);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, 1.0);
}

TEST(Metrics, AllEqualScores) {
  const OodMetrics r = compute_ood_metrics(std::vector<double>(5, 1.25), std::vector<double>(7, 1.25));
  EXPECT_EQ(r.auroc, 0.5);
  EXPECT_NEAR(r.aupr_in, 5.0 / 12, kExact);
  EXPECT_NEAR(r.aupr_out, 7.0 / 12, kExact);
  EXPECT_EQ(r.fpr_at_95_tpr, 1.0);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, 1.0);
  EXPECT_EQ(r.classic_tpr, 1.0);
}

TEST(Metrics, TiesAcrossSetsCountHalf) {
  // ID 1 beats OOD 0 (1); each ID 2 beats 0 and ties two 2s (1 + 2 * 0.5); ID 3 beats all (3).
  const std::vector<double> id{1, 2, 2, 3}, ood{0, 2, 2};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.auroc, 8.0 / 12);
  // ID positive, descending: t=3: P 1/1; t=2: tp 3, fp 2, P 3/5; t=1: tp 4, fp 2, P 4/6.
  EXPECT_NEAR(r.aupr_in, 0.25 * 1 + 0.5 * 0.6 + 0.25 * (4.0 / 6), kExact);
  // OOD positive, ascending: t=0: P 1/1; t=2: tp 3, fp 3 (ID 1 and both 2s), P 3/6.
  EXPECT_NEAR(r.aupr_out, (1.0 / 3) * 1 + (2.0 / 3) * 0.5, kExact);
}

TEST(Metrics, OneIdAgainstThousandOod) {
  std::vector<double> ood;
  for (int i = 0; i < 1000; ++i) ood.push_back(i / 1000.0);
  const OodMetrics r = compute_ood_metrics(std::vector<double>{0.5}, ood);
  // 500 OOD below 0.5, one tied.
  EXPECT_EQ(r.auroc, 500.5 / 1000);
  // The single ID point is reached at t = 0.5 with 500 OOD at or above it: P = 1/501.
  EXPECT_NEAR(r.aupr_in, 1.0 / 501, kExact);
  EXPECT_EQ(r.fpr_at_95_tpr, 0.5);  // only recall 1 exists: OOD >= 0.5
  // 950 OOD caught at t = 0.949 (OOD 0 .. 0.949); the ID at 0.5 is below: flagged.
  EXPECT_EQ(r.fpr_at_95_tpr_openood, 1.0);
  EXPECT_EQ(r.openood_threshold, 949 / 1000.0);
  expect_in_unit_range(r);
  // The mirror image: 1000 ID against one OOD.
  const OodMetrics s = compute_ood_metrics(ood, std::vector<double>{0.5});
  EXPECT_EQ(s.auroc, 499.5 / 1000);
  EXPECT_NEAR(s.auroc, brute_auroc(ood, {0.5}), kExact);
}

// ---- FPR@95TPR, classic convention -------------------------------------------------------

TEST(Metrics, ClassicFprCountsOodBetweenTheKthAndNextIdScore) {
  // 20 ID scores 1..20: keeping 19 (95%) means any threshold in (1, 2]. The reference code takes
  // the lowest such point, 1.5, so the OOD at 1.5 counts: OOD >= 1.5 is {1.5, 2, 3.5}.
  std::vector<double> id;
  for (int i = 1; i <= 20; ++i) id.push_back(i);
  const std::vector<double> ood{1.5, 2, 0.5, 3.5};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.fpr_at_95_tpr, 0.75);
  EXPECT_EQ(r.classic_threshold, 1.5);
  EXPECT_EQ(r.classic_tpr, 0.95);
  EXPECT_EQ(r.fpr_at_95_tpr, brute_fpr_classic(id, ood));
}

TEST(Metrics, ClassicFprWhen95PercentFallsInsideATieBlock) {
  // 20 ID: {4..20} (17) and three at 1. Recalls: 0.85 above 1, 1.0 at 1; 1.0 is nearer.
  std::vector<double> id{1, 1, 1};
  for (int i = 4; i <= 20; ++i) id.push_back(i);
  const std::vector<double> ood{0.5, 1, 2.5, 5};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.classic_tpr, 1.0);
  EXPECT_EQ(r.classic_threshold, 1.0);
  EXPECT_EQ(r.fpr_at_95_tpr, 0.75);  // OOD >= 1
  EXPECT_EQ(r.fpr_at_95_tpr, brute_fpr_classic(id, ood));
}

TEST(Metrics, ClassicFprTakesTheNearestRecallEvenBelow95) {
  // 50 ID: 47 distinct scores 10..56 and a tie block of three at 1. Recall 0.94 (distance 0.01)
  // beats 1.0 (0.05); within recall 0.94 the lowest point is the OOD score 5.
  std::vector<double> id{1, 1, 1};
  for (int i = 10; i <= 56; ++i) id.push_back(i);
  const std::vector<double> ood{0, 1, 5, 9.5, 10, 20};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.classic_tpr, 0.94);
  EXPECT_EQ(r.classic_threshold, 5.0);
  EXPECT_DOUBLE_EQ(r.fpr_at_95_tpr, 4.0 / 6);  // OOD >= 5
  EXPECT_EQ(r.fpr_at_95_tpr, brute_fpr_classic(id, ood));
}

TEST(Metrics, ClassicFprNearestIsDecidedInDouble) {
  // 10 ID scores 1..10: recalls 0.9 (at 2) and 1.0 (at 1) are both 0.05 from 0.95 on paper,
  // but in double |0.9 - 0.95| < |1.0 - 0.95|, as in the reference code: 0.9 wins.
  std::vector<double> id;
  for (int i = 1; i <= 10; ++i) id.push_back(i);
  const std::vector<double> ood{1.5, 1.75, 3};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.classic_tpr, 0.9);
  EXPECT_EQ(r.classic_threshold, 1.5);
  EXPECT_EQ(r.fpr_at_95_tpr, 1.0);
  EXPECT_EQ(r.fpr_at_95_tpr, brute_fpr_classic(id, ood));
}

TEST(Metrics, ClassicFprScansUpToTheHighestScoreBlock) {
  // ID {5 x19, 3}, OOD {3, 1}. Recall 19/20 = 0.95 exactly only at the highest block (t = 5), where
  // no OOD is kept: 0. (Recall 1 at t = 3 keeps the OOD 3: 1/2, what a scan stopping short gives.)
  std::vector<double> id(19, 5.0);
  id.push_back(3);
  const std::vector<double> ood{3, 1};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.fpr_at_95_tpr, 0.0);
  EXPECT_EQ(r.classic_threshold, 5.0);
  EXPECT_EQ(r.classic_tpr, 0.95);
  EXPECT_EQ(r.fpr_at_95_tpr, brute_fpr_classic(id, ood));
  // The other figures on the same scores. 19 ID at 5 beat both OOD, the ID 3 beats 1 and ties 3:
  // 39.5 / 40. AUPR-In: t = 5: P 1, recall 19/20; t = 3: P 20/21, recall + 1/20. AUPR-Out
  // (ascending): t = 1: P 1, recall 1/2; t = 3: P 2/3, recall + 1/2. OpenOOD: both OOD caught at
  // t = 3, ID at or below 3: one of 20.
  EXPECT_EQ(r.auroc, 39.5 / 40);
  EXPECT_NEAR(r.aupr_in, 0.95 + 0.05 * 20.0 / 21, kExact);
  EXPECT_NEAR(r.aupr_out, 0.5 + 0.5 * 2.0 / 3, kExact);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, 0.05);
  EXPECT_EQ(r.openood_threshold, 3.0);
  // Every ID sample in the highest block (the lowest ID score is the highest score): the only point
  // with full recall is that block, t = 5; the OOD 1 and 3 lie below it.
  const OodMetrics top = compute_ood_metrics(std::vector<double>{5, 5}, std::vector<double>{1, 3});
  EXPECT_EQ(top.fpr_at_95_tpr, 0.0);
  EXPECT_EQ(top.classic_threshold, 5.0);
  EXPECT_EQ(top.classic_tpr, 1.0);
}

TEST(Metrics, TheHighestScoreBlockCountsInEveryScan) {
  // ID {3, 4}, OOD {1, 5 x19}: the highest block holds 19 of the 20 OOD samples.
  std::vector<double> ood(19, 5.0);
  ood.push_back(1);
  const std::vector<double> id{3, 4};
  const OodMetrics r = compute_ood_metrics(id, ood);
  // Each ID beats only the OOD 1: 2 / 40.
  EXPECT_EQ(r.auroc, 2.0 / 40);
  // AUPR-In (descending): t = 5 holds no ID but 19 OOD; t = 4: P 1/20, recall 1/2; t = 3: P 2/21,
  // recall + 1/2.
  EXPECT_NEAR(r.aupr_in, 0.5 / 20 + 0.5 * 2.0 / 21, kExact);
  // AUPR-Out (ascending): t = 1: P 1, recall 1/20; t = 5: P 20/22, recall + 19/20.
  EXPECT_NEAR(r.aupr_out, 0.05 + 0.95 * 20.0 / 22, kExact);
  // OpenOOD: 95% of OOD caught only at t = 5, the highest block; both ID at or below it.
  EXPECT_EQ(r.fpr_at_95_tpr_openood, 1.0);
  EXPECT_EQ(r.openood_threshold, 5.0);
  EXPECT_EQ(r.openood_tpr, 1.0);
  // Classic: recall 1 at t = 3 (distance 0.05) beats 1/2 at t = 4; OOD >= 3: the 19 at 5.
  EXPECT_EQ(r.fpr_at_95_tpr, 0.95);
  EXPECT_EQ(r.classic_threshold, 3.0);
  EXPECT_NEAR(r.aupr_in, brute_ap(id, ood), kExact);
  EXPECT_NEAR(r.aupr_out, brute_ap(negated(ood), negated(id)), kExact);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, brute_fpr_openood(id, ood));
}

// ---- FPR@95TPR, OpenOOD convention --------------------------------------------------------

TEST(Metrics, OpenOodFprHandCase) {
  // 20 OOD 1..20: 95% caught first at t = 19; ID at or below 19: {0.5, 2, 2}.
  std::vector<double> ood;
  for (int i = 1; i <= 20; ++i) ood.push_back(i);
  const std::vector<double> id{0.5, 2, 2, 19.5, 21};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, 0.6);
  EXPECT_EQ(r.openood_threshold, 19.0);
  EXPECT_EQ(r.openood_tpr, 0.95);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, brute_fpr_openood(id, ood));
}

TEST(Metrics, OpenOodFprWhen95PercentFallsInsideATieBlock) {
  // OOD 1..8 and two at 9: 80% caught at 8, 100% at 9; ID at or below 9: {8.5, 9}.
  std::vector<double> ood{9, 9};
  for (int i = 1; i <= 8; ++i) ood.push_back(i);
  const std::vector<double> id{8.5, 9, 9.5};
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_EQ(r.openood_tpr, 1.0);
  EXPECT_DOUBLE_EQ(r.fpr_at_95_tpr_openood, 2.0 / 3);
  EXPECT_EQ(r.fpr_at_95_tpr_openood, brute_fpr_openood(id, ood));
}

// ---- brute force on random tied data --------------------------------------------------------

TEST(Metrics, MatchBruteForceOnRandomIntegerScores) {
  std::mt19937 rng(20240611);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 1 + int(rng() % 60), m = 1 + int(rng() % 60);
    const int levels = 1 + int(rng() % 12);  // few levels: many ties within and across sets
    const int shift = int(rng() % 5);        // ID shifted up by 0..4 levels
    std::vector<double> id(static_cast<size_t>(n)), ood(static_cast<size_t>(m));
    for (double& s : id) s = double(int(rng() % unsigned(levels)) + shift);
    for (double& s : ood) s = double(int(rng() % unsigned(levels)));
    const OodMetrics r = compute_ood_metrics(id, ood);
    SCOPED_TRACE("trial " + std::to_string(trial) + " n=" + std::to_string(n) + " m=" + std::to_string(m));
    EXPECT_NEAR(r.auroc, brute_auroc(id, ood), kExact);
    EXPECT_NEAR(r.aupr_in, brute_ap(id, ood), kExact);
    EXPECT_NEAR(r.aupr_out, brute_ap(negated(ood), negated(id)), kExact);
    EXPECT_EQ(r.fpr_at_95_tpr, brute_fpr_classic(id, ood));
    EXPECT_EQ(r.fpr_at_95_tpr_openood, brute_fpr_openood(id, ood));
    expect_in_unit_range(r);
  }
}

TEST(Metrics, MatchBruteForceOnContinuousScoresWithLargeSets) {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> id(size_t{1500}), ood(size_t{1100});
  for (double& s : id) s = normal(rng) + 1.0;
  for (double& s : ood) s = normal(rng);
  const OodMetrics r = compute_ood_metrics(id, ood);
  EXPECT_NEAR(r.auroc, brute_auroc(id, ood), kExact);
  EXPECT_NEAR(r.aupr_in, brute_ap(id, ood), 1e-11);
  EXPECT_NEAR(r.aupr_out, brute_ap(negated(ood), negated(id)), 1e-11);
  EXPECT_EQ(r.fpr_at_95_tpr, brute_fpr_classic(id, ood));
  EXPECT_EQ(r.fpr_at_95_tpr_openood, brute_fpr_openood(id, ood));
  EXPECT_EQ(r.classic_tpr, 0.95);  // 1425 of 1500 exactly, no ties
}

// ---- scikit-learn cross-check -----------------------------------------------------------------
// Expected values computed once with scikit-learn 1.9.1 / numpy 2.4.6 on the same generated
// scores: roc_auc_score(is_id, s), average_precision_score(is_id, s),
// average_precision_score(is_ood, -s), the Outlier-Exposure fpr_and_fdr_at_recall(is_id, s, 0.95),
// and fpr[argmax(tpr >= 0.95)] of roc_curve(is_ood, -s, drop_intermediate=False) (OpenOOD; the
// default drop_intermediate=True gave the same values here).

struct SklearnCase {
  const char* name;
  std::vector<double> id, ood;
  double auroc, aupr_in, aupr_out, fpr_classic, fpr_openood;
};

std::vector<SklearnCase> sklearn_cases() {
  std::vector<SklearnCase> cases;
  {
    SklearnCase c{"A: 230 vs 170, one-decimal grid", {}, {}, 0.65065217391304353, 0.75042430474810728,
                  0.5950583714333223, 0.8294117647058824, 0.74347826086956526};
    for (int i = 0; i < 230; ++i) c.id.push_back(((i * 7919) % 101) / 10.0);
    for (int i = 0; i < 170; ++i) c.ood.push_back(((i * 104729 + 13) % 89) / 10.0 - 1.0);
    cases.push_back(c);
  }
  {
    SklearnCase c{"B: 61 vs 47, integer grid", {}, {}, 0.62434600627833969, 0.73168893777509036,
                  0.49955255522347397, 0.8936170212765957, 0.72131147540983609};
    for (int i = 0; i < 61; ++i) c.id.push_back(double((i * 37) % 11));
    for (int i = 0; i < 47; ++i) c.ood.push_back(double((i * 53 + 5) % 8));
    cases.push_back(c);
  }
  {
    SklearnCase c{"C: 1 vs 1000", {0.5}, {}, 0.50049999999999994, 0.001996007984031936, 0.99930834957642523,
                  0.5, 1.0};
    for (int i = 0; i < 1000; ++i) c.ood.push_back(((i * 7919) % 1000) / 1000.0);
    cases.push_back(c);
  }
  return cases;
}

TEST(Metrics, MatchScikitLearnValues) {
  for (const SklearnCase& c : sklearn_cases()) {
    SCOPED_TRACE(c.name);
    const OodMetrics r = compute_ood_metrics(c.id, c.ood);
    EXPECT_NEAR(r.auroc, c.auroc, kExact);
    EXPECT_NEAR(r.aupr_in, c.aupr_in, kExact);
    EXPECT_NEAR(r.aupr_out, c.aupr_out, kExact);
    EXPECT_DOUBLE_EQ(r.fpr_at_95_tpr, c.fpr_classic);
    EXPECT_DOUBLE_EQ(r.fpr_at_95_tpr_openood, c.fpr_openood);
  }
}

// ---- tensors and errors ---------------------------------------------------------------------

TEST(Metrics, TensorOverloadMatchesVectors) {
  Generator gen(99);
  Tensor id = Tensor::randn({40}, gen), ood = Tensor::randn({4, 9}, gen);
  const OodMetrics a = compute_ood_metrics(id, ood);
  const std::vector<float> idf = id.to_vector<float>(), oodf = ood.to_vector<float>();
  const OodMetrics b = compute_ood_metrics(std::vector<double>(idf.begin(), idf.end()),
                                           std::vector<double>(oodf.begin(), oodf.end()));
  EXPECT_EQ(a.auroc, b.auroc);
  EXPECT_EQ(a.aupr_in, b.aupr_in);
  EXPECT_EQ(a.aupr_out, b.aupr_out);
  EXPECT_EQ(a.fpr_at_95_tpr, b.fpr_at_95_tpr);
  EXPECT_EQ(a.fpr_at_95_tpr_openood, b.fpr_at_95_tpr_openood);
  EXPECT_EQ(a.n_ood, 36);
  if (cuda_available()) {
    const OodMetrics c = compute_ood_metrics(id.to(Device::cuda()), ood.to(Device::cuda()));
    EXPECT_EQ(c.auroc, b.auroc);
    EXPECT_EQ(c.fpr_at_95_tpr, b.fpr_at_95_tpr);
  }
  EXPECT_THROW(compute_ood_metrics(Tensor::zeros({3}, DType::I64), ood), Error);
}

TEST(Metrics, RejectsEmptySetsAndNaN) {
  EXPECT_THROW(compute_ood_metrics(std::vector<double>{}, std::vector<double>{1}), Error);
  EXPECT_THROW(compute_ood_metrics(std::vector<double>{1}, std::vector<double>{}), Error);
  try {
    compute_ood_metrics(std::vector<double>{1, 2}, std::vector<double>{0, 1, std::nan(""), 3});
    FAIL() << "NaN accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("OOD score at index 2 is NaN"), std::string::npos) << what;
  }
  try {
    compute_ood_metrics(std::vector<double>{std::nan("")}, std::vector<double>{0});
    FAIL() << "NaN accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ID score at index 0 is NaN"), std::string::npos) << e.what();
  }
}

TEST(Metrics, InfinitiesAreOrdinaryExtremes) {
  const double inf = INFINITY;
  const OodMetrics r = compute_ood_metrics(std::vector<double>{inf, 1, inf}, std::vector<double>{-inf, inf});
  // ID inf vs OOD: beats -inf, ties inf (1.5 each); ID 1 beats -inf (1): 4 of 6.
  EXPECT_EQ(r.auroc, 4.0 / 6);
  EXPECT_NEAR(r.aupr_in, brute_ap({inf, 1, inf}, {-inf, inf}), kExact);
}

// The decision threshold keeping 95% of held-out ID scores (ood::id_threshold): hand-worked.
TEST(Metrics, IdThresholdKeepsTheRequestedShareOfIdScores) {
  using oodkit::ood::id_threshold;
  std::vector<double> twenty;
  for (int i = 1; i <= 20; ++i) twenty.push_back(21 - i);  // 20, 19, ..., 1 (order must not matter)
  // ceil(20 * 0.95) = 19 kept: the 19th largest, 2 (scores >= 2: 19 of 20).
  EXPECT_EQ(id_threshold(twenty), 2.0);
  // n = 5: ceil(4.75) = 5 kept, so the smallest; 100%: the smallest too; 50%: the 3rd largest of 5.
  EXPECT_EQ(id_threshold({3, 9, 1, 7, 5}), 1.0);
  EXPECT_EQ(id_threshold({3, 9, 1, 7, 5}, 100), 1.0);
  EXPECT_EQ(id_threshold({3, 9, 1, 7, 5}, 50), 5.0);
  // n = 100: exactly 95 kept (integer arithmetic: 0.95 * 100 in doubles is 95.00000000000001 or so
  // for some n; ceil must not round it up to 96).
  std::vector<double> hundred;
  for (int i = 0; i < 100; ++i) hundred.push_back(i);
  EXPECT_EQ(id_threshold(hundred), 5.0);  // 5..99: 95 scores
  // Ties: {4, 4, 4, 1}: ceil(3.8) = 4 kept -> 1; at 75%: 3 kept -> 4.
  EXPECT_EQ(id_threshold({4, 1, 4, 4}), 1.0);
  EXPECT_EQ(id_threshold({4, 1, 4, 4}, 75), 4.0);
  EXPECT_THROW(id_threshold({}), Error);
  EXPECT_THROW(id_threshold({1, std::nan("")}), Error);
  EXPECT_THROW(id_threshold({1, 2}, 0), Error);
  EXPECT_THROW(id_threshold({1, 2}, 101), Error);
}

}  // namespace
