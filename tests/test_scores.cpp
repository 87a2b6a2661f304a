#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "framework/ops/pool.h"
#include "framework/ops/softmax.h"
#include "ood/scores.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::Tol;

namespace {

class ScoresTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ScoresTest);

constexpr Tol kF64{1e-12, 1e-12};

std::vector<double> vals(const Tensor& t) { return t.to(DType::F64).cpu().to_vector<double>(); }
Tensor vec(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }

// ---- plain float64 references, written from the definitions (docs/methods.md) ----------------------

struct LogitRef {
  Tensor msp, max_logit, energy;
};
LogitRef logit_reference(const Tensor& logits, double t) {
  const std::vector<double> f = vals(logits);
  const int64_t n = logits.size(0), k = logits.size(1);
  std::vector<double> msp(static_cast<size_t>(n)), ml(static_cast<size_t>(n)), en(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    const double* fr = f.data() + r * k;
    const double m = *std::max_element(fr, fr + k);
    double s = 0.0;  // sum_k exp(f_k / T), scaled by exp(-m / T)
    for (int64_t j = 0; j < k; ++j) s += std::exp((fr[j] - m) / t);
    double best = 0.0;
    for (int64_t j = 0; j < k; ++j) best = std::max(best, std::exp((fr[j] - m) / t) / s);
    msp[size_t(r)] = best;
    ml[size_t(r)] = m;
    en[size_t(r)] = t * (m / t + std::log(s));
  }
  return {vec(msp, {n}), vec(ml, {n}), vec(en, {n})};
}

Tensor gradnorm_reference(const Tensor& logits, const Tensor& z, double t) {
  const std::vector<double> f = vals(logits), zv = vals(z);
  const int64_t n = logits.size(0), k = logits.size(1), d = z.size(1);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    const double* fr = f.data() + r * k;
    const double m = *std::max_element(fr, fr + k);
    double s = 0.0;
    for (int64_t j = 0; j < k; ++j) s += std::exp((fr[j] - m) / t);
    double a = 0.0, b = 0.0;
    for (int64_t j = 0; j < k; ++j) a += std::fabs(std::exp((fr[j] - m) / t) / s - 1.0 / double(k));
    for (int64_t j = 0; j < d; ++j) b += std::fabs(zv[size_t(r * d + j)]);
    out[size_t(r)] = a * b / t;
  }
  return vec(out, {n});
}

struct FeatureRef {
  Tensor z, nap, nap_unsquared, fs;
};
FeatureRef feature_reference(const Tensor& F, double eps) {
  const std::vector<double> f = vals(F);
  const int64_t n = F.size(0), c = F.size(1), hw = F.size(2) * F.size(3);
  std::vector<double> z(static_cast<size_t>(n * c)), nap(static_cast<size_t>(n)), napu(static_cast<size_t>(n)),
      fs(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    double r2 = 0.0, r1 = 0.0, dev = 0.0;
    for (int64_t ch = 0; ch < c; ++ch) {
      const double* row = f.data() + (s * c + ch) * hw;
      const double mx = *std::max_element(row, row + hw);
      const double mean = std::accumulate(row, row + hw, 0.0) / double(hw);
      z[size_t(s * c + ch)] = mean;
      const double r = mx / (mean + eps);
      r2 += r * r;
      r1 += r;
      for (int64_t j = 0; j < hw; ++j) dev += std::fabs(row[j] - mean);
    }
    nap[size_t(s)] = r2 / double(c);
    napu[size_t(s)] = r1 / double(c);
    fs[size_t(s)] = dev / double(c * hw);
  }
  return {vec(z, {n, c}), vec(nap, {n}), vec(napu, {n}), vec(fs, {n})};
}

// ASH from its description: sort the indices by value (descending; ties by index), keep the first k.
Tensor ash_reference(const Tensor& zt, int64_t k, ood::AshMode mode) {
  const std::vector<double> z = vals(zt);
  const int64_t n = zt.size(0), d = zt.size(1);
  std::vector<double> y(z.size(), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    const double* zr = z.data() + r * d;
    std::vector<int64_t> idx(static_cast<size_t>(d));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return zr[a] > zr[b]; });
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < d; ++i) s1 += zr[i];
    for (int64_t q = 0; q < k; ++q) s2 += zr[idx[size_t(q)]];
    for (int64_t q = 0; q < k; ++q) {
      const int64_t i = idx[size_t(q)];
      double v = zr[i];
      if (mode == ood::AshMode::Binarize) v = s1 / double(k);
      // Documented deviation from the official code: an all-zero row (0/0) keeps the factor 1.
      if (mode == ood::AshMode::Scale) v = zr[i] * (s1 == 0.0 && s2 == 0.0 ? 1.0 : std::exp(s1 / s2));
      y[size_t(r * d + i)] = v;
    }
  }
  return vec(y, {n, d});
}

// Non-negative feature map (like the output of a ReLU): about a third of the entries are 0.
Tensor relu_map(const Shape& s, Generator& gen) {
  std::vector<double> v = vals(Tensor::randn(s, gen));
  for (double& x : v) x = std::max(0.0, x + 0.5);
  return vec(v, s).to(DType::F32);
}

bool is_nan_at(const Tensor& t, int64_t i) { return std::isnan(vals(t)[size_t(i)]); }
bool all_finite(const Tensor& t) {
  for (double v : vals(t))
    if (!std::isfinite(v)) return false;
  return true;
}

// ---- logit scores ------------------------------------------------------------------------------------

