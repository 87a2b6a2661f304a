// The evaluation protocol (ood/protocol.h) against independent paths: hyper-parameters are chosen
// on the validation pair only (the test sets cannot change any choice), the reported metrics equal
// a naive recomputation from the reported scores (pairwise AUROC, threshold sweeps for the FPRs),
// and every fusion's scores follow its formula applied to its components' scores, with the weight
// that is best on validation (also for fusions of several detectors: --fuse rows and fused). Protocol.HeatmapFusionsFollowTheirFormula (test_detectors.cpp) does
// the same for the heatmap fusions.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "framework/concat.h"
#include "models/resnet_cifar.h"
#include "ood/detectors.h"
#include "ood/heatmap.h"
#include "ood/protocol.h"
#include "testing.h"

using namespace oodkit;

namespace {

// ---- naive metric references (docs/methods.md, "Metrics"), written as plain loops -------------

// P(id > ood) + 1/2 P(id == ood) over all n*m pairs.
double naive_auroc(const std::vector<double>& id, const std::vector<double>& ood) {
  double s = 0;
  for (double a : id)
    for (double b : ood) s += a > b ? 1.0 : a == b ? 0.5 : 0.0;
  return s / (double(id.size()) * double(ood.size()));
}

std::vector<double> distinct_values(const std::vector<double>& a, const std::vector<double>& b) {
  std::set<double> s(a.begin(), a.end());
  s.insert(b.begin(), b.end());
  return {s.begin(), s.end()};  // ascending
}

double count_ge(const std::vector<double>& v, double t) {
  return double(std::count_if(v.begin(), v.end(), [t](double x) { return x >= t; }));
}
double count_le(const std::vector<double>& v, double t) {
  return double(std::count_if(v.begin(), v.end(), [t](double x) { return x <= t; }));
}

// Classic FPR@95TPR by a sweep over every candidate threshold t (the distinct scores at or above
// the lowest ID score): keep the t whose ID recall #{id >= t}/n is nearest 0.95, then the larger
// recall, then the lower t; report #{ood >= t}/m.
double naive_fpr95_classic(const std::vector<double>& id, const std::vector<double>& ood) {
  const double lowest_id = *std::min_element(id.begin(), id.end());
  const double n = double(id.size());
  bool have = false;
  double best_t = 0, best_dist = 0, best_r = 0;
  for (double t : distinct_values(id, ood)) {
    if (t < lowest_id) continue;
    const double r = count_ge(id, t) / n, dist = std::fabs(r - 0.95);
    if (!have || dist < best_dist || (dist == best_dist && (r > best_r || (r == best_r && t < best_t)))) {
      best_t = t;
      best_dist = dist;
      best_r = r;
      have = true;
    }
  }
  return count_ge(ood, best_t) / double(ood.size());
}

// OpenOOD FPR@95TPR: the lowest t with #{ood <= t}/m >= 0.95; report #{id <= t}/n.
double naive_fpr95_openood(const std::vector<double>& id, const std::vector<double>& ood) {
  for (double t : distinct_values(id, ood))
    if (count_le(ood, t) / double(ood.size()) >= 0.95) return count_le(id, t) / double(id.size());
  ADD_FAILURE() << "no threshold catches 95% of OOD";
  return -1;
}

// Average precision with ID positive (descending thresholds) and with OOD positive on the negated
// score (ascending thresholds), no interpolation.
double naive_aupr_in(const std::vector<double>& id, const std::vector<double>& ood) {
  std::vector<double> t = distinct_values(id, ood);
  std::reverse(t.begin(), t.end());
  double ap = 0, prev_r = 0;
  for (double v : t) {
    const double tp = count_ge(id, v), all = tp + count_ge(ood, v), r = tp / double(id.size());
    ap += (r - prev_r) * (tp / all);
    prev_r = r;
  }
  return ap;
}
double naive_aupr_out(const std::vector<double>& id, const std::vector<double>& ood) {
  double ap = 0, prev_r = 0;
  for (double v : distinct_values(id, ood)) {
    const double tp = count_le(ood, v), all = tp + count_le(id, v), r = tp / double(ood.size());
    ap += (r - prev_r) * (tp / all);
    prev_r = r;
  }
  return ap;
}

TEST(NaiveMetrics, HandWorked) {
  // The references themselves, on values worked out by hand.
  // id {3, 2, 2}, ood {2, 1}: pairs 3>2, 3>1, 2=2 (x2, half each), 2>1 (x2) -> 5/6.
  EXPECT_DOUBLE_EQ(naive_auroc({3, 2, 2}, {2, 1}), 5.0 / 6);
  // 20 ID scores 1..20, OOD {0.5, 1.5, 2.5, 19.5}: recall 19/20 = 0.95 at t in (1, 2]; the lowest
  // such t is 1.5, so OOD 1.5, 2.5, 19.5 count: 3/4.
  std::vector<double> id;
  for (int i = 1; i <= 20; ++i) id.push_back(i);
  EXPECT_DOUBLE_EQ(naive_fpr95_classic(id, {0.5, 1.5, 2.5, 19.5}), 0.75);
  // OpenOOD: 95% of 20 OOD scores 0..19 caught first at t = 18; ID at or below 18: {1.5, 17} -> 2/4.
  std::vector<double> ood20;
  for (int i = 0; i < 20; ++i) ood20.push_back(i);
  EXPECT_DOUBLE_EQ(naive_fpr95_openood({1.5, 17, 18.5, 30}, ood20), 0.5);
  // id {2, 1}, ood {1.5}: t = 2: P = 1, R = 1/2; t = 1.5: R unchanged; t = 1: P = 2/3, R = 1 -> 5/6.
  EXPECT_DOUBLE_EQ(naive_aupr_in({2, 1}, {1.5}), 0.5 + 0.5 * 2.0 / 3);
  // OOD positive, ascending: t = 1: no OOD; t = 1.5: R = 1, P = 1/2 -> 1/2.
  EXPECT_DOUBLE_EQ(naive_aupr_out({2, 1}, {1.5}), 0.5);
}

// ---- a small random network and image sets -------------------------------------------------------

struct Fixture {
  Generator gen{17};
  models::ResNetCifar net{8, 4, gen};
  ood::FeatureOptions fo;
  int64_t side = 16;
  explicit Fixture(int64_t image_side = 16) : side(image_side) {
    net.eval();
    fo.ta_thresholds = {0.1, 0.2};
  }
  Tensor images(int64_t n, double shift) {
    Tensor x = Tensor::randn({n, 3, side, side}, gen);
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = float(p[i] * (1.0 + shift) + shift);
    return x;
  }
  ood::ScoredSet set(const std::string& name, const Tensor& x) {
    return {name, ood::extract_features(net, x, fo), x};
  }
};

// A detector with a grid and heavily tied scores (MSP quantised to 1/bins), so that the metric
// recomputation below meets ties inside the protocol.
class CoarseMsp : public ood::Detector {
 public:
  std::string name() const override { return "coarse_msp"; }
  std::vector<ood::Params> grid() const override { return {{{"bins", 4}}, {{"bins", 8}}, {{"bins", 16}}}; }
  Tensor score(const ood::Features& f) const override {
    std::vector<double> s = ood::to_doubles(ood::msp_score(f.logits));
    for (double& v : s) v = std::floor(v * param("bins")) / param("bins");
    return Tensor::from_vector(s, {int64_t(s.size())});
  }
};

// The protocol input every test here starts from: fit, held-out and validation sets fixed by the
// fixture's generator; the test sets are added by the caller.
struct ProtocolSetup {
  Fixture f;
  ood::Features train, held;
  Tensor labels;
  ood::ProtocolInput in;
  explicit ProtocolSetup(ood::Tuning tuning, int64_t side = 16) : f(side) {
    train = ood::extract_features(f.net, f.images(96, 0.0), f.fo);
    held = ood::extract_features(f.net, f.images(32, 0.0), f.fo);
    labels = Tensor::empty({96}, DType::I64);
    for (int64_t i = 0; i < 96; ++i) labels.data<int64_t>()[i] = i % 4;
    in.model = &f.net;
    in.tuning = tuning;
    in.input_std = {0.5f, 0.25f, 2.0f};
    in.batch_size = 16;
    in.fit = {&train, labels, &held, f.net.head().weight, f.net.head().bias};
    in.val_id = f.set("val_id", f.images(24, 0.0));
    in.val_ood = f.set("val_ood", f.images(24, 0.6));
    in.extra_detectors["coarse_msp"] = [] { return std::make_unique<CoarseMsp>(); };
  }
};

std::map<std::string, const ood::MethodResult*> by_name(const std::vector<ood::MethodResult>& results) {
  std::map<std::string, const ood::MethodResult*> m;
  for (const ood::MethodResult& r : results) m[r.name] = &r;
  return m;
}

// ---- 1. selection never sees test data -------------------------------------------------------------

// The "heatmap" detector of a setup: a small random decoder (4x4 heatmaps) normalising z by the
// min-max of its fit features; the same for equal setups (fixed seed).
void add_heatmap(ProtocolSetup& s) {
  ood::HeatmapModelInfo info;
  info.config = {s.train.z.size(1), 4, 8, {8}};
  info.norm = ood::fit_feature_norm(s.train.z);
  Generator g(21);
  auto model = std::make_shared<ood::HeatmapModel>(info, g);
  s.in.extra_detectors["heatmap"] = [model] { return std::make_unique<ood::HeatmapDetector>(model); };
}

// The same validation pair with two entirely different test sides (other ID test images, other OOD
// test sets, another number of them): every method, the input-perturbation ones fully tuned and the
// heatmap detector and its fusions (heatmap_nap, heatmap_fs_ta, heatmap_msp, heatmap_energy)
// included, keeps the same setting with the same validation AUROC. A protocol that let the test sets
// into the selection (e.g. validation AUROC + test AUROC) changes a choice or a validation AUROC here.
// (The heatmap fusions all keep w = 0 here; TestSetsChangeNoHeatmapFusionChoice makes their
// standardisation matter.)
// Both runs reported `methods` in order with the same chosen settings and validation AUROCs (the
// selection is blind to the test sets); returns how many methods' first test-set AUROC differs.
int expect_same_choices(const std::vector<ood::MethodResult>& ra, const std::vector<ood::MethodResult>& rb,
                        const std::vector<std::string>& methods) {
  EXPECT_EQ(ra.size(), methods.size());
  EXPECT_EQ(rb.size(), methods.size());
  int test_side_differs = 0;
  for (size_t i = 0; i < methods.size() && i < ra.size() && i < rb.size(); ++i) {
    EXPECT_EQ(ra[i].name, methods[i]);
    EXPECT_EQ(rb[i].name, methods[i]);
    EXPECT_EQ(ra[i].chosen, rb[i].chosen) << methods[i] << ": " << ood::params_str(ra[i].chosen) << " vs "
                                          << ood::params_str(rb[i].chosen);
    EXPECT_EQ(ra[i].val_auroc, rb[i].val_auroc) << methods[i];
    // Multi-detector fusions: the same components (fused: the same selection), scales and weights.
    EXPECT_EQ(bool(ra[i].fusion), bool(rb[i].fusion)) << methods[i];
    if (ra[i].fusion && rb[i].fusion) {
      EXPECT_EQ(ra[i].fusion->components, rb[i].fusion->components) << methods[i];
      EXPECT_EQ(ra[i].fusion->weights, rb[i].fusion->weights) << methods[i];
      EXPECT_EQ(ra[i].fusion->selection_auroc, rb[i].fusion->selection_auroc) << methods[i];
      for (size_t c = 0; c < ra[i].fusion->scales.size() && c < rb[i].fusion->scales.size(); ++c) {
        EXPECT_EQ(ra[i].fusion->scales[c].mean, rb[i].fusion->scales[c].mean) << methods[i] << " component " << c;
        EXPECT_EQ(ra[i].fusion->scales[c].std, rb[i].fusion->scales[c].std) << methods[i] << " component " << c;
      }
    }
    test_side_differs += ra[i].per_set[0].auroc != rb[i].per_set[0].auroc;
  }
  return test_side_differs;
}

TEST(ProtocolSelection, TestSetsChangeNoChoice) {
  std::vector<std::string> methods = ood::all_method_names(/*with_heatmap=*/true);
  methods.push_back("coarse_msp");
  // Multi-detector fusions: the recommended one (every detector and the heatmap its candidates),
  // equal weights and weights on the simplex grid.
  for (const char* m : {"fused", "fuse_z(heatmap+knn+nap)", "fuse_p(msp+odin+fs_ta)", "fuse_pmeanw(energy+vim)"})
    methods.push_back(m);
  for (const char* m : {"heatmap", "heatmap_nap", "heatmap_fs_ta", "heatmap_msp", "heatmap_energy"})
    ASSERT_NE(std::find(methods.begin(), methods.end(), m), methods.end()) << m;
  // 8x8 images keep the fully tuned input-perturbation detectors quick.
  ProtocolSetup a(ood::Tuning::All, 8);
  // Same fixture seed, so b's fit and validation sets are bit-identical to a's.
  ProtocolSetup b(ood::Tuning::All, 8);
  add_heatmap(a);
  add_heatmap(b);
  ASSERT_EQ(ood::to_doubles(a.in.val_ood.features.logits), ood::to_doubles(b.in.val_ood.features.logits));
  a.in.test_id = a.f.set("test_id", a.f.images(24, 0.0));
  a.in.test_ood = {a.f.set("near", a.f.images(20, 0.3)), a.f.set("far", a.f.images(20, 1.5))};
  b.in.test_id = b.f.set("test_id_b", b.f.images(40, -0.3));  // other draws: b's generator moved on too
  b.f.images(7, 0.0);
  b.in.test_ood = {b.f.set("other", b.f.images(30, -0.5)), b.f.set("near_b", b.f.images(20, 0.8)),
                   b.f.set("far_b", b.f.images(10, 3.0))};
  const std::vector<ood::MethodResult> ra = ood::run_protocol(a.in, methods);
  const std::vector<ood::MethodResult> rb = ood::run_protocol(b.in, methods);
  // The test sides really differ (not a vacuous comparison).
  EXPECT_GE(expect_same_choices(ra, rb, methods), int(methods.size()) / 2);
}

// The heatmap fusions standardise each component by its held-out ID scores and choose w on the
// validation pair. With the validation OOD set of TestSetsChangeNoChoice they all keep w = 0 (the
// classifier scores are inverted there), where no standardisation can change the choice; here the
// validation OOD set mixes brighter and darker images (shifts +0.3 and -0.3), every fusion's best w
// lies strictly between 0 and 1, and the components' scales decide it. A fusion standardised or
// chosen with test scores changes a w or a validation AUROC when the test sides change.
TEST(ProtocolSelection, TestSetsChangeNoHeatmapFusionChoice) {
  const std::vector<std::string> fusions{"heatmap_nap", "heatmap_fs_ta", "heatmap_msp", "heatmap_energy"};
  std::vector<std::string> methods{"heatmap"};
  methods.insert(methods.end(), fusions.begin(), fusions.end());
  // Fusions of several detectors whose scales (and the weights, and fused's choice) matter here.
  const std::vector<std::string> multi{"fuse_zw(heatmap+nap+energy)", "fuse_p(heatmap+msp)", "fused"};
  methods.insert(methods.end(), multi.begin(), multi.end());
  ProtocolSetup a(ood::Tuning::FeatureOnly, 8), b(ood::Tuning::FeatureOnly, 8);
  for (ProtocolSetup* s : {&a, &b}) {
    s->in.val_ood = s->f.set("val_ood_mixed", concat_rows({s->f.images(12, 0.3), s->f.images(12, -0.3)}));
    add_heatmap(*s);
  }
  ASSERT_EQ(ood::to_doubles(a.in.val_ood.features.logits), ood::to_doubles(b.in.val_ood.features.logits));
  a.in.test_id = a.f.set("test_id", a.f.images(24, 0.0));
  a.in.test_ood = {a.f.set("near", a.f.images(20, 0.3)), a.f.set("far", a.f.images(20, 1.5))};
  b.in.test_id = b.f.set("test_id_b", b.f.images(40, -0.3));
  b.in.test_ood = {b.f.set("other", b.f.images(30, -0.5)), b.f.set("far_b", b.f.images(10, 3.0))};
  const std::vector<ood::MethodResult> ra = ood::run_protocol(a.in, methods);
  const std::vector<ood::MethodResult> rb = ood::run_protocol(b.in, methods);
  // Every method's test side differs (not a vacuous comparison).
  EXPECT_EQ(expect_same_choices(ra, rb, methods), int(methods.size()));
  for (size_t i = 0; i < methods.size() && i < ra.size(); ++i) {
    if (i > 0 && i <= fusions.size()) {  // a fusion: its choice depends on the standardisation (not vacuous)
      const double w = ra[i].chosen.at("w");
      EXPECT_TRUE(w > 0 && w < 1) << methods[i] << " chose w = " << w;
    }
  }
}

// Hand-made features where the best setting on validation is the worst on test, for a detector
// grid (fs_ta's TA thresholds) and a fusion weight (fsta_energy's lambda): the protocol must keep
// the validation choice and report that choice's (poor) test metrics.
TEST(ProtocolSelection, KeepsTheValidationBestNotTheTestBest) {
  // fs_ta[0] (k = 0.1), fs_ta[1] (k = 0.2) and the energy (K = 1 logit: energy = the logit).
  auto features = [](std::vector<double> ta0, std::vector<double> ta1, std::vector<double> logit) {
    const int64_t n = int64_t(ta0.size());
    ood::Features f;
    f.logits = Tensor::from_vector(logit, {n, 1}).to(DType::F32);
    f.fs_ta = {Tensor::from_vector(ta0, {n}).to(DType::F32), Tensor::from_vector(ta1, {n}).to(DType::F32)};
    f.ta_thresholds = {0.1, 0.2};
    return f;
  };
  const std::vector<double> hi{2, 3, 4, 5, 6, 7}, lo{0, 0.5, 1, 1.5, 1.8, 1.9}, mid_lo{0, 1, 2, 3, 4, 5},
      mid_hi{3, 4, 5, 6, 7, 8}, zero(6, 0.0), hundred(6, 100.0);
  // Validation: k = 0.1 separates perfectly, k = 0.2 is inverted; the energy is inverted, so the
  // smallest lambda is best. Test: the reverse in both.
  ood::ScoredSet val_id{"val_id", features(hi, mid_lo, zero), {}};
  ood::ScoredSet val_ood{"val_ood", features(lo, mid_hi, hundred), {}};
  ood::ScoredSet test_id{"test_id", features(mid_lo, hi, hundred), {}};
  ood::ScoredSet test_ood{"test_ood", features(mid_hi, lo, zero), {}};
  Fixture fx;  // the protocol wants a model; these detectors never run it
  ood::ProtocolInput in;
  in.model = &fx.net;
  in.tuning = ood::Tuning::All;
  in.fit.train = &val_id.features;  // fs_ta reads its grid (the TA thresholds) from here
  in.val_id = val_id;
  in.val_ood = val_ood;
  in.test_id = test_id;
  in.test_ood = {test_ood};
  const std::vector<ood::MethodResult> results = ood::run_protocol(in, {"fs_ta", "energy", "fsta_energy"});
  const auto by = by_name(results);
  const ood::MethodResult& ta = *by.at("fs_ta");
  EXPECT_EQ(ood::params_str(ta.chosen), "ta_k=0.1");
  EXPECT_EQ(ta.val_auroc, 1.0);
  EXPECT_EQ(ta.id_scores, mid_lo);  // the k = 0.1 path on the test images
  EXPECT_DOUBLE_EQ(ta.per_set[0].auroc, naive_auroc(mid_lo, mid_hi));
  EXPECT_LT(ta.per_set[0].auroc, 0.2);  // the test-best setting (k = 0.2) would give 1
  // fsta_energy = fs_ta(k = 0.1) + lambda * energy. Validation: OOD gets + 100 lambda, so only
  // lambda = 0.001 keeps 1.9 + 0.1 below the lowest ID score 2 (AUROC 1; lambda >= 0.003 lifts
  // some OOD above ID). Test: ID gets + 100 lambda, so lambda >= 0.1 separates perfectly.
  const ood::MethodResult& fused = *by.at("fsta_energy");
  EXPECT_EQ(ood::params_str(fused.chosen), "lambda=0.001");
  EXPECT_EQ(fused.val_auroc, 1.0);
  std::vector<double> want_id, want_ood;
  for (size_t i = 0; i < 6; ++i) {
    want_id.push_back(mid_lo[i] + 0.001 * 100);
    want_ood.push_back(mid_hi[i] + 0.001 * 0);
  }
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_NEAR(fused.id_scores[i], want_id[i], 1e-12) << i;
    EXPECT_NEAR(fused.ood_scores[0][i], want_ood[i], 1e-12) << i;
  }
  EXPECT_DOUBLE_EQ(fused.per_set[0].auroc, naive_auroc(want_id, want_ood));
  EXPECT_LT(fused.per_set[0].auroc, 0.5);
}

