// The maps of `oodkit explain` (ood/spatial_maps.h) and the score gradients behind its Grad-CAM
// maps (ood/score_gradients.h), each against an independent computation: hand-worked bilinear
// values, naive loops written from docs/methods.md ("Explanations") and the scores of ood/scores.h
// (a contribution map's negated mean is the score), central finite differences in float64 of the
// detectors' own scoring functions for every gradient.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "framework/ops/linear.h"
#include "framework/random.h"
#include "ood/detectors.h"
#include "ood/dice.h"
#include "ood/fusion_maps.h"
#include "ood/mahalanobis.h"
#include "ood/multi_fusion.h"
#include "ood/react.h"
#include "ood/score_gradients.h"
#include "ood/scores.h"
#include "ood/spatial_maps.h"
#include "ood/vim.h"
#include "run/explain_picture.h"
#include "testing.h"

using namespace oodkit;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to(DType::F64).cpu().to_vector<double>(); }

// A random non-negative feature map with a few exact zeros (as after a ReLU), float64.
Tensor relu_map(const Shape& s, Generator& gen) {
  std::vector<double> v = vals(Tensor::randn(s, gen, DType::F64));
  for (double& x : v) x = std::max(0.0, x + 0.3);
  return Tensor::from_vector(v, s);
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << " at " << i;
}

// Per-image mean of maps [N, h, w].
std::vector<double> row_means(const Tensor& maps) {
  const std::vector<double> v = vals(maps);
  const int64_t n = maps.size(0), hw = maps.size(1) * maps.size(2);
  std::vector<double> m(size_t(n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < hw; ++p) m[size_t(i)] += v[size_t(i * hw + p)] / double(hw);
  return m;
}

}  // namespace

// ---- bilinear upsampling (align_corners = false) --------------------------------------------------

TEST(ExplainUpsample, HandWorkedTwoByTwo) {
  // F.interpolate(tensor([[[[0., 1.], [2., 3.]]]]), size=4, mode="bilinear", align_corners=False)
  const Tensor in = Tensor::from_vector(std::vector<float>{0, 1, 2, 3}, {1, 2, 2});
  const std::vector<double> want{0,   0.25, 0.75, 1,   0.5, 0.75, 1.25, 1.5,
                                 1.5, 1.75, 2.25, 2.5, 2,   2.25, 2.75, 3};
  const Tensor out = ood::upsample_bilinear(in, 4, 4);
  ASSERT_EQ(out.shape(), (Shape{1, 4, 4}));
  expect_near_all(vals(out), want, 1e-7, "2x2 -> 4x4");
}

TEST(ExplainUpsample, HandWorkedNonSquare) {
  // One row [0, 3, 6] -> 2 x 6: columns read at x/2 - 0.25 clamped to [0, 2]; both rows read row 0.
  const Tensor in = Tensor::from_vector(std::vector<float>{0, 3, 6}, {1, 1, 3});
  const std::vector<double> row{0, 0.75, 2.25, 3.75, 5.25, 6};
  std::vector<double> want = row;
  want.insert(want.end(), row.begin(), row.end());
  expect_near_all(vals(ood::upsample_bilinear(in, 2, 6)), want, 1e-7, "1x3 -> 2x6");
}

TEST(ExplainUpsample, SameSizeIsACopyAndBadShapesAreRefused) {
  Generator gen(3);
  const Tensor in = Tensor::randn({2, 3, 5}, gen);
  expect_near_all(vals(ood::upsample_bilinear(in, 3, 5)), vals(in), 0, "identity");
  EXPECT_THROW(ood::upsample_bilinear(Tensor::zeros({3, 5}), 4, 4), Error);
  EXPECT_THROW(ood::upsample_bilinear(in, 0, 4), Error);
}

// ---- heatmap, FS and NAP maps -------------------------------------------------------------------------

