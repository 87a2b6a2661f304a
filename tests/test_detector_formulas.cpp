// Detectors that run the network, against their formulas (docs/methods.md) computed by independent
// paths: ODIN and Mahalanobis with input noise against the perturbation built from a central
// finite-difference gradient of a float64 copy of the network; FS+TA against FS of the network's
// tail re-run on ReLU(g - k) at the documented stage, with FS as a plain loop; concat_features /
// slice_features against hand-built rows.
#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>

#include "framework/autograd.h"
#include "framework/concat.h"
#include "models/resnet_cifar.h"
#include "ood/detectors.h"
#include "ood/features.h"
#include "ood/protocol.h"
#include "testing.h"

using namespace oodkit;

namespace {

std::vector<double> vals(const Tensor& t) { return t.detach().to(DType::F64).cpu().to_vector<double>(); }

// A tiny float32 ResNet (depth 8: stem + one block per stage) and a float64 copy of it.
struct Nets {
  Generator gen;
  models::ResNetCifar net;
  models::ResNetCifar net64;
  explicit Nets(uint64_t seed) : gen(seed), net(8, 4, gen), net64(8, 4, gen) {
    net.eval();
    net64.load_state_dict(net.state_dict());
    net64.to(DType::F64);
    net64.eval();
  }
  // The float64 network's logits and penultimate vectors (no graph).
  std::vector<double> logits64(const Tensor& x) {
    autograd::NoGradGuard ng;
    return vals(net64.forward(x));
  }
  std::vector<double> z64(const Tensor& x) {
    autograd::NoGradGuard ng;
    return vals(net64.forward_all(x).penultimate);
  }
};

constexpr int64_t kC = 3, kH = 8, kW = 8, kP = kC * kH * kW;

// The rows x, x + h e_j, x - h e_j (j = 0..P-1) of one image, as one float64 batch [2P + 1, 3, 8, 8].
Tensor central_difference_batch(const std::vector<double>& x, double h) {
  std::vector<double> b;
  b.reserve(size_t((2 * kP + 1) * kP));
  b.insert(b.end(), x.begin(), x.end());
  for (int64_t j = 0; j < kP; ++j)
    for (double s : {h, -h}) {
      std::vector<double> y = x;
      y[size_t(j)] += s;
      b.insert(b.end(), y.begin(), y.end());
    }
  return Tensor::from_vector(b, {2 * kP + 1, kC, kH, kW});
}

// x - eps * sign(g) / std_c, sign(0) = +1.
std::vector<double> perturbed(const std::vector<double>& x, const std::vector<double>& g, double eps,
                              const std::array<float, 3>& sd) {
  std::vector<double> y = x;
  for (int64_t j = 0; j < kP; ++j) y[size_t(j)] -= eps * (g[size_t(j)] >= 0 ? 1.0 : -1.0) / double(sd[size_t(j / (kH * kW))]);
  return y;
}

double max_softmax(const double* f, int64_t k, double t) {
  const double m = *std::max_element(f, f + k);
  double s = 0;
  for (int64_t j = 0; j < k; ++j) s += std::exp((f[j] - m) / t);
  return 1.0 / s;  // the largest term is exp(0) = 1
}

// How many entries of g are too small for their sign to be trusted (relative to the largest).
int64_t tiny_entries(const std::vector<double>& g, double rel) {
  double mx = 0;
  for (double v : g) mx = std::max(mx, std::fabs(v));
  return std::count_if(g.begin(), g.end(), [&](double v) { return std::fabs(v) < rel * mx; });
}

// ODIN: S = max softmax(f(x')/T), x' = x - eps sign(grad_x CE(f(x)/T, argmax f(x))) / std_c, with
// CE(f/T, y) = -log softmax(f/T)_y, differentiated by central differences on the float64 network.
// At T = 1000 every score is within ~1e-4 of 1/K, so the comparison is made on S - 1/K (relative),
// never on S with an absolute tolerance (which a constant 1/K would pass).
// The logit-formula rows of the registry (Registration::logit_formula), hand-worked on logits
// (0, ln 3) and (ln 3, 0): softmax (1/4, 3/4), so MSP 3/4, MaxLogit ln 3, Energy ln(1 + 3) = ln 4.
TEST(DetectorFormulas, LogitFormulaRowsGiveTheirFormulas) {
  ood::Features f;
  f.logits = Tensor::from_vector<float>({0.f, std::log(3.f), std::log(3.f), 0.f}, {2, 2});
  for (const auto& [name, want] : std::vector<std::pair<std::string, double>>{
           {"msp", 0.75}, {"maxlogit", std::log(3.0)}, {"energy", std::log(4.0)}}) {
    const std::unique_ptr<ood::Detector> d = ood::make_detector(name);
    EXPECT_EQ(d->name(), name);
    const std::vector<double> s = ood::to_doubles(d->score(f));
    ASSERT_EQ(s.size(), 2u) << name;
    EXPECT_NEAR(s[0], want, 1e-6) << name;
    EXPECT_NEAR(s[1], want, 1e-6) << name;
  }
}

TEST(DetectorFormulas, OdinMatchesFiniteDifferencePerturbation) {
  Nets nets(5);
  const int64_t n = 4, k = 4;
  const Tensor x = Tensor::randn({n, kC, kH, kW}, nets.gen);
  const std::array<float, 3> sd{0.5f, 0.25f, 2.0f};
  const ood::ImageContext ctx{&nets.net, sd};
  auto odin = ood::make_detector("odin");
  for (double t : {1000.0, 1.0}) {
    for (int64_t i = 0; i < n; ++i) {
      SCOPED_TRACE("T=" + std::to_string(t) + " image " + std::to_string(i));
      const std::vector<double> xi = vals(x.narrow(i, 1));
      const double h = 1e-5;
      const std::vector<double> f = nets.logits64(central_difference_batch(xi, h));
      const int64_t y = std::max_element(f.begin(), f.begin() + k) - f.begin();
      const auto loss = [&](int64_t row) {  // -log softmax(f/T)_y
        const double* r = f.data() + row * k;
        const double m = *std::max_element(r, r + k);
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += std::exp((r[j] - m) / t);
        return -((r[y] - m) / t - std::log(s));
      };
      std::vector<double> g(static_cast<size_t>(kP));
      for (int64_t j = 0; j < kP; ++j) g[size_t(j)] = (loss(1 + 2 * j) - loss(2 + 2 * j)) / (2 * h);
      // Signs of entries below 1e-4 of the largest could differ between float32 autograd and
      // these differences; none is that small here (and such a flip would move S by ~1e-4 of a
      // pixel's full effect, well inside the tolerance below).
      ASSERT_EQ(tiny_entries(g, 1e-4), 0) << "a gradient entry too small for its sign to be trusted";
      const double plain = max_softmax(f.data(), k, t);
      for (double eps : {0.0014, 0.01}) {
        odin->configure({{"T", t}, {"eps", eps}});
        const double got = vals(odin->score_images(ctx, x.narrow(i, 1)))[0];
        const Tensor xp = Tensor::from_vector(perturbed(xi, g, eps, sd), {1, kC, kH, kW});
        const double want = max_softmax(nets.logits64(xp).data(), k, t);
        // float32 network and softmax: a few float32 ulps of S (ulp(0.25) = 1.5e-8) plus 1e-4 of
        // S - 1/K; at T = 1000 that is ~1e-7, while S - 1/K is ~2e-4 and the perturbation moves S
        // by ~5e-6 (eps = 0.0014): a constant 1/K, a sign error or a lost 1/std is far outside.
        const double tol = 1e-4 * (want - 1.0 / k) + 6e-8;
        EXPECT_NEAR(got, want, tol) << "eps=" << eps;
        EXPECT_GT(want, plain) << "eps=" << eps;  // the perturbation raises the top softmax
        EXPECT_GT(want - plain, 10 * tol) << "eps=" << eps << ": the perturbation is not resolved";
      }
    }
  }
}

// Mahalanobis with input noise: S = -d_min(z(x')), x' = x - eps sign(grad_x d_min(z(x))) / std_c,
// with d_c(z) = (z - mu_c)^T Sigma^-1 (z - mu_c) from class means and the tied covariance computed
// here by loops (full rank: the pseudo-inverse is the inverse) and the gradient by central
// differences of d_(argmin class) on the float64 network.
TEST(DetectorFormulas, MahalanobisNoiseMatchesFiniteDifferencePerturbation) {
  using Mat = Eigen::MatrixXd;
  Nets nets(6);
  const int64_t n = 4, k = 4, ntrain = 400;
  const int64_t d = nets.net.feature_dim();
  // Training z: Gaussian classes around the network's typical z, with a mixing matrix so the
  // covariance is not diagonal (the detector is fitted on these, not on network features).
  const std::vector<double> base = [&] {
    autograd::NoGradGuard ng;
    const std::vector<double> z = vals(nets.net.forward_all(Tensor::randn({32, kC, kH, kW}, nets.gen)).penultimate);
    std::vector<double> m(static_cast<size_t>(d), 0.0);
    for (size_t i = 0; i < z.size(); ++i) m[i % size_t(d)] += z[i] / 32;
    return m;
  }();
  const std::vector<double> mu_noise = vals(Tensor::randn({k, d}, nets.gen, DType::F64));
  const std::vector<double> mix = vals(Tensor::randn({d, d}, nets.gen, DType::F64));
  const std::vector<double> e = vals(Tensor::randn({ntrain, d}, nets.gen, DType::F64));
  std::vector<float> zt(static_cast<size_t>(ntrain * d));
  Tensor labels = Tensor::empty({ntrain}, DType::I64);
  for (int64_t r = 0; r < ntrain; ++r) {
    const int64_t c = r % k;
    labels.data<int64_t>()[r] = c;
    for (int64_t a = 0; a < d; ++a) {
      double v = base[size_t(a)] + 0.3 * mu_noise[size_t(c * d + a)];
      for (int64_t b = 0; b < d; ++b) v += 0.1 * e[size_t(r * d + b)] * ((a == b) + 0.3 * mix[size_t(a * d + b)]);
      zt[size_t(r * d + a)] = float(v);
    }
  }
  ood::Features train;
  train.z = Tensor::from_vector(zt, {ntrain, d});
  train.logits = Tensor::zeros({ntrain, k});
  // Reference statistics (double, from the float32 values the detector sees).
  Mat mu = Mat::Zero(k, d), cov = Mat::Zero(d, d);
  for (int64_t r = 0; r < ntrain; ++r)
    for (int64_t a = 0; a < d; ++a) mu(r % k, a) += zt[size_t(r * d + a)] / double(ntrain / k);
  for (int64_t r = 0; r < ntrain; ++r)
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = 0; b < d; ++b)
        cov(a, b) += (zt[size_t(r * d + a)] - mu(r % k, a)) * (zt[size_t(r * d + b)] - mu(r % k, b)) / double(ntrain);
  const Mat prec = cov.inverse();
  const auto dists = [&](const double* z) {
    std::vector<double> out(static_cast<size_t>(k));
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t a = 0; a < d; ++a)
        for (int64_t b = 0; b < d; ++b) s += (z[a] - mu(c, a)) * prec(a, b) * (z[b] - mu(c, b));
      out[size_t(c)] = s;
    }
    return out;
  };

  auto det = ood::make_detector("mahalanobis_noise");
  det->fit({&train, labels, &train, nets.net.head().weight, nets.net.head().bias});
  const std::array<float, 3> sd{0.5f, 0.25f, 2.0f};
  const ood::ImageContext ctx{&nets.net, sd};
  const Tensor x = Tensor::randn({n, kC, kH, kW}, nets.gen);
  for (int64_t i = 0; i < n; ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    const std::vector<double> xi = vals(x.narrow(i, 1));
    const double h = 1e-5;
    const std::vector<double> z = nets.z64(central_difference_batch(xi, h));
    const std::vector<double> d0 = dists(z.data());
    const int64_t c = std::min_element(d0.begin(), d0.end()) - d0.begin();
    std::vector<double> g(static_cast<size_t>(kP));
    for (int64_t j = 0; j < kP; ++j)
      g[size_t(j)] = (dists(z.data() + (1 + 2 * j) * d)[size_t(c)] - dists(z.data() + (2 + 2 * j) * d)[size_t(c)]) / (2 * h);
    ASSERT_EQ(tiny_entries(g, 1e-4), 0) << "a gradient entry too small for its sign to be trusted";
    const double plain = -d0[size_t(c)];
    for (double eps : {0.0014, 0.01}) {
      det->configure({{"eps", eps}});
      const double got = vals(det->score_images(ctx, x.narrow(i, 1)))[0];
      const Tensor xp = Tensor::from_vector(perturbed(xi, g, eps, sd), {1, kC, kH, kW});
      const std::vector<double> dp = dists(nets.z64(xp).data());
      const double want = -*std::min_element(dp.begin(), dp.end());
      // float32 features and distances: ~2e-6 relative seen (the precision matrix is well
      // conditioned); the perturbation moves the score by ~1e3 here.
      const double tol = 1e-5 * std::fabs(want);
      EXPECT_NEAR(got, want, tol) << "eps=" << eps;
      EXPECT_GT(std::fabs(want - plain), 100 * tol) << "eps=" << eps << ": the perturbation is not resolved";
      // The small step lowers the distance (first order); the large one may overshoot.
      if (eps < 0.005) EXPECT_GT(want, plain) << "eps=" << eps;
    }
  }
}

