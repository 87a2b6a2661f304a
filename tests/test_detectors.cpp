#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "framework/ops/elementwise.h"
#include "models/resnet_cifar.h"
#include "ood/detectors.h"
#include "ood/heatmap.h"
#include "ood/input_ops.h"
#include "ood/protocol.h"
#include "ood/scores.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::kF32;

namespace {

class InputOpsTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(InputOpsTest);

TEST_P(InputOpsTest, PerturbMatchesFormula) {
  Tensor x = Tensor::randn({2, 3, 4, 5}, gen), g = Tensor::randn({2, 3, 4, 5}, gen);
  g.data<float>()[7] = 0.0f;  // g = 0 counts as +1 (ge(grad, 0) in the official code)
  const std::array<float, 3> std{0.5f, 0.25f, 2.0f};
  std::vector<float> ref(size_t(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / 20) % 3;
    const float sign = g.data<float>()[i] >= 0 ? 1.f : -1.f;
    ref[size_t(i)] = x.data<float>()[i] - 0.01f * sign / std[size_t(c)];
  }
  const Tensor y = ood::perturb_against_gradient(x.to(device()), g.to(device()), 0.01, std);
  EXPECT_ALL_CLOSE(y, Tensor::from_vector(ref, x.shape()), kF32);
  EXPECT_THROW(ood::perturb_against_gradient(x, g, -1.0, std), Error);
  EXPECT_THROW(ood::perturb_against_gradient(x, Tensor::zeros({2, 3, 4, 4}), 0.1, std), Error);
}

TEST_P(InputOpsTest, NormalizeRowsGivesUnitRows) {
  Tensor x = Tensor::randn({7, 33}, gen);
  x.narrow(3, 1).fill_(0.0);  // a zero row stays zero (1e-10 guard)
  std::vector<float> ref(size_t(x.numel()));
  for (int64_t r = 0; r < 7; ++r) {
    double s = 0;
    for (int64_t j = 0; j < 33; ++j) s += double(x.data<float>()[r * 33 + j]) * x.data<float>()[r * 33 + j];
    for (int64_t j = 0; j < 33; ++j) ref[size_t(r * 33 + j)] = float(x.data<float>()[r * 33 + j] / (std::sqrt(s) + 1e-10));
  }
  EXPECT_ALL_CLOSE(ood::normalize_rows(x.to(device())), Tensor::from_vector(ref, x.shape()), kF32);
}

// A small random network and two image distributions that it separates a little.
struct Fixture {
  Generator gen{17};
  models::ResNetCifar net{8, 4, gen};
  Fixture() { net.eval(); }
  Tensor images(int64_t n, double shift) {
    Tensor x = Tensor::randn({n, 3, 16, 16}, gen);
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = float(p[i] * (1.0 + shift) + shift);
    return x;
  }
  ood::ScoredSet set(const std::string& name, const Tensor& x, const ood::FeatureOptions& fo) {
    return {name, ood::extract_features(net, x, fo), x};
  }
};

TEST(Detectors, EveryNameBuildsAndUnknownNamesAreListed) {
  for (const std::string& n : ood::detector_names()) EXPECT_EQ(ood::make_detector(n)->name(), n);
  try {
    ood::make_detector("bogus");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mahalanobis"), std::string::npos);
  }
}

// KNN against a naive loop: S = -|| z/|z| - b_(k) || with b_(k) the k-th nearest normalised bank
// row; a k beyond the bank is refused (not clamped), and the grid stops at the bank size.
TEST(Detectors, KnnMatchesNaiveKthDistance) {
  Generator g(8);
  ood::Features train, test;
  train.z = Tensor::randn({30, 5}, g);
  test.z = Tensor::randn({7, 5}, g);
  ood::FitContext ctx;
  ctx.train = &train;
  auto knn = ood::make_detector("knn");
  knn->fit(ctx);
  const auto unit = [](const float* v) {
    double n = 0;
    for (int j = 0; j < 5; ++j) n += double(v[j]) * v[j];
    std::vector<double> u(5);
    for (int j = 0; j < 5; ++j) u[size_t(j)] = v[j] / std::sqrt(n);
    return u;
  };
  for (int k : {1, 7, 30}) {
    knn->configure({{"k", double(k)}});
    const std::vector<double> got = ood::to_doubles(knn->score(test));
    for (int64_t i = 0; i < 7; ++i) {
      const std::vector<double> q = unit(test.z.data<float>() + i * 5);
      std::vector<double> d;
      for (int64_t r = 0; r < 30; ++r) {
        const std::vector<double> b = unit(train.z.data<float>() + r * 5);
        double s = 0;
        for (int j = 0; j < 5; ++j) s += (q[size_t(j)] - b[size_t(j)]) * (q[size_t(j)] - b[size_t(j)]);
        d.push_back(std::sqrt(s));
      }
      std::sort(d.begin(), d.end());
      EXPECT_NEAR(got[size_t(i)], -d[size_t(k - 1)], 1e-5) << "k=" << k << " row " << i;
    }
  }
  knn->configure({{"k", 31.0}});
  try {
    knn->score(test);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("k = 31 but the feature bank holds 30"), std::string::npos) << e.what();
  }
  std::vector<double> ks;
  for (const ood::Params& p : knn->grid()) ks.push_back(p.at("k"));
  EXPECT_EQ(ks, (std::vector<double>{1, 10, 20}));
  EXPECT_EQ(knn->defaults().at("k"), 30.0);
}