TEST(ExplainMaps, HeatmapIsMaxAbsOverChannelsAndItsMeanTheScore) {
  Generator gen(5);
  const Tensor h = Tensor::randn({3, 3, 4, 5}, gen, DType::F64);
  const std::vector<double> v = vals(h);
  std::vector<double> want(3 * 20, 0.0);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t p = 0; p < 20; ++p)
      for (int64_t c = 0; c < 3; ++c) want[size_t(n * 20 + p)] = std::max(want[size_t(n * 20 + p)], std::fabs(v[size_t((n * 3 + c) * 20 + p)]));
  const Tensor m = ood::heatmap_map(h);
  ASSERT_EQ(m.shape(), (Shape{3, 4, 5}));
  expect_near_all(vals(m), want, 1e-7, "max_c |h|");
  const std::vector<double> s = vals(ood::heatmap_score(h));
  std::vector<double> neg;
  for (double x : row_means(m)) neg.push_back(-x);
  expect_near_all(neg, s, 1e-6, "-mean(map) vs heatmap_score");
}

TEST(ExplainMaps, FsContributionNaiveLoopAndScore) {
  Generator gen(7);
  const int64_t n = 2, c = 5, h = 3, w = 4, hw = h * w;
  const Tensor F = relu_map({n, c, h, w}, gen);
  const std::vector<double> v = vals(F);
  std::vector<double> want(size_t(n * hw), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double s = 0;
        for (int64_t k = 0; k < c; ++k) {
          double mean = 0;
          for (int64_t q = 0; q < hw; ++q) mean += v[size_t((i * c + k) * hw + q)];
          mean /= double(hw);
          s += std::fabs(v[size_t((i * c + k) * hw + y * w + x)] - mean);
        }
        want[size_t(i * hw + y * w + x)] = -s / double(c);
      }
  const Tensor m = ood::fs_contribution_map(F);
  ASSERT_EQ(m.shape(), (Shape{n, h, w}));
  expect_near_all(vals(m), want, 1e-6, "FS contribution");
  std::vector<double> neg;
  for (double x : row_means(m)) neg.push_back(-x);
  expect_near_all(neg, vals(ood::fs_score(F)), 1e-6, "-mean(map) vs fs_score");
}

TEST(ExplainMaps, NapContributionCreditsEachChannelsMaximum) {
  Generator gen(11);
  const int64_t n = 2, c = 6, h = 4, w = 3, hw = h * w;
  const Tensor F = relu_map({n, c, h, w}, gen);
  const std::vector<double> v = vals(F);
  for (bool squared : {true, false}) {
    std::vector<double> want(size_t(n * hw), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k) {
        const double* row = v.data() + (i * c + k) * hw;
        const int64_t at = std::max_element(row, row + hw) - row;  // the first maximum
        double mean = 0;
        for (int64_t q = 0; q < hw; ++q) mean += row[q] / double(hw);
        const double r = row[at] / (mean + 0.5);
        want[size_t(i * hw + at)] -= double(hw) / double(c) * (squared ? r * r : r);
      }
    const Tensor m = ood::nap_contribution_map(F, 0.5, squared);
    expect_near_all(vals(m), want, 1e-6, squared ? "NAP contribution" : "NAP (mean) contribution");
    std::vector<double> neg;
    for (double x : row_means(m)) neg.push_back(-x);
    const ood::FeatureMapScores fm = ood::feature_map_scores(F.to(DType::F32), 0.5);
    expect_near_all(neg, vals(squared ? fm.nap : fm.nap_unsquared), 1e-5, "-mean(map) vs nap_score");
  }
}

TEST(ExplainMaps, NapTieGoesToTheFirstMaximum) {
  // One channel, [[2, 5], [5, 1]]: the first 5 (row-major) holds r = 5 / (13/4 + 1).
  const Tensor F = Tensor::from_vector(std::vector<double>{2, 5, 5, 1}, {1, 1, 2, 2});
  const double r = 5.0 / (13.0 / 4.0 + 1.0);
  expect_near_all(vals(ood::nap_contribution_map(F, 1.0, false)), {0, -4 * r, 0, 0}, 1e-7, "tie");
}