TEST_P(ScoresTest, LogitScoresMatchFormula) {
  const Shape shapes[] = {{7, 13}, {3, 1}, {5, 100}, {65, 3}, {2, 1000}, {300, 10}, {33, 5}};
  for (const Shape& sh : shapes)
    for (double t : {1.0, 0.5, 2.5, 1000.0}) {
      const Tensor x = ops::scale(Tensor::randn(sh, gen), 3.0);
      const LogitRef ref = logit_reference(x, t);
      const Tensor dx = x.to(device());
      const Tol tol = f32_reduction(sh[1]);
      EXPECT_ALL_CLOSE(ood::msp_score(dx, t), ref.msp, tol) << shape_str(sh) << " T=" << t;
      EXPECT_ALL_CLOSE(ood::energy_score(dx, t), ref.energy, tol) << shape_str(sh) << " T=" << t;
      EXPECT_ALL_CLOSE(ood::max_logit_score(dx), ref.max_logit, kF32) << shape_str(sh);
      if (t >= 1000 && sh[1] > 1) {
        // At T = 1000 every MSP is within (max f - mean f)/(T K) of 1/K (~1e-5 for K = 1000), and
        // every energy within ~mean f of T log K (~0.1 for K = 1000, against a value ~6900): the
        // tolerances above (atol 3e-4 on MSP, rtol 1e-4 = 0.7 on energy at K = 1000) would pass a
        // kernel returning the constants 1/K and T log K. Compare the informative parts, S - 1/K
        // relative to its size and E - T log K within a few float32 ulps of E (the float32 output
        // and the device's float log cannot do better; CPU sums are in double).
        const double k = double(sh[1]), ulp = std::ldexp(1.0, -24);
        const std::vector<double> msp = vals(ood::msp_score(dx, t)), msp_ref = vals(ref.msp);
        const std::vector<double> en = vals(ood::energy_score(dx, t)), en_ref = vals(ref.energy);
        size_t msp_resolved = 0, en_resolved = 0;  // rows where the constant would fail
        for (size_t r = 0; r < msp.size(); ++r) {
          const double d_ref = msp_ref[r] - 1 / k, d_tol = 1e-3 * d_ref + 8 * ulp / k;
          EXPECT_NEAR(msp[r] - 1 / k, d_ref, d_tol) << shape_str(sh) << " row " << r;
          msp_resolved += d_ref > 2 * d_tol;
          const double e_ref = en_ref[r] - t * std::log(k),
                       e_tol = 4 * ulp * (std::fabs(en_ref[r]) + t * std::log(k)) + f32_reduction(sh[1]).atol;
          EXPECT_NEAR(en[r] - t * std::log(k), e_ref, e_tol) << shape_str(sh) << " row " << r;
          en_resolved += std::fabs(e_ref) > 2 * e_tol;
        }
        EXPECT_GE(msp_resolved, (msp.size() + 1) / 2) << shape_str(sh);
        EXPECT_GE(en_resolved, (en.size() + 1) / 2) << shape_str(sh);
      }
      const Tensor out = ood::msp_score(dx, t);
      EXPECT_EQ(out.device(), device());
      EXPECT_EQ(out.dtype(), DType::F32);
      if (!on_cuda()) {  // float64 path
        const Tensor x64 = x.to(DType::F64);
        EXPECT_ALL_CLOSE(ood::msp_score(x64, t), ref.msp, kF64);
        EXPECT_ALL_CLOSE(ood::energy_score(x64, t), ref.energy, kF64);
        EXPECT_ALL_CLOSE(ood::max_logit_score(x64), ref.max_logit, kF64);
        EXPECT_EQ(ood::msp_score(x64, t).dtype(), DType::F64);
      }
    }
}

TEST_P(ScoresTest, GradNormMatchesFormula) {
  const std::pair<Shape, int64_t> cases[] = {
      {{7, 10}, 64}, {{3, 1}, 5}, {{5, 100}, 512}, {{40, 3}, 2}, {{2, 1000}, 128}};
  for (const auto& [sh, d] : cases)
    for (double t : {1.0, 0.5, 2.0}) {
      const Tensor x = ops::scale(Tensor::randn(sh, gen), 2.0);
      const Tensor z = Tensor::randn({sh[0], d}, gen);
      const Tensor ref = gradnorm_reference(x, z, t);
      // a * b: a sums K terms, b sums D terms.
      EXPECT_ALL_CLOSE(ood::gradnorm_score(x.to(device()), z.to(device()), t), ref, f32_reduction(sh[1] + d))
          << shape_str(sh) << " D=" << d << " T=" << t;
      if (!on_cuda()) EXPECT_ALL_CLOSE(ood::gradnorm_score(x.to(DType::F64), z.to(DType::F64), t), ref, kF64);
    }
}

TEST(ScoresGradNorm, ClosedFormEqualsAutogradFloat64) {
  // || d KL(u || softmax(f / T)) / dW ||_1 by autograd through ops::linear and ops::log_softmax,
  // one sample at a time, against the closed form.
  Generator gen(77);
  const int64_t n = 6, k = 7, d = 9;
  for (double t : {1.0, 0.6, 4.0}) {
    Tensor w = oodkit::testing::randn_f64({k, d}, gen);
    Tensor b = oodkit::testing::randn_f64({k}, gen);
    const Tensor z = Tensor::uniform({n, d}, 0.0, 2.0, gen, DType::F64);
    Tensor logits;
    {
      autograd::NoGradGuard ng;
      logits = ops::linear(z, w, b);
    }
    const std::vector<double> score = vals(ood::gradnorm_score(logits, z, t));
    for (int64_t s = 0; s < n; ++s) {
      const Tensor f = ops::linear(z.narrow(s, 1), w, b);  // [1, K]
      // KL(u || p) = sum_k (1/K) (log(1/K) - log p_k) = -log K - (1/K) sum_k log p_k
      const Tensor kl =
          ops::add_scalar(ops::scale(ops::sum(ops::log_softmax(f, t)), -1.0 / double(k)), -std::log(double(k)));
      const std::vector<Tensor> g = autograd::grad(kl, {w});
      ASSERT_EQ(g.size(), 1u);
      ASSERT_EQ(g[0].shape(), (Shape{k, d}));
      double l1 = 0.0;
      for (double v : vals(g[0])) l1 += std::fabs(v);
      EXPECT_NEAR(score[size_t(s)], l1, 1e-12 * std::max(1.0, l1)) << "sample " << s << " T=" << t;
      EXPECT_GT(l1, 1e-3);  // a non-trivial gradient
    }
  }
}