// FS on a feature map [N, C, H, W]: (1/(C H W)) sum |F - mean_{h,w} F_c|, as a loop.
std::vector<double> fs_loop(const Tensor& f) {
  const std::vector<double> v = vals(f);
  const int64_t n = f.size(0), c = f.size(1), hw = f.size(2) * f.size(3);
  std::vector<double> out(static_cast<size_t>(n), 0.0);
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const double* row = v.data() + (s * c + ch) * hw;
      double m = 0;
      for (int64_t j = 0; j < hw; ++j) m += row[j] / double(hw);
      for (int64_t j = 0; j < hw; ++j) out[size_t(s)] += std::fabs(row[j] - m);
    }
    out[size_t(s)] /= double(c * hw);
  }
  return out;
}

void expect_rel(const std::vector<double>& got, const std::vector<double>& want, double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], rel * std::fabs(want[i])) << what << " row " << i;
}

// FS+TA: fs_ta for threshold k = FS(F_TA), F_TA = the stages after stage s re-run (forward_from) on
// ReLU(g - k), g = the output of stage s = num_stages - 2 (ResNet-CIFAR: stem, layer1, layer2,
// layer3, so s = 2, layer2); ReLU(g - k) and FS are loops here. The other features come from the
// unmodified pass. An explicit ta_stage moves the cut.
TEST(DetectorFormulas, FsTaIsFsOfTheTailRerunOnThresholdedStage) {
  Nets nets(9);
  models::ResNetCifar& net = nets.net;
  ASSERT_EQ(net.num_stages(), 4);
  const Tensor x = Tensor::randn({5, 3, 16, 16}, nets.gen);
  autograd::NoGradGuard ng;
  const models::ClassifierOutput out = net.forward_all(x);
  ASSERT_EQ(out.stages.size(), 4u);
  const auto relu_minus = [](const Tensor& g, double k) {
    std::vector<double> v = vals(g);
    for (double& a : v) a = std::max(a - k, 0.0);
    return Tensor::from_vector(v, g.shape()).to(DType::F32);
  };
  for (int stage : {-1, 1}) {
    SCOPED_TRACE("ta_stage " + std::to_string(stage));
    const int s = stage < 0 ? 2 : stage;  // documented default: layer2
    ood::FeatureOptions fo;
    fo.ta_stage = stage;
    fo.ta_thresholds = {0.1, 0.5, 1.0};
    const ood::Features f = ood::extract_features(net, x, fo);
    ASSERT_EQ(f.fs_ta.size(), 3u);
    EXPECT_EQ(f.ta_thresholds, fo.ta_thresholds);
    const std::vector<double> fs_plain = fs_loop(out.features);
    for (size_t t = 0; t < 3; ++t) {
      const double k = fo.ta_thresholds[t];
      const models::ClassifierOutput tail = net.forward_from(s, relu_minus(out.stages[size_t(s)], k));
      const std::vector<double> want = fs_loop(tail.features);
      expect_rel(vals(f.fs_ta[t]), want, 1e-5, "fs_ta k=" + std::to_string(k));
      for (size_t i = 0; i < want.size(); ++i)  // TA changes the score (not a vacuous comparison)
        EXPECT_GT(std::fabs(want[i] - fs_plain[i]), 1e-3 * fs_plain[i]) << "k=" << k << " row " << i;
    }
    // The unmodified path: logits as the plain forward, FS of the unmodified map, z its mean.
    EXPECT_EQ(vals(f.logits), vals(out.logits));
    expect_rel(vals(f.fs), fs_plain, 1e-5, "fs");
    const std::vector<double> fm = vals(out.features);
    const int64_t c = out.features.size(1), hw = out.features.size(2) * out.features.size(3);
    std::vector<double> zm(static_cast<size_t>(5 * c), 0.0);
    for (size_t j = 0; j < fm.size(); ++j) zm[j / size_t(hw)] += fm[j] / double(hw);
    const std::vector<double> z = vals(f.z);
    for (size_t j = 0; j < zm.size(); ++j) EXPECT_NEAR(z[j], zm[j], 1e-5 * std::max(1.0, zm[j])) << j;
  }
  ood::FeatureOptions bad;
  bad.ta_stage = 3;  // the last stage: nothing left to re-run
  EXPECT_THROW(ood::extract_features(net, x, bad), Error);
}