TEST(ExplainMaps, GradCamNaiveLoopAndSign) {
  Generator gen(13);
  const int64_t n = 2, c = 4, h = 3, w = 3, hw = h * w;
  const Tensor A = relu_map({n, c, h, w}, gen);
  const Tensor g = Tensor::randn({n, c}, gen, DType::F64);
  const std::vector<double> a = vals(A), gv = vals(g);
  std::vector<double> want(size_t(n * hw));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < hw; ++p) {
      double s = 0;  // the first-order change of S if position p's activations were removed
      for (int64_t k = 0; k < c; ++k) s -= gv[size_t(i * c + k)] / double(hw) * a[size_t((i * c + k) * hw + p)];
      want[size_t(i * hw + p)] = s > 0 ? s : 0;
    }
  const Tensor m = ood::gradcam_map(A, g);
  expect_near_all(vals(m), want, 1e-6, "Grad-CAM");
  // A gradient pointing everywhere towards ID (all positive, A >= 0) leaves nothing OOD-looking.
  const Tensor up = Tensor::full({n, c}, 0.5, DType::F64);
  for (double x : vals(ood::gradcam_map(A, up))) ASSERT_EQ(x, 0.0);
  EXPECT_THROW(ood::gradcam_map(A, Tensor::zeros({n, c + 1})), Error);
}

// ---- score gradients: central finite differences in float64 -----------------------------------------

namespace {

// Central differences of S (one score per row of z) with step `step`, [N, D].
std::vector<double> finite_differences(const std::function<std::vector<double>(const Tensor&)>& score, const Tensor& z,
                                       double step = 1e-6) {
  const std::vector<double> zv = vals(z);
  const int64_t n = z.size(0), d = z.size(1);
  std::vector<double> g(size_t(n * d));
  for (int64_t j = 0; j < n * d; ++j) {
    std::vector<double> plus = zv, minus = zv;
    plus[size_t(j)] += step;
    minus[size_t(j)] -= step;
    const double sp = score(Tensor::from_vector(plus, {n, d}))[size_t(j / d)];
    const double sm = score(Tensor::from_vector(minus, {n, d}))[size_t(j / d)];
    g[size_t(j)] = (sp - sm) / (2 * step);
  }
  return g;
}

struct Head {
  Tensor w, b;
};
Head random_head(int64_t k, int64_t d, Generator& gen) {
  return {Tensor::randn({k, d}, gen, DType::F64), Tensor::randn({k}, gen, DType::F64)};
}

}  // namespace

TEST(ExplainGradients, LogitScoresMatchFiniteDifferences) {
  Generator gen(17);
  const Head head = random_head(5, 7, gen);
  const Tensor z = Tensor::randn({4, 7}, gen, DType::F64);
  const Tensor logits = ops::linear(z, head.w, head.b);
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> scores{
      {"msp", [](const Tensor& f) { return ood::msp_score(f); }},
      {"maxlogit", [](const Tensor& f) { return ood::max_logit_score(f); }},
      {"energy", [](const Tensor& f) { return ood::energy_score(f); }}};
  for (const auto& [name, s] : scores) {
    const Tensor g = ood::through_head(ood::logit_score_gradient(name, logits), head.w);
    ASSERT_EQ(g.shape(), (Shape{4, 7}));
    const auto fd = finite_differences([&, s = s](const Tensor& zz) { return vals(s(ops::linear(zz, head.w, head.b))); }, z);
    expect_near_all(vals(g), fd, 1e-6, name);
  }
  EXPECT_THROW(ood::logit_score_gradient("odin", logits), Error);
}

TEST(ExplainGradients, ReActMatchesFiniteDifferencesAwayFromTheClip) {
  Generator gen(19);
  const Head head = random_head(4, 6, gen);
  const Tensor z = Tensor::randn({5, 6}, gen, DType::F64);
  const double c = 0.4;  // clips about a third of the entries
  const ood::ReAct react = ood::ReAct::with_threshold(c);
  const Tensor g = ood::react_score_gradient(z, head.w, head.b, c);
  const auto fd = finite_differences([&](const Tensor& zz) { return vals(react.score(zz, head.w, head.b)); }, z);
  const std::vector<double> zv = vals(z), gv = vals(g);
  int clipped = 0;
  for (size_t j = 0; j < zv.size(); ++j) {
    if (std::fabs(zv[j] - c) < 1e-4) continue;  // a kink
    clipped += zv[j] > c;
    ASSERT_NEAR(gv[j], fd[j], 1e-6 * (1 + std::fabs(fd[j]))) << "entry " << j;
  }
  EXPECT_GT(clipped, 0);
}