TEST_P(ScoresTest, LogitHandWorkedCases) {
  // Row [0, ln 2, ln 3]: softmax [1/6, 2/6, 3/6]. z = [1, -2]: sum |z| = 3.
  // GradNorm = (|1/6 - 1/3| + 0 + |1/2 - 1/3|) * 3 / 1 = 1.
  const Tensor x = vec({0.0, std::log(2.0), std::log(3.0)}, {1, 3}).to(DType::F32).to(device());
  const Tensor z = vec({1.0, -2.0}, {1, 2}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::msp_score(x), vec({0.5}, {1}), kF32);
  EXPECT_ALL_CLOSE(ood::max_logit_score(x), vec({std::log(3.0)}, {1}), kF32);
  EXPECT_ALL_CLOSE(ood::energy_score(x), vec({std::log(6.0)}, {1}), kF32);
  EXPECT_ALL_CLOSE(ood::gradnorm_score(x, z), vec({1.0}, {1}), kF32);
  // T = 2 on [0, 2 ln 2]: softmax(f / 2) = [1/3, 2/3]; Energy = 2 ln 3; GradNorm = (1/6 + 1/6) * 3 / 2.
  const Tensor y = vec({0.0, 2 * std::log(2.0)}, {1, 2}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::msp_score(y, 2.0), vec({2.0 / 3}, {1}), kF32);
  EXPECT_ALL_CLOSE(ood::energy_score(y, 2.0), vec({2 * std::log(3.0)}, {1}), kF32);
  EXPECT_ALL_CLOSE(ood::gradnorm_score(y, z, 2.0), vec({0.5}, {1}), kF32);
  // K = 1: softmax is 1, so MSP = 1, Energy = MaxLogit = f, GradNorm = 0.
  const Tensor one = vec({-3.5, 0.25, 7.0}, {3, 1}).to(DType::F32).to(device());
  const Tensor z1 = vec({1, 2, 3, 4, 5, 6}, {3, 2}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::msp_score(one), vec({1, 1, 1}, {3}), kF32);
  EXPECT_ALL_CLOSE(ood::energy_score(one, 3.0), vec({-3.5, 0.25, 7.0}, {3}), kF32);
  EXPECT_ALL_CLOSE(ood::max_logit_score(one), vec({-3.5, 0.25, 7.0}, {3}), kF32);
  EXPECT_ALL_CLOSE(ood::gradnorm_score(one, z1), vec({0, 0, 0}, {3}), kF32);
  // All-equal logits: MSP = 1/K, Energy = f + ln K, GradNorm = 0.
  const Tensor eq = Tensor::full({2, 4}, 1.5, DType::F32, device());
  EXPECT_ALL_CLOSE(ood::msp_score(eq), vec({0.25, 0.25}, {2}), kF32);
  EXPECT_ALL_CLOSE(ood::energy_score(eq), vec({1.5 + std::log(4.0), 1.5 + std::log(4.0)}, {2}), kF32);
  EXPECT_ALL_CLOSE(ood::gradnorm_score(eq, Tensor::ones({2, 3}, DType::F32, device())), vec({0, 0}, {2}), kF32);
}

TEST_P(ScoresTest, ExtremeLogitsStayFinite) {
  // exp(1e4) overflows every float type: the scores must subtract the row maximum.
  const Tensor x = vec({1e4, 1e4 - 1, -1e4, -1e4, -1e4, -1e4 + 2}, {2, 3}).to(DType::F32).to(device());
  const double e = std::exp(-1.0), e2 = std::exp(-2.0);
  EXPECT_ALL_CLOSE(ood::msp_score(x), vec({1 / (1 + e), 1 / (1 + 2 * e2)}, {2}), kF32);
  EXPECT_ALL_CLOSE(ood::energy_score(x), vec({1e4 + std::log(1 + e), -1e4 + 2 + std::log(1 + 2 * e2)}, {2}), kF32);
  EXPECT_ALL_CLOSE(ood::max_logit_score(x), vec({1e4, -1e4 + 2}, {2}), kF32);
  const Tensor big = ops::scale(Tensor::randn({20, 17}, gen), 1e4);
  const Tensor z = Tensor::randn({20, 8}, gen);
  const LogitRef ref = logit_reference(big, 1.0);
  const Tensor db = big.to(device()), dz = z.to(device());
  for (const Tensor& s : {ood::msp_score(db), ood::energy_score(db), ood::max_logit_score(db),
                          ood::gradnorm_score(db, dz), ood::msp_score(db, 1000.0), ood::energy_score(db, 0.01)})
    EXPECT_TRUE(all_finite(s));
  EXPECT_ALL_CLOSE(ood::msp_score(db), ref.msp, f32_reduction(17));
  EXPECT_ALL_CLOSE(ood::energy_score(db), ref.energy, f32_reduction(17));
  EXPECT_ALL_CLOSE(ood::gradnorm_score(db, dz), gradnorm_reference(big, z, 1.0), f32_reduction(17 + 8));
}

TEST_P(ScoresTest, NanLogitsGiveNan) {
  // NaN at the first, a middle and the last position of rows 0, 2, 4 (K = 40 spans lanes and
  // groups on the device); rows 1 and 3 are clean.
  const int64_t n = 5, k = 40, d = 33;
  std::vector<double> x = vals(Tensor::randn({n, k}, gen));
  x[0 * k + 0] = NAN;
  x[2 * k + 21] = NAN;
  x[4 * k + 39] = NAN;
  std::vector<double> zv = vals(Tensor::randn({n, d}, gen));
  zv[3 * d + 32] = NAN;  // GradNorm of row 3 reads z
  const Tensor dx = vec(x, {n, k}).to(DType::F32).to(device());
  const Tensor dz = vec(zv, {n, d}).to(DType::F32).to(device());
  const Tensor scores[] = {ood::msp_score(dx), ood::max_logit_score(dx), ood::energy_score(dx, 2.0),
                           ood::gradnorm_score(dx, dz)};
  for (int which = 0; which < 4; ++which) {
    const std::vector<double> v = vals(scores[which]);
    for (int64_t r = 0; r < n; ++r) {
      const bool want_nan = r == 0 || r == 2 || r == 4 || (which == 3 && r == 3);
      EXPECT_EQ(std::isnan(v[size_t(r)]), want_nan) << "score " << which << " row " << r;
    }
  }
}