// ---- 2. reported metrics against a naive recomputation ------------------------------------------

// Every method's reported test metrics (and their average) against the naive loops above, applied
// to the test scores the protocol reports. coarse_msp puts ties into the scores.
TEST(ProtocolMetrics, MatchNaiveRecomputationFromReportedScores) {
  ProtocolSetup s(ood::Tuning::FeatureOnly);
  // 30 ID test images: 0.95 n = 28.5, so the classic FPR's recall rule is at work (28/30 and 29/30
  // are equally near 0.95 in exact arithmetic).
  s.in.test_id = s.f.set("test_id", s.f.images(30, 0.0));
  s.in.test_ood = {s.f.set("near", s.f.images(20, 0.3)), s.f.set("far", s.f.images(17, 1.5))};
  std::vector<std::string> methods = ood::all_method_names();
  methods.push_back("coarse_msp");
  const std::vector<ood::MethodResult> results = ood::run_protocol(s.in, methods);
  ASSERT_EQ(results.size(), methods.size());
  bool saw_ties = false;
  for (const ood::MethodResult& r : results) {
    ASSERT_EQ(r.id_scores.size(), 30u) << r.name;
    ASSERT_EQ(r.ood_scores.size(), 2u) << r.name;
    ASSERT_EQ(r.per_set.size(), 2u) << r.name;
    double auroc_sum = 0, fpr_sum = 0, fpr_o_sum = 0;
    for (size_t k = 0; k < 2; ++k) {
      const std::vector<double>& id = r.id_scores;
      const std::vector<double>& ood = r.ood_scores[k];
      const ood::OodMetrics& m = r.per_set[k];
      const double auroc = naive_auroc(id, ood), fpr = naive_fpr95_classic(id, ood),
                   fpr_o = naive_fpr95_openood(id, ood);
      EXPECT_NEAR(m.auroc, auroc, 1e-12) << r.name << " set " << k;
      EXPECT_NEAR(m.fpr_at_95_tpr, fpr, 1e-12) << r.name << " set " << k;
      EXPECT_NEAR(m.fpr_at_95_tpr_openood, fpr_o, 1e-12) << r.name << " set " << k;
      EXPECT_NEAR(m.aupr_in, naive_aupr_in(id, ood), 1e-12) << r.name << " set " << k;
      EXPECT_NEAR(m.aupr_out, naive_aupr_out(id, ood), 1e-12) << r.name << " set " << k;
      EXPECT_EQ(m.n_id, 30) << r.name;
      EXPECT_EQ(m.n_ood, int64_t(ood.size())) << r.name;
      auroc_sum += auroc;
      fpr_sum += fpr;
      fpr_o_sum += fpr_o;
      saw_ties |= distinct_values(id, ood).size() < id.size() + ood.size();
    }
    EXPECT_NEAR(r.average.auroc, auroc_sum / 2, 1e-12) << r.name;
    EXPECT_NEAR(r.average.fpr_at_95_tpr, fpr_sum / 2, 1e-12) << r.name;
    EXPECT_NEAR(r.average.fpr_at_95_tpr_openood, fpr_o_sum / 2, 1e-12) << r.name;
  }
  EXPECT_TRUE(saw_ties);
}