TEST(ExplainGradients, KnnMatchesFiniteDifferences) {
  Generator gen(23);
  const int64_t m = 40, d = 6, k = 5;
  std::vector<double> bank = vals(Tensor::randn({m, d}, gen, DType::F64));
  for (int64_t i = 0; i < m; ++i) {  // unit rows, as the detector keeps its bank
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += bank[size_t(i * d + j)] * bank[size_t(i * d + j)];
    for (int64_t j = 0; j < d; ++j) bank[size_t(i * d + j)] /= std::sqrt(s);
  }
  const Tensor z = Tensor::randn({4, d}, gen, DType::F64);
  // S = -(the k-th smallest || z/|z| - b ||), written here with a sort.
  const auto score = [&](const Tensor& zz) {
    const std::vector<double> v = vals(zz);
    std::vector<double> s;
    for (int64_t i = 0; i < zz.size(0); ++i) {
      double norm = 0;
      for (int64_t j = 0; j < d; ++j) norm += v[size_t(i * d + j)] * v[size_t(i * d + j)];
      std::vector<double> dist;
      for (int64_t r = 0; r < m; ++r) {
        double q = 0;
        for (int64_t j = 0; j < d; ++j) {
          const double e = v[size_t(i * d + j)] / std::sqrt(norm) - bank[size_t(r * d + j)];
          q += e * e;
        }
        dist.push_back(std::sqrt(q));
      }
      std::sort(dist.begin(), dist.end());
      s.push_back(-dist[size_t(k - 1)]);
    }
    return s;
  };
  const Tensor g = ood::knn_score_gradient(z, Tensor::from_vector(bank, {m, d}), k);
  expect_near_all(vals(g), finite_differences(score, z), 1e-6, "knn");
}

TEST(ExplainGradients, MahalanobisMatchesFiniteDifferences) {
  Generator gen(29);
  const int64_t d = 6;
  const Tensor train = Tensor::randn({120, d}, gen, DType::F64);
  std::vector<int64_t> labels(120);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = int64_t(i % 3);
  ood::Mahalanobis model;
  model.fit(train, Tensor::from_vector(labels, {120}), 3);
  const Tensor z = Tensor::randn({4, d}, gen, DType::F64);
  const Tensor g = ood::mahalanobis_score_gradient(model, z);
  const auto fd = finite_differences([&](const Tensor& zz) { return vals(model.score(zz)); }, z);
  expect_near_all(vals(g), fd, 1e-6, "mahalanobis");
}

TEST(ExplainGradients, VimMatchesFiniteDifferences) {
  Generator gen(31);
  const int64_t d = 8;
  const Head head = random_head(3, d, gen);
  ood::Vim model;
  model.fit(Tensor::randn({100, d}, gen, DType::F64), head.w, head.b, 4);
  const Tensor z = Tensor::randn({4, d}, gen, DType::F64);
  const Tensor g = ood::vim_score_gradient(model, z, head.w, head.b);
  const auto fd = finite_differences(
      [&](const Tensor& zz) { return vals(model.score(ops::linear(zz, head.w, head.b), zz)); }, z);
  expect_near_all(vals(g), fd, 1e-6, "vim");
}

TEST(ExplainGradients, OdinTemperatureMatchesFiniteDifferences) {
  Generator gen(37);
  const Head head = random_head(5, 7, gen);
  const Tensor z = Tensor::randn({4, 7}, gen, DType::F64);
  for (double t : {1.0, 7.0, 1000.0}) {
    const Tensor g = ood::through_head(ood::logit_score_gradient("msp", ops::linear(z, head.w, head.b), t), head.w);
    const auto fd = finite_differences([&](const Tensor& zz) { return vals(ood::msp_score(ops::linear(zz, head.w, head.b), t)); }, z);
    // Scale-aware: at T = 1000 the gradient is ~1e-4 of the T = 1 one.
    double scale = 0;
    for (double v : fd) scale = std::max(scale, std::fabs(v));
    const std::vector<double> gv = vals(g);
    for (size_t j = 0; j < fd.size(); ++j) ASSERT_NEAR(gv[j], fd[j], 1e-6 * scale) << "T " << t << " entry " << j;
  }
  EXPECT_THROW(ood::logit_score_gradient("energy", ops::linear(z, head.w, head.b), 2.0), Error);
}