TEST_P(ScoresTest, ManyRowsAllWritten) {
  // More rows than one step of the grid covers; poisoned outputs fail if a row is skipped.
  const Tensor x = Tensor::randn({5000, 37}, gen);
  const Tensor z = Tensor::randn({5000, 3}, gen);
  const LogitRef ref = logit_reference(x, 1.5);
  EXPECT_ALL_CLOSE(ood::msp_score(x.to(device()), 1.5), ref.msp, f32_reduction(37));
  EXPECT_ALL_CLOSE(ood::energy_score(x.to(device()), 1.5), ref.energy, f32_reduction(37));
  EXPECT_ALL_CLOSE(ood::gradnorm_score(x.to(device()), z.to(device()), 1.5), gradnorm_reference(x, z, 1.5),
                   f32_reduction(40));
}

// ---- feature-map scores -------------------------------------------------------------------------------

TEST_P(ScoresTest, FeatureMapScoresMatchFormula) {
  // Covers float4 rows held in registers (hw % 4 == 0), scalar rows (7x7, 3x5, 13x11), rows long
  // enough to be re-read (40x40, 13x11), 1x1 maps, one sample with many channels (split into chunks
  // on the device) and many samples.
  const Shape shapes[] = {{3, 5, 4, 4},    {2, 3, 7, 7},   {4, 6, 1, 1},   {2, 3, 2, 2},
                          {1, 70, 8, 8},   {5, 64, 3, 5},  {2, 4, 40, 40}, {2, 3, 13, 11},
                          {1, 2048, 7, 7}, {3, 300, 2, 3}, {2, 512, 4, 4}, {600, 16, 8, 8}};
  for (const Shape& sh : shapes) {
    const Tensor F = relu_map(sh, gen);
    const int64_t hw = sh[2] * sh[3], chw = sh[1] * hw;
    for (double eps : {1.0, 0.25}) {
      const FeatureRef ref = feature_reference(F, eps);
      const ood::FeatureMapScores s = ood::feature_map_scores(F.to(device()), eps);
      EXPECT_EQ(s.z.device(), device());
      // The device sums in float: f32_reduction's atol grows with sqrt(C H W) (3e-3 for 2048x7x7,
      // ~0.6% of FS there, so it cannot see e.g. one of 2048 channels dropped, 0.05%; the small
      // shapes carry the formula checks on the device). The CPU sums in double and only rounds
      // the float32 output: a few ulps, which sees a dropped channel at any size.
      const Tol tol_hw = on_cuda() ? f32_reduction(hw) : Tol{1e-12, 4e-7};
      const Tol tol_chw = on_cuda() ? f32_reduction(chw) : Tol{1e-12, 4e-7};
      EXPECT_ALL_CLOSE(s.z, ref.z, tol_hw) << shape_str(sh);
      EXPECT_ALL_CLOSE(s.nap, ref.nap, tol_chw) << shape_str(sh) << " eps=" << eps;
      EXPECT_ALL_CLOSE(s.nap_unsquared, ref.nap_unsquared, tol_chw) << shape_str(sh) << " eps=" << eps;
      EXPECT_ALL_CLOSE(s.fs, ref.fs, tol_chw) << shape_str(sh);
      if (!on_cuda()) {
        const ood::FeatureMapScores d = ood::feature_map_scores(F.to(DType::F64), eps);
        EXPECT_ALL_CLOSE(d.z, ref.z, kF64);
        EXPECT_ALL_CLOSE(d.nap, ref.nap, kF64);
        EXPECT_ALL_CLOSE(d.nap_unsquared, ref.nap_unsquared, kF64);
        EXPECT_ALL_CLOSE(d.fs, ref.fs, kF64);
      }
    }
  }
}

TEST_P(ScoresTest, FusedEqualsSeparateAndGlobalAvgPool) {
  for (const Shape& sh : {Shape{4, 10, 8, 8}, Shape{3, 7, 7, 7}, Shape{1, 600, 4, 4}}) {
    const Tensor F = relu_map(sh, gen).to(device());
    const ood::FeatureMapScores s = ood::feature_map_scores(F, 0.5);
    // Same kernel, same arithmetic: the separate functions agree exactly.
    EXPECT_ALL_CLOSE(ood::nap_score(F, 0.5), s.nap, (Tol{0, 0}));
    EXPECT_ALL_CLOSE(ood::nap_score(F, 0.5, false), s.nap_unsquared, (Tol{0, 0}));
    EXPECT_ALL_CLOSE(ood::fs_score(F), s.fs, (Tol{0, 0}));
    // The default eps is 1.
    EXPECT_ALL_CLOSE(ood::nap_score(F), ood::feature_map_scores(F).nap, (Tol{0, 0}));
    EXPECT_ALL_CLOSE(s.z, ops::global_avg_pool(F), f32_reduction(sh[2] * sh[3])) << shape_str(sh);
    EXPECT_EQ(ood::nap_score(F).shape(), (Shape{sh[0]}));
  }
}

TEST_P(ScoresTest, FeatureMapUnalignedInput) {
  // A view 4 bytes into its storage: the device kernel must not use 16-byte loads.
  const Shape sh{3, 9, 4, 4};
  const Tensor F = relu_map(sh, gen);
  Tensor base = Tensor::zeros({shape_numel(sh) + 1}, DType::F32, device());
  Tensor view = make_view(base, sh, sizeof(float));
  view.copy_(F.to(device()));
  const FeatureRef ref = feature_reference(F, 1.0);
  const ood::FeatureMapScores s = ood::feature_map_scores(view);
  EXPECT_ALL_CLOSE(s.z, ref.z, f32_reduction(16));
  EXPECT_ALL_CLOSE(s.nap, ref.nap, f32_reduction(144));
  EXPECT_ALL_CLOSE(s.fs, ref.fs, f32_reduction(144));
}