TEST(Detectors, OdinWithoutNoiseIsTemperatureScaledMsp) {
  Fixture f;
  const Tensor x = f.images(6, 0.0);
  auto odin = ood::make_detector("odin");
  odin->configure({{"T", 10.0}, {"eps", 0.0}});
  ood::ImageContext ctx{&f.net, {0.5f, 0.5f, 0.5f}};
  autograd::NoGradGuard ng;
  EXPECT_ALL_CLOSE(odin->score_images(ctx, x), ood::msp_score(f.net.forward(x), 10.0), kF32);
}

TEST(Detectors, OdinPerturbationRaisesTheTopSoftmax) {
  // The perturbation descends the cross-entropy of the predicted class, so for a small eps the
  // max softmax must rise for (almost) every image; a sign error would lower it.
  Fixture f;
  const Tensor x = f.images(16, 0.0);
  auto odin = ood::make_detector("odin");
  ood::ImageContext ctx{&f.net, {1.f, 1.f, 1.f}};
  odin->configure({{"T", 1.0}, {"eps", 0.0}});
  const std::vector<double> before = ood::to_doubles(odin->score_images(ctx, x));
  odin->configure({{"T", 1.0}, {"eps", 0.002}});
  const std::vector<double> after = ood::to_doubles(odin->score_images(ctx, x));
  int rose = 0;
  for (size_t i = 0; i < before.size(); ++i) rose += after[i] > before[i];
  EXPECT_GE(rose, 15);
}

TEST(Detectors, MahalanobisNoiseLowersTheDistance) {
  Fixture f;
  ood::FeatureOptions fo;
  const Tensor train = f.images(64, 0.0);
  const ood::Features tf = ood::extract_features(f.net, train, fo);
  Tensor labels = Tensor::empty({64}, DType::I64);
  for (int64_t i = 0; i < 64; ++i) labels.data<int64_t>()[i] = i % 4;
  ood::FitContext ctx{&tf, labels, &tf, f.net.head().weight, f.net.head().bias};
  auto plain = ood::make_detector("mahalanobis");
  auto noisy = ood::make_detector("mahalanobis_noise");
  plain->fit(ctx);
  noisy->fit(ctx);
  const Tensor x = f.images(8, 0.0);
  ood::ImageContext ic{&f.net, {1.f, 1.f, 1.f}};
  noisy->configure({{"eps", 0.0}});
  EXPECT_ALL_CLOSE(noisy->score_images(ic, x), plain->score(ood::extract_features(f.net, x, fo)), kF32);
  const std::vector<double> s0 = ood::to_doubles(noisy->score_images(ic, x));
  noisy->configure({{"eps", 0.002}});
  const std::vector<double> s1 = ood::to_doubles(noisy->score_images(ic, x));
  int rose = 0;
  for (size_t i = 0; i < s0.size(); ++i) rose += s1[i] > s0[i];  // score = -distance
  EXPECT_GE(rose, 7);
}