// ASH's three modes against central differences of the detector's own path (ood::ash, then the
// energy of the head), with random z (no ties, no entry within the step of the k-th).
TEST(ExplainGradients, AshMatchesFiniteDifferences) {
  Generator gen(41);
  const int64_t d = 12;
  const Head head = random_head(4, d, gen);
  const Tensor z = relu_map({5, d, 1, 1}, gen).reshape({5, d});
  for (const auto& [mode, name] : {std::pair{ood::AshMode::Prune, "prune"}, std::pair{ood::AshMode::Binarize, "binarize"},
                                   std::pair{ood::AshMode::Scale, "scale"}}) {
    const Tensor g = ood::ash_score_gradient(z, head.w, head.b, 65.0, mode);
    const auto fd = finite_differences(
        [&, mode = mode](const Tensor& zz) {
          return vals(ood::energy_score(ops::linear(ood::ash(zz, 65.0, mode), head.w, head.b)));
        },
        z);
    const std::vector<double> zv = vals(z), gv = vals(g);
    for (size_t j = 0; j < zv.size(); ++j) {
      if (zv[j] == 0.0) continue;  // a ReLU zero: a tie among the dropped entries (a kink for none of them)
      ASSERT_NEAR(gv[j], fd[j], 1e-6 * (1 + std::fabs(fd[j]))) << name << " entry " << j;
    }
  }
}

TEST(ExplainGradients, DiceMatchesFiniteDifferences) {
  Generator gen(43);
  const int64_t d = 9;
  const Head head = random_head(4, d, gen);
  ood::Dice dice;
  dice.fit(relu_map({50, d, 1, 1}, gen).reshape({50, d}), head.w, head.b, 0.7);
  const Tensor z = Tensor::randn({4, d}, gen, DType::F64);
  const Tensor g = ood::dice_score_gradient(dice, z);
  expect_near_all(vals(g), finite_differences([&](const Tensor& zz) { return vals(dice.score(zz)); }, z), 1e-6, "dice");
}

TEST(ExplainGradients, GradNormMatchesFiniteDifferences) {
  Generator gen(47);
  const int64_t d = 8;
  const Head head = random_head(5, d, gen);
  const Tensor z = Tensor::randn({4, d}, gen, DType::F64);  // no exact zero: |z| is smooth there
  const Tensor g = ood::gradnorm_score_gradient(z, head.w, head.b);
  const auto fd = finite_differences(
      [&](const Tensor& zz) { return vals(ood::gradnorm_score(ops::linear(zz, head.w, head.b), zz)); }, z);
  expect_near_all(vals(g), fd, 1e-6, "gradnorm");
}

// ---- fusion maps: c_i = dS/ds_i against central differences of the fusion's own combine() ------------

namespace {
void expect_weights_match_combine(const ood::Detector& f, const std::vector<std::vector<double>>& parts) {
  ood::Detector::ScoreList list;
  for (const auto& p : parts) list.push_back(&p);
  const std::vector<std::vector<double>> c = ood::fusion_map_weights(f, list);
  ASSERT_EQ(c.size(), parts.size()) << f.name();
  const double h = 1e-6;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::vector<std::vector<double>> plus = parts, minus = parts;
    for (double& v : plus[i]) v += h;
    for (double& v : minus[i]) v -= h;
    ood::Detector::ScoreList lp, lm;
    for (size_t k = 0; k < parts.size(); ++k) lp.push_back(&plus[k]), lm.push_back(&minus[k]);
    const std::vector<double> sp = f.combine(lp), sm = f.combine(lm);
    for (size_t r = 0; r < sp.size(); ++r) {
      const double fd = (sp[r] - sm[r]) / (2 * h);
      ASSERT_NEAR(c[i][r], fd, 1e-6 * (1 + std::fabs(fd))) << f.name() << " member " << i << " image " << r;
    }
  }
}
}  // namespace