TEST_P(ScoresTest, FeatureMapHandWorked) {
  // One channel [[0, 1], [2, 5]]: max 5, mean 2, r = 5 / (2 + 1) = 5/3; NAP = 25/9;
  // FS = (2 + 1 + 0 + 3) / 4 = 1.5.
  const Tensor one = vec({0, 1, 2, 5}, {1, 1, 2, 2}).to(DType::F32).to(device());
  ood::FeatureMapScores s = ood::feature_map_scores(one);
  EXPECT_ALL_CLOSE(s.z, vec({2.0}, {1, 1}), kF32);
  EXPECT_ALL_CLOSE(s.nap, vec({25.0 / 9}, {1}), kF32);
  EXPECT_ALL_CLOSE(s.nap_unsquared, vec({5.0 / 3}, {1}), kF32);
  EXPECT_ALL_CLOSE(s.fs, vec({1.5}, {1}), kF32);
  // eps = 0.5: r = 5 / 2.5 = 2.
  EXPECT_ALL_CLOSE(ood::nap_score(one, 0.5), vec({4.0}, {1}), kF32);
  // A second, constant channel [3, 3, 3, 3]: r = 3/4, no deviation.
  const Tensor two = vec({0, 1, 2, 5, 3, 3, 3, 3}, {1, 2, 2, 2}).to(DType::F32).to(device());
  s = ood::feature_map_scores(two);
  EXPECT_ALL_CLOSE(s.z, vec({2.0, 3.0}, {1, 2}), kF32);
  EXPECT_ALL_CLOSE(s.nap, vec({(25.0 / 9 + 9.0 / 16) / 2}, {1}), kF32);
  EXPECT_ALL_CLOSE(s.nap_unsquared, vec({(5.0 / 3 + 0.75) / 2}, {1}), kF32);
  EXPECT_ALL_CLOSE(s.fs, vec({6.0 / 8}, {1}), kF32);
  // An all-zero map scores 0 everywhere (eps keeps the ratio defined).
  s = ood::feature_map_scores(Tensor::zeros({2, 3, 2, 2}, DType::F32, device()));
  EXPECT_ALL_CLOSE(s.nap, vec({0, 0}, {2}), kF32);
  EXPECT_ALL_CLOSE(s.fs, vec({0, 0}, {2}), kF32);
  EXPECT_ALL_CLOSE(s.z, Tensor::zeros({2, 3}, DType::F64), kF32);
}

TEST_P(ScoresTest, NanFeatureMapGivesNan) {
  const Shape sh{3, 20, 4, 4};
  std::vector<double> f = vals(relu_map(sh, gen));
  f[size_t(1 * 320 + 7 * 16 + 9)] = NAN;  // sample 1, channel 7, not the maximum position's lane
  const ood::FeatureMapScores s = ood::feature_map_scores(vec(f, sh).to(DType::F32).to(device()));
  for (const Tensor* t : {&s.nap, &s.nap_unsquared, &s.fs}) {
    EXPECT_FALSE(is_nan_at(*t, 0));
    EXPECT_TRUE(is_nan_at(*t, 1));
    EXPECT_FALSE(is_nan_at(*t, 2));
  }
  const std::vector<double> z = vals(s.z);
  for (int64_t i = 0; i < 60; ++i) EXPECT_EQ(std::isnan(z[size_t(i)]), i == 27) << i;
}

// ---- ASH ---------------------------------------------------------------------------------------------

TEST(ScoresAsh, KeepCountRoundsHalfToEven) {
  // k = D - np.round(D * p / 100)
  EXPECT_EQ(ood::ash_keep_count(6, 50), 3);
  EXPECT_EQ(ood::ash_keep_count(6, 25), 4);       // 1.5 -> 2
  EXPECT_EQ(ood::ash_keep_count(6, 75), 2);       // 4.5 -> 4
  EXPECT_EQ(ood::ash_keep_count(10, 65), 4);      // 6.5 -> 6
  EXPECT_EQ(ood::ash_keep_count(10, 55), 4);      // 5.5 -> 6
  EXPECT_EQ(ood::ash_keep_count(512, 90), 51);    // 460.8 -> 461
  EXPECT_EQ(ood::ash_keep_count(2048, 65), 717);  // 1331.2 -> 1331
  EXPECT_EQ(ood::ash_keep_count(7, 0), 7);
  EXPECT_EQ(ood::ash_keep_count(1, 40), 1);
  EXPECT_THROW(ood::ash_keep_count(10, 95), Error);  // 9.5 -> 10: nothing kept
  EXPECT_THROW(ood::ash_keep_count(10, 100), Error);
  EXPECT_THROW(ood::ash_keep_count(10, -1), Error);
  EXPECT_THROW(ood::ash_keep_count(0, 50), Error);
}