// Every detector end to end on a CUDA network (features with the Threshold-Activation path, fit,
// score; ODIN and Mahalanobis input gradients included) against the same detector on the CPU
// network with the same weights. Float32 rounding gives a normalised squared error near 1e-10; a
// wrong CUDA path gives ~1; 1e-4 leaves room for percentile ties (ReAct, ASH) flipping one unit.
TEST(Detectors, EveryDetectorOnCudaMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device present";
  Fixture f;
  models::ResNetCifar gpu_net{8, 4, f.gen};
  gpu_net.load_state_dict(f.net.state_dict());
  gpu_net.to(Device::cuda());
  gpu_net.eval();
  ood::FeatureOptions fo;
  fo.ta_thresholds = {0.1, 0.2};
  const Tensor train = f.images(96, 0.0), held = f.images(32, 0.0), test = f.images(24, 0.5);
  Tensor labels = Tensor::empty({96}, DType::I64);
  for (int64_t i = 0; i < 96; ++i) labels.data<int64_t>()[i] = i % 4;
  const Device cuda = Device::cuda();
  const ood::Features tr_c = ood::extract_features(f.net, train, fo), tr_g = ood::extract_features(gpu_net, train.to(cuda), fo);
  const ood::Features he_c = ood::extract_features(f.net, held, fo), he_g = ood::extract_features(gpu_net, held.to(cuda), fo);
  const ood::Features te_c = ood::extract_features(f.net, test, fo), te_g = ood::extract_features(gpu_net, test.to(cuda), fo);
  const auto close = [](const Tensor& got, const Tensor& want, const std::string& what, double bound) {
    EXPECT_LT(oodkit::testing::nmse(got.cpu(), want), bound) << what;
  };
  close(te_g.logits, te_c.logits, "logits", 1e-8);
  close(te_g.z, te_c.z, "z", 1e-8);
  close(te_g.nap, te_c.nap, "nap", 1e-8);
  close(te_g.nap_unsquared, te_c.nap_unsquared, "nap_unsquared", 1e-8);
  close(te_g.fs, te_c.fs, "fs", 1e-8);
  ASSERT_EQ(te_g.fs_ta.size(), 2u);
  for (size_t i = 0; i < 2; ++i) close(te_g.fs_ta[i], te_c.fs_ta[i], "fs_ta #" + std::to_string(i), 1e-8);

  const ood::FitContext cc{&tr_c, labels, &he_c, f.net.head().weight, f.net.head().bias};
  const ood::FitContext gc{&tr_g, labels.to(cuda), &he_g, gpu_net.head().weight, gpu_net.head().bias};
  const ood::ImageContext ic{&f.net, {0.5f, 0.5f, 0.5f}}, ig{&gpu_net, {0.5f, 0.5f, 0.5f}};
  for (const std::string& name : ood::detector_names()) {
    auto dc = ood::make_detector(name), dg = ood::make_detector(name);
    dc->fit(cc);
    dg->fit(gc);
    dc->configure(dc->defaults());
    dg->configure(dg->defaults());
    const Tensor sc = dc->uses_images() ? dc->score_images(ic, test) : dc->score(te_c);
    const Tensor sg = dg->uses_images() ? dg->score_images(ig, test.to(cuda)) : dg->score(te_g);
    ASSERT_EQ(sg.numel(), 24) << name;
    close(sg, sc, name, 1e-4);
    if (name == "odin") {
      // ODIN's default T = 1000 puts every score within ~1e-4 of 1/K = 0.25, so the normalised
      // error above is blind to it (a constant 1/K, or a perturbation with the wrong sign, scores
      // ~1e-7 there). Compare the spread around the CPU mean instead: float32 rounding of S is
      // ~1.5e-8 against a spread ~1e-4, a normalised error ~1e-8.
      const double mean = ops::mean(sc.to(DType::F64)).item();
      close(ops::add_scalar(sg.cpu().to(DType::F64), -mean), ops::add_scalar(sc.to(DType::F64), -mean), "odin, centred",
            1e-4);
    }
  }
}