TEST(ExplainFusionMaps, WeightsAreTheDerivativesOfEveryRegisteredFusion) {
  Generator gen(53);
  const std::vector<double> a_val = vals(Tensor::randn({30}, gen, DType::F64)), b_val = vals(Tensor::randn({30}, gen, DType::F64));
  int kinds[3] = {0, 0, 0};
  for (const ood::FusionSpec& spec : ood::fusion_specs(/*with_heatmap=*/true)) {
    ood::Fusion f(spec);
    // Positive member scores for the geometric mean (one below its floor: clamped, weight 0).
    std::vector<double> a{0.3, 1.7, 2.2, -0.5}, b{0.9, 0.4, 3.1, 0.8};
    if (spec.kind == ood::FusionKind::Standardized) {
      for (double& v : a) v = 3 * v - 2;
      std::vector<double> av = a_val, bv = b_val;
      for (double& v : bv) v = 4 * v + 1;  // a different scale per member
      f.fit_components(av, bv);
    }
    f.configure({{spec.key(), spec.kind == ood::FusionKind::Linear ? 0.3 : 0.7}});
    expect_weights_match_combine(f, {a, b});
    ++kinds[int(spec.kind)];
  }
  for (int k : kinds) EXPECT_GT(k, 0);  // geometric, linear and standardized were all checked
}

TEST(ExplainFusionMaps, ZFusionWeightsAndPFusionsRefused) {
  Generator gen(59);
  const std::vector<double> ha = vals(Tensor::randn({40}, gen, DType::F64)), hb = vals(Tensor::randn({40}, gen, DType::F64)),
                            hc = vals(Tensor::randn({40}, gen, DType::F64));
  std::vector<double> hc3 = hc;
  for (double& v : hc3) v *= 3;
  const std::vector<std::vector<double>> parts{{0.1, -0.5, 2.0}, {1.0, 0.2, -0.3}, {-1.2, 0.7, 0.4}};
  ood::MultiFusion z(ood::parse_fuse_spec("zw:knn+nap+energy"));
  z.fit_components(ood::Detector::ScoreList{&ha, &hb, &hc3});
  z.configure(z.grid().back());  // unequal weights
  expect_weights_match_combine(z, parts);
  for (const char* spec : {"p:knn+nap", "pmean:knn+nap"}) {
    ood::MultiFusion p(ood::parse_fuse_spec(spec));
    p.fit_components(ood::Detector::ScoreList{&ha, &hb});
    p.configure(p.grid().front());
    EXPECT_FALSE(ood::fusion_has_map(p));
    const std::vector<double> a{0.1}, b{0.2};
    EXPECT_THROW(ood::fusion_map_weights(p, ood::Detector::ScoreList{&a, &b}), Error) << spec;
  }
  EXPECT_THROW(ood::fusion_map_weights(*ood::make_detector("msp"), ood::Detector::ScoreList{}), Error);
}

// ---- the picture's colour scale ---------------------------------------------------------------------