TEST_P(ScoresTest, AshHandWorked) {
  using ood::AshMode;
  // z = [1, 5, 3, 0, 4, 2], p = 50: k = 3 keeps 5, 4, 3 (indices 1, 4, 2); s1 = 15, s2 = 12.
  const Tensor z = vec({1, 5, 3, 0, 4, 2}, {1, 6}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::ash(z, 50, AshMode::Prune), vec({0, 5, 3, 0, 4, 0}, {1, 6}), kF32);
  EXPECT_ALL_CLOSE(ood::ash(z, 50, AshMode::Binarize), vec({0, 5, 5, 0, 5, 0}, {1, 6}), kF32);
  const double e = std::exp(15.0 / 12.0);
  EXPECT_ALL_CLOSE(ood::ash(z, 50, AshMode::Scale), vec({0, 5 * e, 3 * e, 0, 4 * e, 0}, {1, 6}), kF32);
  // p = 0 keeps everything: B spreads the sum evenly, S multiplies by e.
  EXPECT_ALL_CLOSE(ood::ash(z, 0, AshMode::Prune), vec({1, 5, 3, 0, 4, 2}, {1, 6}), kF32);
  EXPECT_ALL_CLOSE(ood::ash(z, 0, AshMode::Binarize), vec({2.5, 2.5, 2.5, 2.5, 2.5, 2.5}, {1, 6}), kF32);
  const double e1 = std::exp(1.0);
  EXPECT_ALL_CLOSE(ood::ash(z, 0, AshMode::Scale), vec({e1, 5 * e1, 3 * e1, 0, 4 * e1, 2 * e1}, {1, 6}), kF32);
  // All equal: the lowest indices are kept. s1 = 12, k = 3, s2 = 6.
  const Tensor c = Tensor::full({1, 6}, 2.0, DType::F32, device());
  EXPECT_ALL_CLOSE(ood::ash(c, 50, AshMode::Prune), vec({2, 2, 2, 0, 0, 0}, {1, 6}), kF32);
  EXPECT_ALL_CLOSE(ood::ash(c, 50, AshMode::Binarize), vec({4, 4, 4, 0, 0, 0}, {1, 6}), kF32);
  const double e2 = std::exp(2.0);
  EXPECT_ALL_CLOSE(ood::ash(c, 50, AshMode::Scale), vec({2 * e2, 2 * e2, 2 * e2, 0, 0, 0}, {1, 6}), kF32);
  // Ties at the threshold: [1, 3, 2, 3, 2, 2, 0], p = 50 -> round(3.5) = 4, k = 3: both 3s and the
  // first 2 (index 2).
  const Tensor t = vec({1, 3, 2, 3, 2, 2, 0}, {1, 7}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::ash(t, 50, AshMode::Prune), vec({0, 3, 2, 3, 0, 0, 0}, {1, 7}), kF32);
  // -0 and +0 tie (the lower indices win): [-0, 0, -1, 0], k = 2 keeps indices 0, 1; s1 = -1.
  const Tensor zz = vec({-0.0, 0.0, -1.0, 0.0}, {1, 4}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::ash(zz, 50, AshMode::Binarize), vec({-0.5, -0.5, 0, 0}, {1, 4}), kF32);
  // An all-zero row stays zero under S (the official 0/0 would be NaN).
  const Tensor zero = Tensor::zeros({2, 5}, DType::F32, device());
  EXPECT_ALL_CLOSE(ood::ash(zero, 60, AshMode::Scale), Tensor::zeros({2, 5}, DType::F64), kF32);
  // D = 1 always keeps its entry.
  const Tensor d1 = vec({-2, 3}, {2, 1}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::ash(d1, 40, AshMode::Prune), vec({-2, 3}, {2, 1}), kF32);
  EXPECT_ALL_CLOSE(ood::ash(d1, 40, AshMode::Scale), vec({-2 * e1, 3 * e1}, {2, 1}), kF32);
}

TEST_P(ScoresTest, AshMatchesReference) {
  using ood::AshMode;
  struct Case {
    Shape shape;
    double p;
    int ties;  // 0: continuous values; >0: integers in [0, ties) (many ties); <0: also negative
  };
  const Case cases[] = {{{5, 6}, 50, 0},      {{3, 512}, 90, 0},  {{4, 2048}, 65, 0}, {{7, 1}, 30, 0},
                        {{2, 300}, 95, 0},    {{3, 1000}, 50, 3}, {{4, 64}, 10, 0},   {{6, 100}, 80, 2},
                        {{3, 700}, 33.3, -5}, {{2, 257}, 90, 0},  {{300, 32}, 70, 4}};
  for (const Case& cs : cases) {
    std::vector<double> v = vals(Tensor::randn(cs.shape, gen));
    for (double& x : v) {
      if (cs.ties > 0)
        x = std::floor(std::fabs(x) * cs.ties) < cs.ties ? std::floor(std::fabs(x) * cs.ties) : 0;
      else if (cs.ties < 0)
        x = std::round(x * 2);
      else
        x = std::max(0.0, x + 0.3) * 2;  // non-negative with zeros, like pooled ReLU features
    }
    const Tensor z = vec(v, cs.shape).to(DType::F32);
    const int64_t k = ood::ash_keep_count(cs.shape[1], cs.p);
    for (AshMode mode : {AshMode::Prune, AshMode::Binarize, AshMode::Scale}) {
      const Tensor ref = ash_reference(z, k, mode);
      const Tensor got = ood::ash(z.to(device()), cs.p, mode);
      EXPECT_EQ(got.device(), device());
      // P copies values; B and S carry float sums over D terms (S: through exp(s1 / s2)).
      const Tol tol = mode == AshMode::Prune ? Tol{0, 0} : f32_reduction(cs.shape[1]);
      EXPECT_ALL_CLOSE(got, ref, tol) << shape_str(cs.shape) << " p=" << cs.p << " mode " << int(mode);
      if (!on_cuda())
        EXPECT_ALL_CLOSE(ood::ash(z.to(DType::F64), cs.p, mode), ref, kF64) << shape_str(cs.shape) << " f64";
    }
  }
}

TEST_P(ScoresTest, AshNan) {
  using ood::AshMode;
  // NaN ranks first (it is kept); B and S make the whole row NaN, P keeps it in place.
  const Tensor z = vec({1, NAN, 3, 0, 4, 2, 1, 2, 3, 4, 5, 6}, {2, 6}).to(DType::F32).to(device());
  const std::vector<double> p = vals(ood::ash(z, 50, AshMode::Prune));
  EXPECT_TRUE(std::isnan(p[1]));
  EXPECT_EQ(p[0], 0.0);
  EXPECT_EQ(p[4], 4.0);
  EXPECT_EQ(p[2], 3.0);
  EXPECT_EQ(p[3], 0.0);
  EXPECT_EQ(p[5], 0.0);
  for (AshMode mode : {AshMode::Binarize, AshMode::Scale}) {
    const std::vector<double> y = vals(ood::ash(z, 50, mode));
    for (int i = 0; i < 6; ++i)
      if (i == 1 || i == 2 || i == 4) EXPECT_TRUE(std::isnan(y[size_t(i)])) << i;
    for (int i = 6; i < 12; ++i) EXPECT_FALSE(std::isnan(y[size_t(i)])) << i;
  }
}

// ---- fusions -----------------------------------------------------------------------------------------