// ---- concat_features / slice_features against hand-built rows ------------------------------------

// Part p, row r: logits (K = 2) 1000 p + 10 r + {0, 1}; z (D = 3) 2000 p + 10 r + {0, 1, 2};
// nap 3000 p + r; nap_unsquared 4000 p + r; fs 5000 p + r; fs_ta[t] 6000 p + 100 t + r.
ood::Features hand_part(int p, int rows, int n_ta = 2) {
  std::vector<float> lg, z, nap, napu, fs;
  std::vector<std::vector<float>> ta(static_cast<size_t>(n_ta));
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < 2; ++j) lg.push_back(float(1000 * p + 10 * r + j));
    for (int j = 0; j < 3; ++j) z.push_back(float(2000 * p + 10 * r + j));
    nap.push_back(float(3000 * p + r));
    napu.push_back(float(4000 * p + r));
    fs.push_back(float(5000 * p + r));
    for (int t = 0; t < n_ta; ++t) ta[size_t(t)].push_back(float(6000 * p + 100 * t + r));
  }
  ood::Features f;
  f.logits = Tensor::from_vector(lg, {rows, 2});
  f.z = Tensor::from_vector(z, {rows, 3});
  f.nap = Tensor::from_vector(nap, {rows});
  f.nap_unsquared = Tensor::from_vector(napu, {rows});
  f.fs = Tensor::from_vector(fs, {rows});
  for (int t = 0; t < n_ta; ++t) f.fs_ta.push_back(Tensor::from_vector(ta[size_t(t)], {rows}));
  f.ta_thresholds = n_ta == 2 ? std::vector<double>{0.1, 0.2} : std::vector<double>(size_t(n_ta), 0.3);
  return f;
}