TEST(ExplainPicture, ColourScaleSpansTheFiniteValuesAndDarkIsLow) {
  const Tensor maps = Tensor::from_vector(std::vector<float>{-2, 0.5f, NAN, 3, INFINITY, 1}, {1, 2, 3});
  const run::ColourScale s = run::colour_scale(maps, 100);
  EXPECT_EQ(s.lo, -2);
  EXPECT_EQ(s.hi, 3);
  uint8_t lo[3], hi[3], nan[3];
  run::hot_colour(-2, s, lo);
  run::hot_colour(3, s, hi);
  run::hot_colour(NAN, s, nan);
  EXPECT_EQ(std::vector<int>(lo, lo + 3), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(std::vector<int>(hi, hi + 3), (std::vector<int>{255, 255, 255}));
  EXPECT_EQ(std::vector<int>(nan, nan + 3), (std::vector<int>{0, 0, 255}));
}

// The default scale spans percentiles 1 and 99 of the finite values: one extreme pixel (1000)
// does not turn the rest black. Expected values by hand, checked with numpy.percentile.
TEST(ExplainPicture, ColourScaleClampsAtPercentiles) {
  std::vector<float> v;
  for (int i = 0; i < 100; ++i) v.push_back(float(i));
  v.push_back(1000.f);
  v.push_back(NAN);
  v.push_back(-INFINITY);
  v.push_back(7.f);  // 104 values: [1, 8, 13]
  const Tensor maps = Tensor::from_vector(v, {1, 8, 13});
  // With 7 added the sorted finite values are 0..7, 7, 8..99, 1000 (102 values): h = 101 * 0.99 =
  // 99.99 -> between v[99] = 98 and v[100] = 99: 99 - 0.01 * 1 = 98.99; h = 101 * 0.01 = 1.01 ->
  // v[1] + 0.01 * (v[2] - v[1]) = 1.01.
  const run::ColourScale s = run::colour_scale(maps, 99);
  EXPECT_NEAR(s.hi, 98.99, 1e-9);
  EXPECT_NEAR(s.lo, 1.01, 1e-9);
  uint8_t rgb[3];
  run::hot_colour(1000, s, rgb);  // clamped to white
  EXPECT_EQ(std::vector<int>(rgb, rgb + 3), (std::vector<int>{255, 255, 255}));
  run::hot_colour(50, s, rgb);  // mid-scale: red-ish, not black
  EXPECT_GT(rgb[0], 200);
  EXPECT_THROW(run::colour_scale(maps, 40), Error);
  const run::ColourScale none = run::colour_scale(Tensor::from_vector(std::vector<float>{NAN}, {1, 1, 1}), 99);
  EXPECT_EQ(none.lo, 0);
  EXPECT_EQ(none.hi, 0);
}

// ---- a synthetic case where the answer is known ----------------------------------------------------

namespace {
// Whether every pixel of map [1, H, W] that attains its maximum lies in rows [y0, y1) x cols [x0, x1).
bool maximum_inside(const Tensor& map, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  const std::vector<double> v = vals(map);
  const int64_t w = map.size(2);
  const double mx = *std::max_element(v.begin(), v.end());
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t y = int64_t(i) / w, x = int64_t(i) % w;
    if (v[i] == mx && (y < y0 || y >= y1 || x < x0 || x >= x1)) return false;
  }
  return true;
}
}  // namespace

TEST(ExplainMaps, SyntheticPatchMapsPeakOnThePatch) {
  // An 8x8 feature map whose 2x2 "patch" (rows 2-3, columns 5-6) is flat (every channel at its mean)
  // while every other position deviates by +-d: FS reads the patch as the OOD part, so its map
  // (offset by any tau) must peak there, also after the 4x bilinear upsampling to 32x32 (rows 8-15,
  // columns 20-27).
  const int64_t c = 3, h = 8, w = 8;
  std::vector<double> f(size_t(c * h * w));
  for (int64_t k = 0; k < c; ++k) {
    int64_t outside = 0;
    for (int64_t p = 0; p < h * w; ++p) {
      const int64_t y = p / w, x = p % w;
      const bool in = y >= 2 && y < 4 && x >= 5 && x < 7;
      f[size_t(k * h * w + p)] = in ? 2.0 + k : 2.0 + k + ((outside++ + k) % 2 ? 1.5 : -1.5);
    }
  }
  const Tensor F = Tensor::from_vector(f, {1, c, h, w});
  const Tensor fs = ood::upsample_bilinear(ood::fs_contribution_map(F), 32, 32);
  EXPECT_TRUE(maximum_inside(fs, 8, 16, 20, 28));
  // Grad-CAM: channel 0 is active everywhere and raises the score (dS/dz_0 > 0), channel 1 only in
  // the patch and lowers it (dS/dz_1 < 0): the map is positive on the patch and 0 elsewhere.
  std::vector<double> a(size_t(2 * h * w), 0.0);
  for (int64_t p = 0; p < h * w; ++p) {
    a[size_t(p)] = 1.0;
    const int64_t y = p / w, x = p % w;
    if (y >= 2 && y < 4 && x >= 5 && x < 7) a[size_t(h * w + p)] = 4.0;
  }
  const Tensor cam = ood::gradcam_map(Tensor::from_vector(a, {1, 2, h, w}),
                                      Tensor::from_vector(std::vector<double>{0.5, -1.0}, {1, 2}));
  EXPECT_TRUE(maximum_inside(ood::upsample_bilinear(cam, 32, 32), 8, 16, 20, 28));
  EXPECT_GT(vals(cam)[size_t(2 * w + 5)], 0.0);
  EXPECT_EQ(vals(cam)[0], 0.0);
}