// ---- 3. the nine fusions inside the protocol --------------------------------------------------------

struct FusionRef {
  const char* name;
  const char* a;
  const char* b;
  bool geometric;  // max(a, 1e-6)^w * max(b, 1e-6)^(1-w); else a + lambda * b
};
// docs/methods.md, "Fusions" (written out here, not read from fusion_specs()).
const FusionRef kFusions[] = {{"nap_e", "energy", "nap", true},         {"nap_a", "ash_s", "nap", true},
                              {"nap_r", "react", "nap", true},          {"fsta_msp", "fs_ta", "msp", false},
                              {"fsta_odin", "fs_ta", "odin", false},    {"fsta_energy", "fs_ta", "energy", false},
                              {"fsta_gradnorm", "fs_ta", "gradnorm", false}, {"fsta_react", "fs_ta", "react", false},
                              {"fsta_ash_s", "fs_ta", "ash_s", false}};
const std::vector<double> kW{0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
const std::vector<double> kLambda{0.001, 0.003, 0.01, 0.016, 0.028, 0.05, 0.1, 0.3, 1.0, 3.0, 10.0};

double fuse_ref(const FusionRef& f, double a, double b, double v) {
  return f.geometric ? std::pow(std::max(a, 1e-6), v) * std::pow(std::max(b, 1e-6), 1 - v) : a + v * b;
}
std::vector<double> fuse_ref(const FusionRef& f, const std::vector<double>& a, const std::vector<double>& b,
                             double v) {
  std::vector<double> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(fuse_ref(f, a[i], b[i], v));
  return out;
}

// Each fusion's test scores (ID and every OOD set) equal its formula applied to its components'
// reported test scores at the reported weight; that weight is the first best of the documented grid
// on validation, with the components' validation scores recomputed by the detectors themselves.
// A fusion wired with its components swapped (cls + lambda fs_ta) or with w and 1 - w exchanged
// fails here.
TEST(ProtocolFusions, NineFusionsFollowTheirFormula) {
  ProtocolSetup s(ood::Tuning::FeatureOnly);
  // Slightly shrunk images as validation OOD: every component separates them partly, so most
  // fusions keep a weight inside the grid (checked at the end).
  s.in.val_ood = s.f.set("val_ood", s.f.images(24, -0.2));
  s.in.test_id = s.f.set("test_id", s.f.images(24, 0.0));
  s.in.test_ood = {s.f.set("near", s.f.images(20, -0.3)), s.f.set("far", s.f.images(20, 1.5))};
  std::vector<std::string> methods;
  for (const FusionRef& f : kFusions) {
    for (const char* c : {f.a, f.b})
      if (std::find(methods.begin(), methods.end(), c) == methods.end()) methods.push_back(c);
    methods.push_back(f.name);
  }
  const std::vector<std::string> all = ood::all_method_names();
  for (const FusionRef& f : kFusions) EXPECT_NE(std::find(all.begin(), all.end(), f.name), all.end()) << f.name;
  const std::vector<ood::MethodResult> results = ood::run_protocol(s.in, methods);
  const auto by = by_name(results);

  // Components' validation scores with their kept settings, by the detectors directly.
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> val;
  const ood::ImageContext ic{&s.f.net, s.in.input_std};
  std::set<std::string> components;
  for (const FusionRef& f : kFusions) components.insert({f.a, f.b});
  for (const std::string& name : components) {
    std::unique_ptr<ood::Detector> d = ood::make_detector(name);
    d->fit(s.in.fit);
    d->configure(by.at(name)->chosen);
    auto score = [&](const ood::ScoredSet& set) {
      return ood::to_doubles(d->uses_images() ? d->score_images(ic, set.images) : d->score(set.features));
    };
    val[name] = {score(s.in.val_id), score(s.in.val_ood)};
  }

  int interior = 0;  // fusions whose weight is neither end of the grid
  for (const FusionRef& f : kFusions) {
    SCOPED_TRACE(f.name);
    const ood::MethodResult& fused = *by.at(f.name);
    const ood::MethodResult& a = *by.at(f.a);
    const ood::MethodResult& b = *by.at(f.b);
    const char* key = f.geometric ? "w" : "lambda";
    ASSERT_EQ(fused.chosen.size(), 1u);
    ASSERT_EQ(fused.chosen.count(key), 1u);
    const double v = fused.chosen.at(key);
    // Test scores follow the formula (float64 throughout: only rounding differences).
    const auto expect_formula = [&](const std::vector<double>& got, const std::vector<double>& sa,
                                    const std::vector<double>& sb, const std::string& set) {
      ASSERT_EQ(got.size(), sa.size()) << set;
      for (size_t i = 0; i < got.size(); ++i) {
        const double want = fuse_ref(f, sa[i], sb[i], v);
        EXPECT_NEAR(got[i], want, 1e-12 * std::max(1.0, std::fabs(want))) << set << " row " << i;
      }
    };
    expect_formula(fused.id_scores, a.id_scores, b.id_scores, "test_id");
    for (size_t k = 0; k < s.in.test_ood.size(); ++k)
      expect_formula(fused.ood_scores[k], a.ood_scores[k], b.ood_scores[k], s.in.test_ood[k].name);
    // The weight is the first best of the grid on validation.
    const std::vector<double>& grid = f.geometric ? kW : kLambda;
    double best = -1, best_v = 0;
    for (double g : grid) {
      const double au = naive_auroc(fuse_ref(f, val.at(f.a).first, val.at(f.b).first, g),
                                    fuse_ref(f, val.at(f.a).second, val.at(f.b).second, g));
      if (au > best) {
        best = au;
        best_v = g;
      }
    }
    EXPECT_EQ(v, best_v);
    EXPECT_NEAR(fused.val_auroc, best, 1e-12);
    interior += v != grid.front() && v != grid.back();
  }
  // The weights matter in this setup: most fusions keep an interior weight (w = 0.5 would hide
  // w <-> 1 - w; nap_e and nap_r keep 0.4 here).
  EXPECT_GE(interior, 5);
}

// ---- 4. fusions of several detectors (--fuse, fused) inside the protocol ---------------------------

// docs/methods.md, "Fusing any detectors", as plain loops: z-scores and empirical p-values of each
// component by its held-out ID scores h[i], combined with weights w (sum 1).
double multi_ref(const std::string& kind, const std::vector<double>& w, const std::vector<std::vector<double>>& h,
                 const std::vector<double>& s) {
  const double k = double(s.size());
  double out = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    double mean = 0, var = 0;
    int at_or_below = 0;
    for (double v : h[i]) mean += v / double(h[i].size());
    for (double v : h[i]) {
      var += (v - mean) * (v - mean) / double(h[i].size());
      at_or_below += v <= s[i];
    }
    const double sd = var > 0 ? std::sqrt(var) : 1.0, p = double(1 + at_or_below) / double(h[i].size() + 1);
    out += kind == "z" ? k * w[i] * (s[i] - mean) / sd : kind == "p" ? 2 * k * w[i] * std::log(p) : w[i] * p;
  }
  return out;
}
std::vector<double> multi_ref(const std::string& kind, const std::vector<double>& w,
                              const std::vector<std::vector<double>>& h, const std::vector<const std::vector<double>*>& parts) {
  std::vector<double> out;
  for (size_t r = 0; r < parts[0]->size(); ++r) {
    std::vector<double> s;
    for (const auto* p : parts) s.push_back((*p)[r]);
    out.push_back(multi_ref(kind, w, h, s));
  }
  return out;
}