// The heatmap detector inside the protocol (a decoder with random weights: the plumbing, not the
// method, is under test): each heatmap fusion's test scores equal its formula applied to its
// components' test scores, standardised with the mean and std of their held-out ID scores
// (recomputed here), at the w the protocol chose; the chosen w is the best on validation.
TEST(Protocol, HeatmapFusionsFollowTheirFormula) {
  Fixture f;
  ood::FeatureOptions fo;
  fo.ta_thresholds = {0.15};
  const ood::Features tf = ood::extract_features(f.net, f.images(64, 0.0), fo);
  Tensor labels = Tensor::empty({64}, DType::I64);
  for (int64_t i = 0; i < 64; ++i) labels.data<int64_t>()[i] = i % 4;
  const ood::Features held = ood::extract_features(f.net, f.images(16, 0.0), fo);
  ood::ProtocolInput in;
  in.model = &f.net;
  in.tuning = ood::Tuning::FeatureOnly;
  in.fit = {&tf, labels, &held, f.net.head().weight, f.net.head().bias};
  in.val_id = f.set("val_id", f.images(30, 0.0), fo);
  in.val_ood = f.set("val_ood", f.images(30, 0.8), fo);
  in.test_id = f.set("test_id", f.images(20, 0.0), fo);
  in.test_ood = {f.set("far", f.images(20, 1.5), fo)};
  ood::HeatmapModelInfo info;
  info.config = {tf.z.size(1), 4, 8, {8, 4}};
  info.norm = ood::fit_feature_norm(tf.z);
  Generator g(21);
  auto model = std::make_shared<ood::HeatmapModel>(info, g);
  in.extra_detectors["heatmap"] = [model] { return std::make_unique<ood::HeatmapDetector>(model); };
  const std::vector<std::string> names{"heatmap", "msp", "nap", "fs_ta", "energy", "heatmap_msp", "heatmap_nap",
                                       "heatmap_fs_ta", "heatmap_energy"};
  for (const std::string& n : names) {
    const std::vector<std::string> all = ood::all_method_names(true);
    EXPECT_NE(std::find(all.begin(), all.end(), n), all.end()) << n;
  }
  const std::vector<ood::MethodResult> results = ood::run_protocol(in, names);
  std::map<std::string, const ood::MethodResult*> by;
  for (const ood::MethodResult& r : results) by[r.name] = &r;
  // Held-out ID scores of the components, by an independent path (the detectors on val_id).
  const auto val_scale = [&](const std::string& name) {
    std::unique_ptr<ood::Detector> d = name == "heatmap" ? std::make_unique<ood::HeatmapDetector>(model)
                                                         : ood::make_detector(name);
    d->fit(in.fit);
    d->configure(by.at(name)->chosen);
    const std::vector<double> v = ood::to_doubles(d->score(in.val_id.features));
    double m = 0, q = 0;
    for (double x : v) m += x / double(v.size());
    for (double x : v) q += (x - m) * (x - m) / double(v.size());
    return std::make_pair(m, std::sqrt(q));
  };
  const auto [hm, hs] = val_scale("heatmap");
  for (const char* b : {"msp", "nap", "fs_ta", "energy"}) {
    const ood::MethodResult& fused = *by.at(std::string("heatmap_") + b);
    const double w = fused.chosen.at("w");
    const auto [bm, bs] = val_scale(b);
    const std::vector<double>& a = by.at("heatmap")->id_scores;
    const std::vector<double>& c = by.at(b)->id_scores;
    ASSERT_EQ(fused.id_scores.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(fused.id_scores[i], (1 - w) * (a[i] - hm) / hs + w * (c[i] - bm) / bs, 1e-4) << b << " row " << i;
  }
}

TEST(Protocol, SelectsOnValidationAndReportsConsistentMetrics) {
  Fixture f;
  ood::FeatureOptions fo;
  fo.ta_thresholds = {0.1, 0.2};
  const Tensor train = f.images(96, 0.0);
  const ood::Features tf = ood::extract_features(f.net, train, fo);
  Tensor labels = Tensor::empty({96}, DType::I64);
  for (int64_t i = 0; i < 96; ++i) labels.data<int64_t>()[i] = i % 4;
  const ood::Features held = ood::extract_features(f.net, f.images(32, 0.0), fo);

  ood::ProtocolInput in;
  in.model = &f.net;
  in.tuning = ood::Tuning::FeatureOnly;
  in.input_std = {1.f, 1.f, 1.f};
  in.batch_size = 16;
  in.fit = {&tf, labels, &held, f.net.head().weight, f.net.head().bias};
  in.val_id = f.set("val_id", f.images(24, 0.0), fo);
  in.val_ood = f.set("val_ood", f.images(24, 0.6), fo);
  in.test_id = f.set("test_id", f.images(24, 0.0), fo);
  in.test_ood = {f.set("near", f.images(20, 0.3), fo), f.set("far", f.images(20, 1.5), fo)};

  in.save_dir = ::testing::TempDir() + "oodkit_protocol_detectors";
  ::mkdir(in.save_dir.c_str(), 0755);
  const std::vector<std::string> methods = ood::all_method_names();
  const std::vector<ood::MethodResult> results = ood::run_protocol(in, methods);
  // Every saved detector, reloaded without fitting, reproduces its test scores exactly.
  const std::vector<std::string> detectors = ood::detector_names();
  for (const ood::MethodResult& r : results) {
    if (std::find(detectors.begin(), detectors.end(), r.name) == detectors.end()) continue;
    const std::unique_ptr<ood::Detector> d = ood::load_detector(in.save_dir + "/" + r.name);
    EXPECT_EQ(d->params(), r.chosen) << r.name;
    ood::ImageContext ic{&f.net, in.input_std};
    const Tensor s = d->uses_images() ? d->score_images(ic, in.test_id.images) : d->score(in.test_id.features);
    EXPECT_EQ(ood::to_doubles(s), r.id_scores) << r.name;
  }
  EXPECT_THROW(ood::load_detector(in.save_dir + "/missing"), Error);
  ASSERT_EQ(results.size(), methods.size());
  for (const ood::MethodResult& r : results) {
    ASSERT_EQ(r.per_set.size(), 2u) << r.name;
    ASSERT_EQ(r.id_scores.size(), 24u) << r.name;
    for (size_t s = 0; s < 2; ++s) {
      // Reported metrics equal a recomputation from the reported scores.
      const ood::OodMetrics m = ood::compute_ood_metrics(r.id_scores, r.ood_scores[s]);
      EXPECT_EQ(m.auroc, r.per_set[s].auroc) << r.name;
      EXPECT_EQ(m.fpr_at_95_tpr, r.per_set[s].fpr_at_95_tpr) << r.name;
      EXPECT_GE(m.auroc, 0.0);
      EXPECT_LE(m.auroc, 1.0);
    }
    EXPECT_NEAR(r.average.auroc, (r.per_set[0].auroc + r.per_set[1].auroc) / 2, 1e-12) << r.name;
  }
  // A tuned detector's kept setting is the best of its grid on validation.
  auto react = ood::make_detector("react");
  react->fit(in.fit);
  double best = -1;
  for (const ood::Params& p : react->grid()) {
    react->configure(p);
    best = std::max(best, ood::compute_ood_metrics(ood::to_doubles(react->score(in.val_id.features)),
                                                   ood::to_doubles(react->score(in.val_ood.features)))
                              .auroc);
  }
  for (const ood::MethodResult& r : results)
    if (r.name == "react") EXPECT_EQ(r.val_auroc, best);
  // Far-shifted noise images move the features away from the fitted ID statistics: the
  // detectors that model them (class Gaussians, ViM's principal space) separate them even with
  // random weights, while logit scores need not (larger inputs give larger logits).
  for (const ood::MethodResult& r : results)
    if (r.name == "mahalanobis" || r.name == "vim") EXPECT_GT(r.per_set[1].auroc, 0.99) << r.name;
  // The image detector with tuning off used the official setting.
  for (const ood::MethodResult& r : results)
    if (r.name == "odin") EXPECT_EQ(ood::params_str(r.chosen), "T=1000, eps=0.0014");
}

}  // namespace