TEST(FeaturesRows, ConcatAndSliceMatchHandBuiltRows) {
  // Rows (part, row) in concatenation order: (1, 0), (1, 1), [part 2 empty], (3, 0), (3, 1), (3, 2).
  const std::vector<std::pair<int, int>> order{{1, 0}, {1, 1}, {3, 0}, {3, 1}, {3, 2}};
  const auto expect_rows = [](const ood::Features& f, const std::vector<std::pair<int, int>>& rows) {
    std::vector<double> lg, z, nap, napu, fs, ta0, ta1;
    for (const auto& [p, r] : rows) {
      for (int j = 0; j < 2; ++j) lg.push_back(1000 * p + 10 * r + j);
      for (int j = 0; j < 3; ++j) z.push_back(2000 * p + 10 * r + j);
      nap.push_back(3000 * p + r);
      napu.push_back(4000 * p + r);
      fs.push_back(5000 * p + r);
      ta0.push_back(6000 * p + r);
      ta1.push_back(6000 * p + 100 + r);
    }
    const int64_t n = int64_t(rows.size());
    EXPECT_EQ(f.size(), n);
    EXPECT_EQ(f.logits.shape(), (Shape{n, 2}));
    EXPECT_EQ(f.z.shape(), (Shape{n, 3}));
    EXPECT_EQ(vals(f.logits), lg);
    EXPECT_EQ(vals(f.z), z);
    EXPECT_EQ(vals(f.nap), nap);
    EXPECT_EQ(vals(f.nap_unsquared), napu);
    EXPECT_EQ(vals(f.fs), fs);
    ASSERT_EQ(f.fs_ta.size(), 2u);
    EXPECT_EQ(vals(f.fs_ta[0]), ta0);
    EXPECT_EQ(vals(f.fs_ta[1]), ta1);
    EXPECT_EQ(f.ta_thresholds, (std::vector<double>{0.1, 0.2}));
  };
  const ood::Features all = ood::concat_features({hand_part(1, 2), hand_part(2, 0), hand_part(3, 3)});
  expect_rows(all, order);
  expect_rows(ood::slice_features(all, 1, 3), {order.begin() + 1, order.begin() + 4});
  expect_rows(ood::slice_features(all, 0, 5), order);
  expect_rows(ood::slice_features(all, 4, 1), {order.back()});
  expect_rows(ood::concat_features({hand_part(3, 3)}), {order.begin() + 2, order.end()});
  // concat_rows on rank-3 parts keeps the trailing shape.
  const Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {1, 2, 2}), b = Tensor::from_vector<float>({5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 2});
  const Tensor ab = concat_rows({a, b});
  EXPECT_EQ(ab.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(vals(ab), (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  // Mismatched parts are refused.
  EXPECT_THROW(ood::concat_features({hand_part(1, 2), hand_part(3, 1, 1)}), Error);  // fewer TA paths
  EXPECT_THROW(concat_rows({a, Tensor::zeros({2, 2, 3})}), Error);
  EXPECT_THROW(concat_rows({a, Tensor::zeros({2, 2, 2}, DType::F64)}), Error);
  EXPECT_THROW(ood::concat_features({}), Error);
}

}  // namespace