TEST_P(ScoresTest, FusionsMatchFormula) {
  const int64_t n = 1000;
  const Tensor a = ops::scale(Tensor::randn({n}, gen), 5.0), b = Tensor::uniform({n}, -1.0, 30.0, gen);
  const std::vector<double> av = vals(a), bv = vals(b);
  for (double w : {0.0, 0.3, 0.5, 1.0})
    for (double fl : {1e-6, 0.5}) {
      std::vector<double> ref(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        ref[size_t(i)] = std::pow(std::max(av[size_t(i)], fl), w) * std::pow(std::max(bv[size_t(i)], fl), 1 - w);
      // kF32's atol (1e-5) is above a floored product at w = 0 or 1 (1e-6): on the device such rows
      // are checked only by the hand-worked floor below; the CPU computes in double and rounds
      // once, so it is held to a few ulps everywhere.
      EXPECT_ALL_CLOSE(ood::geometric_fusion(a.to(device()), b.to(device()), w, fl), vec(ref, {n}),
                       (on_cuda() ? kF32 : Tol{0, 4e-7}))
          << "w=" << w << " floor=" << fl;
      if (!on_cuda())
        EXPECT_ALL_CLOSE(ood::geometric_fusion(a.to(DType::F64), b.to(DType::F64), w, fl), vec(ref, {n}), kF64);
    }
  for (double lambda : {0.0, 0.016, -2.5}) {
    std::vector<double> ref(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ref[size_t(i)] = av[size_t(i)] + lambda * bv[size_t(i)];
    EXPECT_ALL_CLOSE(ood::linear_fusion(a.to(device()), b.to(device()), lambda), vec(ref, {n}), kF32);
  }
  // Hand-worked: 4^0.5 * 9^0.5 = 6; a negative score is floored: 1e-6^0.5 * 100^0.5 = 1e-2.
  const Tensor x = vec({4, -3}, {2}).to(DType::F32).to(device()), y = vec({9, 100}, {2}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::geometric_fusion(x, y, 0.5), vec({6, 1e-2}, {2}), kF32);
  EXPECT_ALL_CLOSE(ood::linear_fusion(x, y, 0.1), vec({4.9, 7}, {2}), kF32);
  // NaN is never hidden, not even by a zero exponent.
  const Tensor xn = vec({NAN, 1}, {2}).to(DType::F32).to(device());
  for (double w : {0.0, 0.5, 1.0}) {
    EXPECT_TRUE(is_nan_at(ood::geometric_fusion(xn, y, w), 0)) << w;
    EXPECT_TRUE(is_nan_at(ood::geometric_fusion(y, xn, w), 0)) << w;
    EXPECT_FALSE(is_nan_at(ood::geometric_fusion(xn, y, w), 1)) << w;
  }
  EXPECT_TRUE(is_nan_at(ood::linear_fusion(xn, y, 0.0), 0));
}

// ---- general behaviour ---------------------------------------------------------------------------------

TEST_P(ScoresTest, NoAutogradAndEmptyBatch) {
  Tensor x = Tensor::randn({4, 5}, gen).to(device()).set_requires_grad(true);
  Tensor z = Tensor::randn({4, 3}, gen).to(device()).set_requires_grad(true);
  for (const Tensor& s : {ood::msp_score(x), ood::energy_score(x), ood::max_logit_score(x), ood::gradnorm_score(x, z),
                          ood::ash(z, 50, ood::AshMode::Scale)}) {
    EXPECT_FALSE(s.requires_grad());
    EXPECT_EQ(s.grad_fn(), nullptr);
  }
  const Tensor e = Tensor::zeros({0, 5}, DType::F32, device());
  EXPECT_EQ(ood::msp_score(e).shape(), (Shape{0}));
  EXPECT_EQ(ood::gradnorm_score(e, Tensor::zeros({0, 2}, DType::F32, device())).shape(), (Shape{0}));
  EXPECT_EQ(ood::ash(e, 50, ood::AshMode::Prune).shape(), (Shape{0, 5}));
  const ood::FeatureMapScores s = ood::feature_map_scores(Tensor::zeros({0, 3, 2, 2}, DType::F32, device()));
  EXPECT_EQ(s.z.shape(), (Shape{0, 3}));
  EXPECT_EQ(s.nap.shape(), (Shape{0}));
}

// Expects an Error whose message names `fn` and `what`.
template <class F>
void expect_error(F&& f, const std::string& fn, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << fn << ": no error (expected one about '" << what << "')";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(fn), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  }
}

TEST_P(ScoresTest, BadArgumentsThrow) {
  using ood::AshMode;
  auto T = [&](const Shape& s, DType dt = DType::F32) { return Tensor::zeros(s, dt, device()); };
  const Tensor lg = T({3, 4}), z = T({3, 5}), F = T({2, 3, 4, 4}), s1 = T({3});
  expect_error([&] { ood::msp_score(T({4})); }, "msp_score", "logits");
  expect_error([&] { ood::msp_score(T({3, 0})); }, "msp_score", "logits");
  expect_error([&] { ood::msp_score(Tensor()); }, "msp_score", "logits");
  expect_error([&] { ood::msp_score(T({3, 4}, DType::I64)); }, "msp_score", "logits");
  expect_error([&] { ood::msp_score(lg, 0.0); }, "msp_score", "temperature");
  expect_error([&] { ood::energy_score(lg, -1.0); }, "energy_score", "temperature");
  expect_error([&] { ood::energy_score(lg, INFINITY); }, "energy_score", "temperature");
  expect_error([&] { ood::max_logit_score(T({2, 3, 4})); }, "max_logit_score", "logits");
  expect_error([&] { ood::gradnorm_score(lg, T({4, 5})); }, "gradnorm_score", "[4, 5]");
  expect_error([&] { ood::gradnorm_score(lg, T({3})); }, "gradnorm_score", "z");
  expect_error([&] { ood::gradnorm_score(lg, T({3, 0})); }, "gradnorm_score", "z");
  expect_error([&] { ood::gradnorm_score(lg, z, std::nan("")); }, "gradnorm_score", "temperature");
  expect_error([&] { ood::nap_score(T({2, 3, 4})); }, "nap_score", "F");
  expect_error([&] { ood::nap_score(T({2, 3, 0, 4})); }, "nap_score", "F");
  expect_error([&] { ood::nap_score(F, 0.0); }, "nap_score", "eps");
  expect_error([&] { ood::feature_map_scores(F, -1.0); }, "feature_map_scores", "eps");
  expect_error([&] { ood::fs_score(T({2, 0, 4, 4})); }, "fs_score", "F");
  expect_error([&] { ood::fs_score(T({2, 3, 4, 4}, DType::U8)); }, "fs_score", "F");
  expect_error([&] { ood::ash(T({3}), 50, AshMode::Prune); }, "ash", "z");
  expect_error([&] { ood::ash(z, 100, AshMode::Prune); }, "ash", "percentile");
  expect_error([&] { ood::ash(z, -5, AshMode::Prune); }, "ash", "percentile");
  expect_error([&] { ood::ash(z, 95, AshMode::Binarize); }, "ash", "percentile");  // D = 5: keeps nothing
  expect_error([&] { ood::ash(z, 50, AshMode(7)); }, "ash", "mode");
  expect_error([&] { ood::geometric_fusion(s1, T({4}), 0.5); }, "geometric_fusion", "shape");
  expect_error([&] { ood::geometric_fusion(s1, s1, 1.5); }, "geometric_fusion", "w");
  expect_error([&] { ood::geometric_fusion(s1, s1, 0.5, 0.0); }, "geometric_fusion", "floor");
  expect_error([&] { ood::geometric_fusion(T({3, 1}), T({3, 1}), 0.5); }, "geometric_fusion", "s_cls");
  expect_error([&] { ood::linear_fusion(s1, s1, NAN); }, "linear_fusion", "lambda");
  expect_error([&] { ood::linear_fusion(s1, T({3}, DType::I32), 1.0); }, "linear_fusion", "s_cls");
  if (on_cuda()) {
    expect_error([&] { ood::gradnorm_score(lg, z.cpu()); }, "gradnorm_score", "device");
    expect_error([&] { ood::linear_fusion(s1, s1.cpu(), 1.0); }, "linear_fusion", "device");
    expect_error([&] { ood::msp_score(T({3, 4}, DType::F64)); }, "msp_score", "logits");
  } else {
    expect_error([&] { ood::gradnorm_score(lg, z.to(DType::F64)); }, "gradnorm_score", "z");
    expect_error([&] { ood::geometric_fusion(s1, s1.to(DType::F64), 0.5); }, "geometric_fusion", "s_nap");
  }
}

// ---- heatmap score and the standardised fusion ------------------------------------------------------

// The formula as a plain loop: -(1/(H W)) sum over pixels of max over channels of |h|.
std::vector<double> heatmap_reference(const Tensor& h) {
  const std::vector<double> v = vals(h);
  const int64_t n = h.size(0), c = h.size(1), hw = h.size(2) * h.size(3);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t p = 0; p < hw; ++p) {
      double m = 0;
      for (int64_t ch = 0; ch < c; ++ch) m = std::max(m, std::fabs(v[size_t((i * c + ch) * hw + p)]));
      sum += m;
    }
    out[size_t(i)] = -sum / double(hw);
  }
  return out;
}