// Every --fuse row and fused: its scales are its components' held-out ID (val_id) statistics, never
// a test set's; its validation and test scores follow the formula on its components' reported
// scores; tuned weights are the first best of the simplex grid on the validation pair; fused's
// components are the documented greedy rule run here on the candidates' validation scores. A
// protocol fitting a component's scale on test_id rows (or on the validation OOD set) fails here.
TEST(ProtocolFuse, RowsFollowTheirFormulaWithHeldOutScales) {
  ProtocolSetup s(ood::Tuning::FeatureOnly);
  s.in.val_ood = s.f.set("val_ood", concat_rows({s.f.images(12, 0.3), s.f.images(12, -0.3)}));
  // A test ID side drawn unlike the held-out ID images: scales fitted on it would differ.
  s.in.test_id = s.f.set("test_id", s.f.images(24, 0.4));
  s.in.test_ood = {s.f.set("near", s.f.images(20, -0.3)), s.f.set("far", s.f.images(20, 1.5))};
  s.in.fused.candidates = {"msp", "energy", "knn", "nap", "fs_ta", "maxlogit", "vim", "mahalanobis", "react", "ash_s"};
  s.in.fused.margin = 0.0;  // any gain adds a component: selections of several
  const std::vector<std::string> fuse_rows{"fuse_z(knn+nap+energy)", "fuse_p(knn+nap+energy)", "fuse_pmean(nap+msp)",
                                           "fuse_zw(knn+energy)", "fuse_pw(fs_ta+nap)"};
  std::vector<std::string> methods = s.in.fused.candidates;
  methods.insert(methods.end(), fuse_rows.begin(), fuse_rows.end());
  methods.push_back("fused");
  const std::vector<ood::MethodResult> results = ood::run_protocol(s.in, methods);
  const auto by = by_name(results);
  // The candidates' validation OOD scores with their kept settings, by the detectors directly.
  std::map<std::string, std::vector<double>> val_ood;
  for (const std::string& name : s.in.fused.candidates) {
    std::unique_ptr<ood::Detector> d = ood::make_detector(name);
    d->fit(s.in.fit);
    d->configure(by.at(name)->chosen);
    val_ood[name] = ood::to_doubles(d->score(s.in.val_ood.features));
    EXPECT_EQ(ood::to_doubles(d->score(s.in.val_id.features)), by.at(name)->val_id_scores) << name;
  }
  auto expect_near = [](const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, std::fabs(want[i]))) << what << " row " << i;
  };
  int tuned_unequal = 0;
  for (const std::string& name : methods) {
    const ood::MethodResult& r = *by.at(name);
    if (!ood::is_fuse_name(name) && name != "fused") {
      EXPECT_FALSE(r.fusion) << name;
      continue;
    }
    SCOPED_TRACE(name);
    ASSERT_TRUE(r.fusion);
    const ood::FusionSummary& f = *r.fusion;
    std::vector<std::vector<double>> held;
    std::vector<const std::vector<double>*> vid, vood, tid;
    for (const std::string& c : f.components) {
      held.push_back(by.at(c)->val_id_scores);
      vid.push_back(&by.at(c)->val_id_scores);
      vood.push_back(&val_ood.at(c));
      tid.push_back(&by.at(c)->id_scores);
    }
    // The scales: the components' held-out ID mean and std (plain loops), 24 held-out images.
    EXPECT_EQ(f.n_heldout, 24);
    for (size_t c = 0; c < f.components.size(); ++c) {
      double mean = 0, var = 0;
      for (double v : held[c]) mean += v / double(held[c].size());
      for (double v : held[c]) var += (v - mean) * (v - mean) / double(held[c].size());
      EXPECT_NEAR(f.scales[c].mean, mean, 1e-12 * std::max(1.0, std::fabs(mean))) << f.components[c];
      EXPECT_NEAR(f.scales[c].std, std::sqrt(var), 1e-12 * std::max(1.0, std::sqrt(var))) << f.components[c];
    }
    // Validation and test scores follow the formula at the kept weights.
    expect_near(r.val_id_scores, multi_ref(f.combination, f.weights, held, vid), "val_id");
    expect_near(r.id_scores, multi_ref(f.combination, f.weights, held, tid), "test_id");
    for (size_t k = 0; k < s.in.test_ood.size(); ++k) {
      std::vector<const std::vector<double>*> tood;
      for (const std::string& c : f.components) tood.push_back(&by.at(c)->ood_scores[k]);
      expect_near(r.ood_scores[k], multi_ref(f.combination, f.weights, held, tood), s.in.test_ood[k].name);
    }
    const double val_auroc = naive_auroc(multi_ref(f.combination, f.weights, held, vid),
                                         multi_ref(f.combination, f.weights, held, vood));
    EXPECT_NEAR(r.val_auroc, val_auroc, 1e-12);
    // The weights: equal, or the first best of the simplex grid on validation.
    const ood::FuseSpec spec = name == "fused" ? ood::FuseSpec{} : ood::parse_fuse_name(name);
    const size_t k = f.components.size();
    std::vector<double> want_w(k, 1.0 / double(k));
    if (spec.tune_weights) {
      double best = -1;
      for (const std::vector<double>& w : ood::simplex_grid(k)) {
        const double a = naive_auroc(multi_ref(f.combination, w, held, vid), multi_ref(f.combination, w, held, vood));
        if (a > best) {
          best = a;
          want_w = w;
        }
      }
      tuned_unequal += want_w != std::vector<double>(k, 1.0 / double(k));
    }
    EXPECT_EQ(f.weights, want_w);
  }
  EXPECT_GE(tuned_unequal, 1);  // the simplex grid is at work, not only its equal point
  // fused: the greedy rule over the candidates' validation scores, each added while it gains.
  const ood::FusionSummary& fu = *by.at("fused")->fusion;
  EXPECT_EQ(fu.candidates, s.in.fused.candidates);
  std::vector<std::string> chosen;
  std::vector<double> path;
  while (chosen.size() < s.in.fused.max_size) {
    double best = -1;
    std::string best_c;
    for (const std::string& c : s.in.fused.candidates) {
      if (std::find(chosen.begin(), chosen.end(), c) != chosen.end()) continue;
      std::vector<std::string> set = chosen;
      set.push_back(c);
      std::vector<std::vector<double>> held;
      std::vector<const std::vector<double>*> vid, vood;
      for (const std::string& x : set) {
        held.push_back(by.at(x)->val_id_scores);
        vid.push_back(&by.at(x)->val_id_scores);
        vood.push_back(&val_ood.at(x));
      }
      const std::vector<double> w(set.size(), 1.0 / double(set.size()));
      const double a = naive_auroc(multi_ref("z", w, held, vid), multi_ref("z", w, held, vood));
      if (a > best) {
        best = a;
        best_c = c;
      }
    }
    if (best_c.empty() || (!path.empty() && !(best > path.back()))) break;
    chosen.push_back(best_c);
    path.push_back(best);
  }
  EXPECT_EQ(fu.components, chosen);
  ASSERT_EQ(fu.selection_auroc.size(), path.size());
  for (size_t i = 0; i < path.size(); ++i) EXPECT_NEAR(fu.selection_auroc[i], path[i], 1e-12);
  EXPECT_GE(chosen.size(), 2u) << "fused chose " << chosen.front() << " alone, validation AUROC " << path.front();  // a fusion, not one detector
}

}  // namespace