TEST_P(ScoresTest, HeatmapScoreMatchesFormula) {
  Generator gen(41);
  // Shapes: the decoder's 3x32x32, a pixel count that is not a multiple of the block, one channel.
  for (const Shape& sh : {Shape{7, 3, 32, 32}, Shape{3, 3, 17, 19}, Shape{2, 1, 5, 5}, Shape{300, 3, 4, 4}}) {
    const Tensor h = Tensor::uniform(sh, -1.0, 1.0, gen);
    EXPECT_ALL_CLOSE(ood::heatmap_score(h.to(device())), vec(heatmap_reference(h), {sh[0]}), kF32)
        << shape_str(sh);
    if (!on_cuda())
      EXPECT_ALL_CLOSE(ood::heatmap_score(h.to(DType::F64)), vec(heatmap_reference(h), {sh[0]}), kF64);
  }
  // Hand-worked, one image 2x1x2: pixel 0 max(|-0.5|, |0.25|) = 0.5, pixel 1 max(|0.1|, |-0.9|) = 0.9
  // -> -(0.5 + 0.9) / 2 = -0.7; an all-zero heatmap scores 0 (the most in-distribution value).
  const Tensor hand = Tensor::from_vector<float>({-0.5f, 0.1f, 0.25f, -0.9f, 0, 0, 0, 0}, {2, 2, 1, 2});
  EXPECT_ALL_CLOSE(ood::heatmap_score(hand.to(device())), vec({-0.7, 0.0}, {2}), kF32);
  // A NaN in one image gives NaN for that image only.
  const Tensor hn = Tensor::from_vector<float>({0.1f, NAN, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f}, {2, 2, 1, 2});
  EXPECT_TRUE(is_nan_at(ood::heatmap_score(hn.to(device())), 0));
  EXPECT_FALSE(is_nan_at(ood::heatmap_score(hn.to(device())), 1));
  expect_error([&] { ood::heatmap_score(Tensor::zeros({2, 3, 4})); }, "heatmap_score", "h");
}

TEST_P(ScoresTest, StandardizedFusionMatchesFormula) {
  Generator gen(43);
  const int64_t n = 1000;
  const Tensor a = ops::scale(Tensor::randn({n}, gen), 5.0), b = Tensor::uniform({n}, -1.0, 30.0, gen);
  const std::vector<double> av = vals(a), bv = vals(b);
  const ood::ScoreScale sa{-2.0, 4.0}, sb{10.0, 0.5};
  for (double w : {0.0, 0.3, 1.0}) {
    std::vector<double> ref(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      ref[size_t(i)] = (1 - w) * (av[size_t(i)] + 2.0) / 4.0 + w * (bv[size_t(i)] - 10.0) / 0.5;
    EXPECT_ALL_CLOSE(ood::standardized_fusion(a.to(device()), b.to(device()), w, sa, sb), vec(ref, {n}), kF32) << w;
  }
  // Hand-worked: a = 3 (mean 1, std 2 -> 1), b = 0 (mean 4, std 4 -> -1): w = 0.25 -> 0.75 - 0.25 = 0.5.
  const Tensor x = vec({3}, {1}).to(DType::F32).to(device()), y = vec({0}, {1}).to(DType::F32).to(device());
  EXPECT_ALL_CLOSE(ood::standardized_fusion(x, y, 0.25, {1, 2}, {4, 4}), vec({0.5}, {1}), kF32);
  expect_error([&] { ood::standardized_fusion(x, y, 0.5, {0, 0}, {0, 1}); }, "standardized_fusion", "std");
  expect_error([&] { ood::standardized_fusion(x, y, 1.5, {0, 1}, {0, 1}); }, "standardized_fusion", "w");
}

}  // namespace
