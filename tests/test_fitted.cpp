// Fitted post-hoc detectors (ood/): percentile, row_norm, Mahalanobis, ViM, ReAct, DICE, and
// their saved state.
#include <omp.h>
#include <unistd.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "ood/dice.h"
#include "ood/mahalanobis.h"
#include "ood/percentile.h"
#include "ood/react.h"
#include "ood/row_norm.h"
#include "ood/state_io.h"
#include "ood/vim.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::Tol;

namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

// ---------------------------------------------------------------- helpers

Mat to_mat(const Tensor& t) {
  const Tensor h = t.to(DType::F64).cpu();
  const int64_t r = h.size(0), c = h.ndim() > 1 ? h.size(1) : 1;
  Mat m(r, c);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) m(i, j) = h.data<double>()[i * c + j];
  return m;
}

Tensor from_vec(const Vec& v) {
  std::vector<double> x(v.data(), v.data() + v.size());
  return Tensor::from_vector(x, {int64_t(v.size())});
}

Tensor from_mat(const Mat& m) {
  std::vector<double> x;
  for (int64_t i = 0; i < m.rows(); ++i)
    for (int64_t j = 0; j < m.cols(); ++j) x.push_back(m(i, j));
  return Tensor::from_vector(x, {int64_t(m.rows()), int64_t(m.cols())});
}

double log_sum_exp(const Eigen::RowVectorXd& x) {
  const double m = x.maxCoeff();
  return m + std::log((x.array() - m).exp().sum());
}

// A scratch path prefix for detector states, removed (both files) at scope exit.
struct StatePath {
  std::string path;
  explicit StatePath(const std::string& name)
      : path(::testing::TempDir() + "oodkit_fitted_" + std::to_string(::getpid()) + "_" + name) {}
  ~StatePath() {
    std::remove(ood::state_json_path(path).c_str());
    std::remove(ood::state_tensors_path(path).c_str());
  }
  std::string json() const { return ood::state_json_path(path); }
  std::string tensors() const { return ood::state_tensors_path(path); }
};

// Runs f, expects an oodkit::Error whose message contains every string of `parts`.
template <class F>
void expect_error_mentioning(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an oodkit::Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const std::string& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
  }
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}
void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Gaussian classes: z = mu_c + A eps (A mixes the dimensions so the covariance is not diagonal).
struct GaussianClasses {
  Tensor z, labels;  // z float64 [N, D], labels int64 [N]
};
GaussianClasses gaussian_classes(int64_t n, int64_t d, int64_t k, Generator& gen) {
  const Mat mu = to_mat(Tensor::randn({k, d}, gen, DType::F64)) * 3.0;
  const Mat a = to_mat(Tensor::randn({d, d}, gen, DType::F64)) * 0.5 + Mat::Identity(d, d);
  const Mat eps = to_mat(Tensor::randn({n, d}, gen, DType::F64));
  Mat z(n, d);
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    y[size_t(i)] = i % k;
    z.row(i) = mu.row(i % k) + eps.row(i) * a.transpose();
  }
  return {from_mat(z), Tensor::from_vector(y, {n})};
}

// Reference Mahalanobis distances [N, K] with loops and a given precision matrix.
Mat reference_distances(const Mat& z, const Mat& mu, const Mat& prec) {
  Mat d(z.rows(), mu.rows());
  for (int64_t i = 0; i < z.rows(); ++i)
    for (int64_t c = 0; c < mu.rows(); ++c) {
      const Vec diff = (z.row(i) - mu.row(c)).transpose();
      d(i, c) = diff.dot(prec * diff);
    }
  return d;
}

// Reference class means and tied covariance with plain loops.
void reference_stats(const Mat& z, const std::vector<int64_t>& y, int64_t k, Mat& mu, Mat& cov) {
  const int64_t n = z.rows(), d = z.cols();
  mu = Mat::Zero(k, d);
  std::vector<double> cnt(size_t(k), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) mu(y[size_t(i)], j) += z(i, j);
    cnt[size_t(y[size_t(i)])] += 1;
  }
  for (int64_t c = 0; c < k; ++c) mu.row(c) /= cnt[size_t(c)];
  cov = Mat::Zero(d, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = 0; b < d; ++b)
        cov(a, b) += (z(i, a) - mu(y[size_t(i)], a)) * (z(i, b) - mu(y[size_t(i)], b));
  cov /= double(n);
}

// Non-negative, ReLU-like float32 features [n, d].
Tensor relu_features(Generator& gen, int64_t n, int64_t d) { return ops::relu(Tensor::randn({n, d}, gen)); }

Tensor row_min_neg(const Mat& d) {
  Vec s(d.rows());
  for (int64_t i = 0; i < d.rows(); ++i) s(i) = -d.row(i).minCoeff();
  return from_vec(s);
}

// ---------------------------------------------------------------- percentile

TEST(Percentile, HandCases) {
  const Tensor a = Tensor::from_vector(std::vector<double>{4, 1, 3, 2}, {4});
  EXPECT_EQ(ood::percentile(a, 0), 1.0);
  EXPECT_EQ(ood::percentile(a, 100), 4.0);
  EXPECT_EQ(ood::percentile(a, 50), 2.5);   // h = 1.5 between 2 and 3
  EXPECT_EQ(ood::percentile(a, 25), 1.75);  // h = 0.75
  EXPECT_EQ(ood::quantile(a, 0.5), 2.5);
  // Single value, and ties.
  EXPECT_EQ(ood::percentile(Tensor::from_vector(std::vector<float>{7.f}, {1}), 33), 7.0);
  EXPECT_EQ(ood::percentile(Tensor::from_vector(std::vector<double>{1, 1, 1, 2}, {2, 2}), 50), 1.0);
  // Integer and float32 tensors are read as double.
  EXPECT_EQ(ood::percentile(Tensor::from_vector(std::vector<int64_t>{3, 1, 2}, {3}), 50), 2.0);
  EXPECT_EQ(ood::percentile(Tensor::from_vector(std::vector<float>{0.5f, 0.25f}, {2}), 50), 0.375);
}

TEST(Percentile, MatchesNumpyValues) {
  // numpy 2.4: np.percentile(a, p) (method 'linear'), printed with repr.
  const Tensor a = Tensor::from_vector(std::vector<double>{0.1, 0.7, 0.2, 1e10, -3.3, 5.5, 0.3, 0.7, 2.0 / 3.0}, {9});
  EXPECT_EQ(ood::percentile(a, 0), -3.3);
  EXPECT_EQ(ood::percentile(a, 12.5), 0.1);
  EXPECT_EQ(ood::percentile(a, 33.3), 0.26639999999999997);
  EXPECT_EQ(ood::percentile(a, 50), 0.6666666666666666);
  EXPECT_EQ(ood::percentile(a, 66.7), 0.7);
  EXPECT_EQ(ood::percentile(a, 90), 2000000004.4000018);
  EXPECT_EQ(ood::percentile(a, 99.9), 9920000000.044008);
  EXPECT_EQ(ood::percentile(a, 100), 1e10);
  EXPECT_EQ(ood::percentile(a, 3.7), -2.2935999999999996);
  EXPECT_EQ(ood::percentile(Tensor::from_vector(std::vector<double>{15, 20, 35, 40, 50}, {5}), 40), 29.0);
  // g >= 0.5: numpy interpolates down from the upper neighbour (a + g (b - a) would give ...849).
  const Tensor c = Tensor::from_vector(std::vector<double>{0.4116305363741328, 1.0425133694426776, -0.12853466294403426}, {3});
  EXPECT_EQ(ood::percentile(c, 83.53122073468151), 0.8347159670409848);
  EXPECT_DOUBLE_EQ(ood::percentile(Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {10}), 90),
                   9.1);
}

TEST(Percentile, MatchesSortedReference) {
  Generator gen(11);
  const Tensor x = Tensor::randn({37, 29}, gen);
  std::vector<double> v;
  for (float f : x.to_vector<float>()) v.push_back(f);
  std::sort(v.begin(), v.end());
  const double n = double(v.size());
  for (double p : {0.0, 0.1, 1.0, 10.0, 25.0, 49.99, 50.0, 63.2, 90.0, 99.0, 99.97, 100.0}) {
    const double h = (n - 1) * (p / 100.0);
    const size_t lo = size_t(std::floor(h));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    const double g = h - std::floor(h);
    const double want = g >= 0.5 ? v[hi] - (v[hi] - v[lo]) * (1 - g) : v[lo] + (v[hi] - v[lo]) * g;
    EXPECT_EQ(ood::percentile(x, p), want) << "p = " << p;
  }
}

TEST(Percentile, Errors) {
  const Tensor ok = Tensor::from_vector(std::vector<double>{1, 2}, {2});
  EXPECT_THROW(ood::percentile(ok, -0.1), Error);
  EXPECT_THROW(ood::percentile(ok, 100.5), Error);
  EXPECT_THROW(ood::percentile(ok, std::nan("")), Error);
  EXPECT_THROW(ood::quantile(ok, 1.5), Error);
  EXPECT_THROW(ood::percentile(Tensor::empty({0}, DType::F64), 50), Error);
  EXPECT_THROW(ood::percentile(Tensor(), 50), Error);
  const Tensor with_nan = Tensor::from_vector(std::vector<double>{1, std::nan(""), 2}, {3});
  EXPECT_THROW(ood::percentile(with_nan, 50), Error);
}

// ---------------------------------------------------------------- row_norm

class RowNormTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(RowNormTest);

TEST_P(RowNormTest, ForwardMatchesLoop) {
  std::vector<float> v = Tensor::randn({37, 75}, gen).to_vector<float>();
  for (int j = 0; j < 75; ++j) v[size_t(5 * 75 + j)] = 0.f;  // one all-zero row
  const Tensor x = Tensor::from_vector(v, {37, 75});
  std::vector<double> want(37);
  for (int r = 0; r < 37; ++r) {
    double s = 0;
    for (int j = 0; j < 75; ++j) s += double(v[size_t(r * 75 + j)]) * v[size_t(r * 75 + j)];
    want[size_t(r)] = std::sqrt(s);
  }
  EXPECT_ALL_CLOSE(ood::row_norm(x.to(device())), Tensor::from_vector(want, {37}), kF32);
  EXPECT_EQ(ood::row_norm(x.to(device())).cpu().to_vector<float>()[5], 0.f);
  EXPECT_EQ(ood::row_norm(Tensor::zeros({0, 4}, DType::F32, device())).numel(), 0);
}

TEST_P(RowNormTest, BackwardMatchesCpu) {
  Tensor a = Tensor::randn({9, 40}, gen);
  std::vector<float> v = a.to_vector<float>();
  for (int j = 0; j < 40; ++j) v[size_t(3 * 40 + j)] = 0.f;  // zero row: gradient 0
  a = Tensor::from_vector(v, {9, 40});
  const Tensor w = Tensor::randn({9}, gen);
  auto run = [&](Device d) {
    Tensor x = a.to(d).clone().set_requires_grad(true);
    ops::sum(ops::mul(ood::row_norm(x), w.to(d))).backward();
    return x.grad();
  };
  const Tensor ref = run(Device::cpu());
  EXPECT_ALL_CLOSE(run(device()), ref, kF32);
  const std::vector<float> g = ref.to_vector<float>();
  for (int j = 0; j < 40; ++j) EXPECT_EQ(g[size_t(3 * 40 + j)], 0.f);
}

TEST(RowNormGrad, FiniteDifferences) {
  Generator gen(3);
  auto f = [](const std::vector<Tensor>& x) { return ood::row_norm(x[0]); };
  EXPECT_GRADCHECK(f, {oodkit::testing::randn_f64({4, 7}, gen)});
}

TEST(RowNormErrors, BadArguments) {
  EXPECT_THROW(ood::row_norm(Tensor::zeros({3})), Error);
  EXPECT_THROW(ood::row_norm(Tensor::zeros({3, 2}, DType::I64)), Error);
}

// ---------------------------------------------------------------- Mahalanobis

TEST(Mahalanobis, MatchesExplicitInverse) {
  Generator gen(21);
  const int64_t n = 300, d = 6, k = 3;
  const GaussianClasses data = gaussian_classes(n, d, k, gen);
  ood::Mahalanobis m;
  m.fit(data.z, data.labels, k);
  EXPECT_EQ(m.num_classes(), k);
  EXPECT_EQ(m.feature_dim(), d);
  EXPECT_EQ(m.rank(), d);

  Mat mu, cov;
  reference_stats(to_mat(data.z), data.labels.to_vector<int64_t>(), k, mu, cov);
  const Mat inv = cov.inverse();
  EXPECT_TRUE(oodkit::testing::all_close(m.means(), from_mat(mu), {1e-12, 1e-12}));
  EXPECT_TRUE(oodkit::testing::all_close(m.covariance(), from_mat(cov), {1e-12, 1e-12}));
  EXPECT_TRUE(oodkit::testing::all_close(m.precision(), from_mat(inv), {1e-10, 1e-9}));

  // Test points: fresh samples plus far-away ones.
  const GaussianClasses test = gaussian_classes(40, d, k, gen);
  const Tensor zt = ops::scale(test.z, 1.3);
  const Mat dist = reference_distances(to_mat(zt), mu, inv);
  EXPECT_TRUE(oodkit::testing::all_close(m.class_distances(zt), from_mat(dist), {1e-9, 1e-9}));
  EXPECT_TRUE(oodkit::testing::all_close(m.score(zt), row_min_neg(dist), {1e-9, 1e-9}));
  // Training points are closer (higher score) on average than far-away ones.
  EXPECT_GT(ops::mean(m.score(data.z)).item(), ops::mean(m.score(ops::scale(data.z, 4.0))).item());
}

TEST(Mahalanobis, SingularCovarianceUsesPseudoInverse) {
  // D > N: the tied covariance has rank N - K.
  Generator gen(22);
  const int64_t n = 8, d = 12, k = 2;
  const GaussianClasses data = gaussian_classes(n, d, k, gen);
  ood::Mahalanobis m;
  m.fit(data.z.to(DType::F32), data.labels, k);  // float32 features, statistics in double
  EXPECT_EQ(m.rank(), n - k);

  Mat mu, cov;
  reference_stats(to_mat(data.z.to(DType::F32)), data.labels.to_vector<int64_t>(), k, mu, cov);
  // Pseudo-inverse through an SVD, with a cutoff far from both the kept and dropped spectra.
  Eigen::JacobiSVD<Mat> svd(cov, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const Vec s = svd.singularValues();
  Vec sinv = Vec::Zero(s.size());
  for (int64_t i = 0; i < s.size(); ++i)
    if (s(i) > 1e-9 * s(0)) sinv(i) = 1.0 / s(i);
  const Mat pinv = svd.matrixV() * sinv.asDiagonal() * svd.matrixU().transpose();
  EXPECT_TRUE(oodkit::testing::all_close(m.precision(), from_mat(pinv), {1e-9, 1e-8}));

  const Tensor zt = Tensor::randn({10, d}, gen, DType::F64);
  const Mat dist = reference_distances(to_mat(zt), mu, pinv);
  EXPECT_TRUE(oodkit::testing::all_close(m.class_distances(zt), from_mat(dist), {1e-8, 1e-8}));
  EXPECT_TRUE(oodkit::testing::all_close(m.score(zt), row_min_neg(dist), {1e-8, 1e-8}));
}

// A full-rank covariance whose smallest eigenvalue lies below rcond * max: pinvh drops it (the
// Cholesky inverse, used when every eigenvalue is kept, must not be taken), against an SVD
// pseudo-inverse; with a smaller rcond the same covariance keeps all D and is the inverse.
TEST(Mahalanobis, EigenvaluesBelowRcondAreDroppedFromAFullRankCovariance) {
  Generator gen(24);
  const int64_t n = 400, d = 7, k = 3;
  GaussianClasses data = gaussian_classes(n, d, k, gen);
  double* z = data.z.data<double>();
  for (int64_t i = 0; i < n; ++i) z[i * d + 2] *= 1e-3;  // one direction with ~1e-6 of the variance
  Mat mu, cov;
  reference_stats(to_mat(data.z), data.labels.to_vector<int64_t>(), k, mu, cov);
  Eigen::JacobiSVD<Mat> svd(cov, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const Vec s = svd.singularValues();
  ASSERT_LT(s(d - 1), 1e-4 * s(0));
  ASSERT_GT(s(d - 2), 1e-2 * s(0));
  Vec sinv = Vec::Zero(d);
  for (int64_t i = 0; i < d - 1; ++i) sinv(i) = 1.0 / s(i);
  const Mat pinv = svd.matrixV() * sinv.asDiagonal() * svd.matrixU().transpose();

  ood::Mahalanobis m;
  m.fit(data.z, data.labels, k, 1e-4);
  EXPECT_EQ(m.rank(), d - 1);
  EXPECT_TRUE(oodkit::testing::all_close(m.precision(), from_mat(pinv), {1e-9, 1e-8}));

  // Every eigenvalue kept, by the norm bound (the default rcond) or only by the eigenvalues (an
  // rcond just below the smallest ratio, where ||sigma||_inf ||inv||_inf >= cond fails the bound).
  const double ratio = s(d - 1) / s(0);
  for (const double rcond : {-1.0, 0.5 * ratio}) {
    ood::Mahalanobis full;
    full.fit(data.z, data.labels, k, rcond);
    EXPECT_EQ(full.rank(), d) << rcond;
    EXPECT_TRUE(oodkit::testing::all_close(full.precision(), from_mat(cov.inverse()), {1e-9, 1e-7})) << rcond;
  }
}

// Float32 features are read in place and converted block by block (ood/fit_util.h): against the
// double reference on the same float32 values, over several blocks (1,100 rows: 5 blocks of
// <= 256, the last partial, all 4 lanes and one twice), features far from the origin (+50).
TEST(Mahalanobis, Float32FitMatchesDoubleReference) {
  Generator gen(23);
  const int64_t n = 1100, d = 24, k = 5;
  const GaussianClasses data = gaussian_classes(n, d, k, gen);
  const Tensor z = ops::add_scalar(data.z, 50.0).to(DType::F32);
  ood::Mahalanobis m;
  m.fit(z, data.labels, k);
  Mat mu, cov;
  reference_stats(to_mat(z), data.labels.to_vector<int64_t>(), k, mu, cov);
  EXPECT_TRUE(oodkit::testing::all_close(m.means(), from_mat(mu), {1e-12, 1e-12}));
  EXPECT_TRUE(oodkit::testing::all_close(m.covariance(), from_mat(cov), {1e-12, 1e-12}));
  const Mat inv = cov.inverse();
  const Tensor zt = ops::add_scalar(ops::scale(gaussian_classes(40, d, k, gen).z, 1.3), 50.0);
  const Mat dist = reference_distances(to_mat(zt), mu, inv);
  EXPECT_TRUE(oodkit::testing::all_close(m.score(zt), row_min_neg(dist), {1e-9, 1e-9}));
}

// The lanes make the fit independent of the number of OpenMP threads (bitwise).
TEST(Mahalanobis, FitDoesNotDependOnTheThreadCount) {
  Generator gen(24);
  const GaussianClasses data = gaussian_classes(1100, 12, 3, gen);
  const Tensor z = data.z.to(DType::F32);
  const int threads = omp_get_max_threads();
  std::vector<std::vector<double>> cov;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    ood::Mahalanobis m;
    m.fit(z, data.labels, 3);
    cov.push_back(m.covariance().to_vector<double>());
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(cov[0], cov[1]);
  EXPECT_EQ(cov[0], cov[2]);
}

class MahalanobisDeviceTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(MahalanobisDeviceTest);

TEST_P(MahalanobisDeviceTest, Float32ScoringMatchesDouble) {
  const int64_t n = 500, d = 64, k = 10;
  const GaussianClasses data = gaussian_classes(n, d, k, gen);
  ood::Mahalanobis m;
  m.fit(data.z, data.labels, k);
  {  // Fitting reads device tensors: the same double statistics as from the host copy.
    ood::Mahalanobis on_dev, on_cpu;
    on_dev.fit(data.z.to(DType::F32).to(device()), data.labels.to(device()), k);
    on_cpu.fit(data.z.to(DType::F32), data.labels, k);
    EXPECT_EQ(on_dev.precision().to_vector<double>(), on_cpu.precision().to_vector<double>());
  }
  const Tensor zt = gaussian_classes(77, d, k, gen).z.to(DType::F32);  // float32 values
  const Tensor ref_d = m.class_distances(zt.to(DType::F64));           // double, same values
  const Tensor ref_s = m.score(zt.to(DType::F64));
  // Float32 GEMMs: the error scales with the size of the terms (y^T P y ~ d_nc + cross terms).
  const double scale = std::max(1.0, ops::mean(ref_d).item());
  const Tol tol{1e-5 * scale * std::sqrt(double(d)), 1e-4};
  const Tensor got_d = m.class_distances(zt.to(device()));
  EXPECT_TRUE(got_d.device() == device());
  EXPECT_ALL_CLOSE(got_d, ref_d, tol);
  EXPECT_ALL_CLOSE(m.score(zt.to(device())), ref_s, tol);
}

TEST_P(MahalanobisDeviceTest, GradientMatchesCpu) {
  const int64_t d = 16, k = 4;
  const GaussianClasses data = gaussian_classes(200, d, k, gen);
  ood::Mahalanobis m;
  m.fit(data.z, data.labels, k);
  const Tensor zt = Tensor::randn({12, d}, gen);
  auto run = [&](Device dev) {
    Tensor x = zt.to(dev).clone().set_requires_grad(true);
    ops::sum(m.score(x)).backward();
    return x.grad();
  };
  const Tensor ref = run(Device::cpu());
  // d(-min_c d_c)/dz = -2 P (z - mu_c*) for the minimising class c*.
  const Mat dist = to_mat(m.class_distances(zt.to(DType::F64)));
  const Mat mu = to_mat(m.means()), prec = to_mat(m.precision()), z = to_mat(zt);
  Mat want(zt.size(0), d);
  for (int64_t i = 0; i < zt.size(0); ++i) {
    Eigen::Index c;
    dist.row(i).minCoeff(&c);
    want.row(i) = (-2.0 * prec * (z.row(i) - mu.row(c)).transpose()).transpose();
  }
  const double scale = std::max(1.0, want.cwiseAbs().maxCoeff());
  EXPECT_ALL_CLOSE(ref, from_mat(want), (Tol{1e-4 * scale, 1e-3}));
  EXPECT_ALL_CLOSE(run(device()), ref, (Tol{1e-4 * scale, 1e-3}));
}

TEST(MahalanobisGrad, FiniteDifferences) {
  Generator gen(23);
  const GaussianClasses data = gaussian_classes(60, 5, 3, gen);
  ood::Mahalanobis m;
  m.fit(data.z, data.labels, 3);
  auto f = [&](const std::vector<Tensor>& x) { return m.score(x[0]); };
  auto g = [&](const std::vector<Tensor>& x) { return m.class_distances(x[0]); };
  const Tensor z = oodkit::testing::randn_f64({6, 5}, gen);
  EXPECT_GRADCHECK(f, {z});
  EXPECT_GRADCHECK(g, {z});
}

TEST(MahalanobisErrors, BadArguments) {
  Generator gen(24);
  const GaussianClasses data = gaussian_classes(30, 4, 3, gen);
  ood::Mahalanobis m;
  EXPECT_THROW(m.score(Tensor::zeros({2, 4})), Error);  // not fitted
  EXPECT_THROW(m.fit(data.z, data.labels, 2), Error);   // label 2 outside [0, 2)
  EXPECT_THROW(m.fit(data.z, data.labels, 4), Error);   // class 3 has no samples
  EXPECT_THROW(m.fit(data.z, data.labels.narrow(0, 29), 3), Error);
  EXPECT_THROW(m.fit(data.z, data.labels.to(DType::I32), 3), Error);
  EXPECT_THROW(m.fit(data.z, data.labels, 3, 1.5), Error);
  EXPECT_THROW(m.fit(Tensor::ones({30, 4}, DType::F64), data.labels, 3), Error);  // zero covariance
  m.fit(data.z, data.labels, 3);
  EXPECT_THROW(m.score(Tensor::zeros({2, 5})), Error);
  EXPECT_THROW(m.score(Tensor::zeros({2, 4}, DType::I64)), Error);
  EXPECT_EQ(m.score(Tensor::zeros({0, 4})).numel(), 0);
}

// ---------------------------------------------------------------- ViM

// Independent reference: pinv and principal directions through JacobiSVD.
struct VimReference {
  Vec u;
  Mat ns;  // [D, D - Dp]
  double alpha;
  Vec score(const Mat& z, const Mat& w, const Vec& b) const {
    Vec s(z.rows());
    for (int64_t i = 0; i < z.rows(); ++i) {
      const Eigen::RowVectorXd logits = z.row(i) * w.transpose() + b.transpose();
      const double r = ((z.row(i) - u.transpose()) * ns).norm();
      s(i) = log_sum_exp(logits) - alpha * r;
    }
    return s;
  }
};
VimReference vim_reference(const Mat& z, const Mat& w, const Vec& b, int64_t dp) {
  VimReference ref;
  Eigen::JacobiSVD<Mat> sw(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
  Vec sinv = sw.singularValues();
  for (int64_t i = 0; i < sinv.size(); ++i) sinv(i) = sinv(i) > 1e-12 * sw.singularValues()(0) ? 1.0 / sinv(i) : 0.0;
  const Mat pinv = sw.matrixV() * sinv.asDiagonal() * sw.matrixU().transpose();
  ref.u = -pinv * b;
  const Mat x = z.rowwise() - ref.u.transpose();
  // Right singular vectors of (z - u), by decreasing singular value, are the eigenvectors of
  // (z - u)^T (z - u) / N by decreasing eigenvalue.
  Eigen::JacobiSVD<Mat> sx(x, Eigen::ComputeFullV);
  ref.ns = sx.matrixV().rightCols(z.cols() - dp);
  double max_logit = 0, norm = 0;
  for (int64_t i = 0; i < z.rows(); ++i) {
    max_logit += (z.row(i) * w.transpose() + b.transpose()).maxCoeff();
    norm += (x.row(i) * ref.ns).norm();
  }
  ref.alpha = max_logit / norm;
  return ref;
}

TEST(Vim, MatchesIndependentDoubleComputation) {
  Generator gen(31);
  const int64_t n = 60, d = 10, k = 4, dp = 5;
  const Tensor z = Tensor::uniform({n, d}, 0.0, 2.0, gen, DType::F64);  // ReLU-like features
  const Tensor w = Tensor::randn({k, d}, gen, DType::F64), b = Tensor::randn({k}, gen, DType::F64);
  ood::Vim v;
  v.fit(z, w, b, dp);
  EXPECT_EQ(v.principal_dim(), dp);
  EXPECT_EQ(v.feature_dim(), d);
  const VimReference ref = vim_reference(to_mat(z), to_mat(w), to_mat(b), dp);
  EXPECT_TRUE(oodkit::testing::all_close(v.origin(), from_vec(ref.u), {1e-10, 1e-10}));
  EXPECT_NEAR(v.alpha(), ref.alpha, 1e-10 * std::fabs(ref.alpha));
  // Same residual subspace: the projectors agree.
  const Mat ns = to_mat(v.null_space());
  EXPECT_TRUE(oodkit::testing::all_close(from_mat(ns * ns.transpose()), from_mat(ref.ns * ref.ns.transpose()),
                                         {1e-9, 1e-9}));

  const Tensor zt = Tensor::uniform({25, d}, -1.0, 3.0, gen, DType::F64);
  const Tensor logits = ops::linear(zt, w, b);
  const Vec want = ref.score(to_mat(zt), to_mat(w), to_mat(b));
  EXPECT_TRUE(oodkit::testing::all_close(v.score(logits, zt), from_vec(want), {1e-9, 1e-9}));
  // Residual norm: ||(z - u) NS NS^T||.
  const Mat x = to_mat(zt).rowwise() - ref.u.transpose();
  Vec rn(x.rows());
  for (int64_t i = 0; i < x.rows(); ++i) rn(i) = (x.row(i) * ref.ns * ref.ns.transpose()).norm();
  EXPECT_TRUE(oodkit::testing::all_close(v.residual_norm(zt), from_vec(rn), {1e-9, 1e-9}));
  EXPECT_TRUE(oodkit::testing::all_close(v.virtual_logit(zt), from_vec(rn * ref.alpha), {1e-9, 1e-9}));
}

// Float32 features read in place (covariance in double over blocks, residual norms and maximum
// logits in float32 summed in double; ood/fit_util.h), against the independent double reference
// on the same float32 values: 1,100 rows (5 blocks, all lanes),
// features far from the origin with a clear gap between the principal and residual spectra (so
// the residual subspace is well defined: variances 4-16 vs 0.01-0.25).
TEST(Vim, Float32FitMatchesDoubleReference) {
  Generator gen(32);
  const int64_t n = 1100, d = 16, k = 4, dp = 8;
  const Mat q = Eigen::HouseholderQR<Mat>(to_mat(Tensor::randn({d, d}, gen, DType::F64))).householderQ();
  Vec sd(d);
  for (int64_t j = 0; j < d; ++j) sd(j) = j < dp ? 4.0 - 0.25 * double(j) : 0.5 - 0.05 * double(j - dp);
  const Mat e = to_mat(Tensor::randn({n, d}, gen, DType::F64));
  const Vec offset = q.leftCols(dp) * Vec::Constant(dp, 20.0);
  Mat zm = (e * sd.asDiagonal()) * q.transpose();
  zm.rowwise() += offset.transpose();
  const Tensor z = from_mat(zm).to(DType::F32);
  const Tensor w = Tensor::randn({k, d}, gen, DType::F64), b = Tensor::randn({k}, gen, DType::F64);
  ood::Vim v;
  v.fit(z, w, b, dp);
  const VimReference ref = vim_reference(to_mat(z), to_mat(w), to_mat(b), dp);
  EXPECT_TRUE(oodkit::testing::all_close(v.origin(), from_vec(ref.u), {1e-12, 1e-12}));
  // alpha: measured 7.7e-8 relative (the float32 residual norms of rows ~60 long whose residual
  // parts are ~0.5: float32 rounding of the projection).
  EXPECT_NEAR(v.alpha(), ref.alpha, 1e-6 * std::fabs(ref.alpha));
  const Mat ns = to_mat(v.null_space());
  EXPECT_TRUE(oodkit::testing::all_close(from_mat(ns * ns.transpose()), from_mat(ref.ns * ref.ns.transpose()),
                                         {1e-12, 1e-12}));
  const Tensor zt = z.to(DType::F64);  // scored in double: only the fit's error shows
  const Vec want = ref.score(to_mat(zt), to_mat(w), to_mat(b));
  // Scores are differences of two terms of size ~10 (LSE and alpha ||residual||): measured
  // 2.9e-6 at worst, i.e. 3e-7 of the terms.
  EXPECT_TRUE(oodkit::testing::all_close(v.score(ops::linear(zt, w, b), zt), from_vec(want), {1e-5, 1e-6}));
}

TEST(Vim, DefaultPrincipalDimAndErrors) {
  EXPECT_EQ(ood::Vim::default_principal_dim(512), 256);
  EXPECT_EQ(ood::Vim::default_principal_dim(64), 32);
  EXPECT_EQ(ood::Vim::default_principal_dim(768), 512);
  EXPECT_EQ(ood::Vim::default_principal_dim(2048), 1000);
  Generator gen(32);
  const Tensor z = Tensor::randn({30, 8}, gen), w = Tensor::randn({3, 8}, gen), b = Tensor::randn({3}, gen);
  ood::Vim v;
  EXPECT_THROW(v.fit(z, w, b, 8), Error);   // D_p == D
  EXPECT_THROW(v.fit(z, w, b, 9), Error);   // D_p > D
  EXPECT_THROW(v.fit(z, Tensor::randn({3, 7}, gen), b, 4), Error);
  EXPECT_THROW(v.fit(z, w, Tensor::randn({4}, gen), 4), Error);
  EXPECT_THROW(v.score(Tensor::zeros({2, 3}), Tensor::zeros({2, 8})), Error);  // not fitted
  v.fit(z, w, b);  // default D_p = 4
  EXPECT_EQ(v.principal_dim(), 4);
  EXPECT_THROW(v.score(Tensor::zeros({2, 3}), Tensor::zeros({2, 7})), Error);
  EXPECT_THROW(v.score(Tensor::zeros({2, 4}), Tensor::zeros({2, 8})), Error);
  EXPECT_THROW(v.score(Tensor::zeros({3, 3}), Tensor::zeros({2, 8})), Error);
  // An undefined bias means zeros: origin 0.
  v.fit(z, w, Tensor(), 4);
  EXPECT_TRUE(oodkit::testing::all_close(v.origin(), Tensor::zeros({8}, DType::F64), {1e-12, 0}));
}

// Both fits refuse non-finite training features (float32 read in place, float64 too) before any
// work, naming the argument; the bad value sits in the last element (a scan that stops early, or
// looks at a prefix, misses it) or in the middle.
TEST(FitErrors, NonFiniteFeaturesAreRefusedByMahalanobisAndVim) {
  Generator gen(33);
  const GaussianClasses data = gaussian_classes(300, 8, 3, gen);
  const Tensor w = Tensor::randn({3, 8}, gen), b = Tensor::randn({3}, gen);
  for (DType dt : {DType::F32, DType::F64})
    for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()})
      for (int64_t at : {int64_t(300 * 8 - 1), int64_t(1001)}) {
        Tensor z = data.z.to(dt).clone();
        if (dt == DType::F32) z.data<float>()[at] = float(bad);
        else z.data<double>()[at] = bad;
        const std::string what = std::string(dtype_name(dt)) + " value " + std::to_string(bad) + " at " +
                                 std::to_string(at);
        ood::Mahalanobis m;
        try {
          m.fit(z, data.labels, 3);
          ADD_FAILURE() << "Mahalanobis accepted a non-finite " << what;
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("'z' contains non-finite values"), std::string::npos) << e.what();
        }
        ood::Vim v;
        try {
          v.fit(z, w, b);
          ADD_FAILURE() << "Vim accepted a non-finite " << what;
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("'z_train' contains non-finite values"), std::string::npos)
              << e.what();
        }
      }
}

class VimDeviceTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(VimDeviceTest);

TEST_P(VimDeviceTest, Float32ScoringAndGradient) {
  const int64_t n = 400, d = 64, k = 10;
  const Tensor z = Tensor::uniform({n, d}, 0.0, 1.0, gen);
  const Tensor w = Tensor::randn({k, d}, gen), b = Tensor::randn({k}, gen);
  ood::Vim v;
  v.fit(z, w, b);  // D_p = 32
  ood::Vim on_dev;
  on_dev.fit(z.to(device()), w.to(device()), b.to(device()));
  EXPECT_EQ(on_dev.alpha(), v.alpha());
  const Tensor zt = Tensor::uniform({50, d}, 0.0, 1.5, gen);
  const Tensor logits = ops::linear(zt, w, b);
  const Tensor ref = v.score(logits.to(DType::F64), zt.to(DType::F64));
  EXPECT_ALL_CLOSE(v.score(logits.to(device()), zt.to(device())), ref, f32_reduction(d));

  auto grads = [&](Device dev) {
    Tensor l = logits.to(dev).clone().set_requires_grad(true);
    Tensor x = zt.to(dev).clone().set_requires_grad(true);
    ops::sum(v.score(l, x)).backward();
    return std::make_pair(l.grad(), x.grad());
  };
  const auto cpu = grads(Device::cpu());
  const auto got = grads(device());
  EXPECT_ALL_CLOSE(got.first, cpu.first, kF32);
  EXPECT_ALL_CLOSE(got.second, cpu.second, f32_reduction(d));
}

TEST(VimGrad, FiniteDifferences) {
  Generator gen(33);
  const Tensor z = Tensor::uniform({40, 6}, 0.0, 1.0, gen, DType::F64);
  const Tensor w = Tensor::randn({3, 6}, gen, DType::F64), b = Tensor::randn({3}, gen, DType::F64);
  ood::Vim v;
  v.fit(z, w, b, 3);
  auto f = [&](const std::vector<Tensor>& x) { return v.score(x[0], x[1]); };
  EXPECT_GRADCHECK(f, {oodkit::testing::randn_f64({5, 3}, gen), oodkit::testing::randn_f64({5, 6}, gen)});
}

// ---------------------------------------------------------------- ReAct and DICE

class ReactDiceTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ReactDiceTest);

TEST_P(ReactDiceTest, ReactMatchesLoops) {
  const int64_t n = 23, d = 40, k = 7;
  const Tensor held_out = relu_features(gen, 300, d);
  ood::ReAct r;
  r.fit(held_out.to(device()), 90);  // fitting reads device tensors too
  EXPECT_EQ(r.threshold(), ood::percentile(held_out, 90));
  EXPECT_EQ(r.percentile(), 90.0);
  // Test features of both signs: only the upper side is clipped.
  const Tensor z = Tensor::randn({n, d}, gen), w = Tensor::randn({k, d}, gen), b = Tensor::randn({k}, gen);
  const std::vector<float> zv = z.to_vector<float>(), wv = w.to_vector<float>(), bv = b.to_vector<float>();
  const double c = r.threshold();
  std::vector<double> logits(size_t(n * k)), energy(static_cast<size_t>(n)), clipped(size_t(n * d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) clipped[size_t(i * d + j)] = std::min(double(zv[size_t(i * d + j)]), double(float(c)));
    double m = -1e300;
    for (int64_t q = 0; q < k; ++q) {
      double s = bv[size_t(q)];
      for (int64_t j = 0; j < d; ++j) s += double(wv[size_t(q * d + j)]) * clipped[size_t(i * d + j)];
      logits[size_t(i * k + q)] = s;
      m = std::max(m, s);
    }
    double e = 0;
    for (int64_t q = 0; q < k; ++q) e += std::exp(logits[size_t(i * k + q)] - m);
    energy[size_t(i)] = m + std::log(e);
  }
  const Tensor zd = z.to(device()), wd = w.to(device()), bd = b.to(device());
  EXPECT_ALL_CLOSE(r.clip(zd), Tensor::from_vector(clipped, {n, d}), kF32);
  EXPECT_ALL_CLOSE(r.logits(zd, wd, bd), Tensor::from_vector(logits, {n, k}), f32_reduction(d));
  EXPECT_ALL_CLOSE(r.score(zd, wd, bd), Tensor::from_vector(energy, {n}), f32_reduction(d));
  EXPECT_ALL_CLOSE(ood::react_logits(zd, wd, bd, c), Tensor::from_vector(logits, {n, k}), f32_reduction(d));
}

TEST_P(ReactDiceTest, DiceMatchesLoops) {
  const int64_t n = 120, d = 30, k = 6;
  const Tensor ztrain = relu_features(gen, n, d);
  const Tensor w = Tensor::randn({k, d}, gen), b = Tensor::randn({k}, gen);
  ood::Dice dice;
  dice.fit(ztrain, w, b);  // sparsity 0.9
  const std::vector<float> zv = ztrain.to_vector<float>(), wv = w.to_vector<float>(), bv = b.to_vector<float>();
  // Plain loops: mean, contributions, the 90% quantile by sorting, strict mask.
  std::vector<double> mean(size_t(d), 0.0), contrib(size_t(k * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[size_t(j)] += zv[size_t(i * d + j)];
  for (auto& m : mean) m /= double(n);
  for (int64_t q = 0; q < k; ++q)
    for (int64_t j = 0; j < d; ++j) contrib[size_t(q * d + j)] = mean[size_t(j)] * wv[size_t(q * d + j)];
  std::vector<double> sorted = contrib;
  std::sort(sorted.begin(), sorted.end());
  const double h = double(k * d - 1) * 0.9;
  const size_t lo = size_t(std::floor(h));
  const double g = h - std::floor(h);
  const double t = g >= 0.5 ? sorted[lo + 1] - (sorted[lo + 1] - sorted[lo]) * (1 - g)
                            : sorted[lo] + (sorted[lo + 1] - sorted[lo]) * g;
  EXPECT_NEAR(dice.contribution_threshold(), t, 1e-12 * std::fabs(t));
  int64_t kept = 0;
  std::vector<double> masked(size_t(k * d));
  std::vector<uint8_t> mask(size_t(k * d));
  for (size_t i = 0; i < contrib.size(); ++i) {
    mask[i] = contrib[i] > t;
    masked[i] = mask[i] ? double(wv[i]) : 0.0;
    kept += mask[i];
  }
  EXPECT_EQ(kept, k * d - 1 - int64_t(lo));  // no ties in random data
  EXPECT_EQ(dice.kept(), kept);
  EXPECT_EQ(dice.mask().to_vector<uint8_t>(), mask);
  EXPECT_EQ(dice.masked_weight().to_vector<double>(), masked);

  const Tensor z = relu_features(gen, 17, d);
  const std::vector<float> xv = z.to_vector<float>();
  std::vector<double> logits(size_t(17 * k)), energy(17);
  for (int64_t i = 0; i < 17; ++i) {
    double m = -1e300;
    for (int64_t q = 0; q < k; ++q) {
      double s = bv[size_t(q)];
      for (int64_t j = 0; j < d; ++j) s += masked[size_t(q * d + j)] * xv[size_t(i * d + j)];
      logits[size_t(i * k + q)] = s;
      m = std::max(m, s);
    }
    double e = 0;
    for (int64_t q = 0; q < k; ++q) e += std::exp(logits[size_t(i * k + q)] - m);
    energy[size_t(i)] = m + std::log(e);
  }
  EXPECT_ALL_CLOSE(dice.logits(z.to(device())), Tensor::from_vector(logits, {17, k}), f32_reduction(d));
  EXPECT_ALL_CLOSE(dice.score(z.to(device())), Tensor::from_vector(energy, {17}), f32_reduction(d));
}

TEST(Dice, HandWorkedMaskAndTieRule) {
  // z_train rows all ones: mean_z = 1, so the contributions are the weights themselves.
  const Tensor ones = Tensor::ones({3, 5}, DType::F64);
  std::vector<double> w(10);
  for (int i = 0; i < 10; ++i) w[size_t(i)] = double(i + 1);  // contributions 1..10
  const Tensor wt = Tensor::from_vector(w, {2, 5});
  ood::Dice dice;
  dice.fit(ones, wt, Tensor(), 0.9);  // t = 9.1: keeps only 10
  EXPECT_DOUBLE_EQ(dice.contribution_threshold(), 9.1);
  EXPECT_EQ(dice.kept(), 1);
  EXPECT_EQ(dice.mask().to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  dice.fit(ones, wt, Tensor(), 0.5);  // t = 5.5: keeps 6..10
  EXPECT_EQ(dice.kept(), 5);
  // Ties at the threshold are all dropped: contributions {1 x8, 2 x2}, t = 2 -> nothing kept.
  const Tensor tied = Tensor::from_vector(std::vector<double>{1, 1, 1, 1, 1, 1, 1, 1, 2, 2}, {2, 5});
  dice.fit(ones, tied, Tensor(), 0.9);
  EXPECT_EQ(dice.contribution_threshold(), 2.0);
  EXPECT_EQ(dice.kept(), 0);
  // No bias: logits = (W * M) z.
  dice.fit(ones, wt, Tensor(), 0.5);
  const Tensor z = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5}, {1, 5});
  EXPECT_EQ(dice.logits(z).to_vector<double>(), (std::vector<double>{0.0, 6 * 1 + 7 * 2 + 8 * 3 + 9 * 4 + 10 * 5}));
}

TEST(ReactDiceErrors, BadArguments) {
  Generator gen(41);
  const Tensor z = Tensor::randn({10, 4}, gen), w = Tensor::randn({3, 4}, gen);
  ood::ReAct r;
  EXPECT_THROW(r.fit(z, 101), Error);
  EXPECT_THROW(r.score(z, w, Tensor()), Error);  // not fitted
  EXPECT_THROW(ood::ReAct::with_threshold(std::nan("")), Error);
  r.fit(z, 90);
  EXPECT_THROW(r.logits(z, Tensor::randn({3, 5}, gen), Tensor()), Error);
  ood::Dice dice;
  EXPECT_THROW(dice.fit(z, w, Tensor(), 1.0), Error);
  EXPECT_THROW(dice.fit(z, w, Tensor(), -0.1), Error);
  EXPECT_THROW(dice.fit(z, Tensor::randn({3, 5}, gen), Tensor(), 0.9), Error);
  EXPECT_THROW(dice.fit(z, w, Tensor::randn({2}, gen), 0.9), Error);
  EXPECT_THROW(dice.logits(z), Error);  // not fitted
  dice.fit(z, w, Tensor(), 0.9);
  EXPECT_THROW(dice.logits(Tensor::randn({2, 5}, gen)), Error);
}

// ---------------------------------------------------------------- saved state

TEST(FittedState, RoundTripsGiveIdenticalScores) {
  Generator gen(51);
  const int64_t d = 12, k = 3;
  const GaussianClasses data = gaussian_classes(90, d, k, gen);
  const Tensor ztrain = data.z.to(DType::F32);
  const Tensor w = Tensor::randn({k, d}, gen), b = Tensor::randn({k}, gen);
  const Tensor zt = Tensor::randn({15, d}, gen);
  const Tensor logits = ops::linear(zt, w, b);

  ood::Mahalanobis m;
  m.fit(ztrain, data.labels, k);
  StatePath pm("maha");
  m.save(pm.path);
  const ood::Mahalanobis m2 = ood::Mahalanobis::load(pm.path);
  EXPECT_EQ(m2.score(zt).to_vector<float>(), m.score(zt).to_vector<float>());
  EXPECT_EQ(m2.rank(), m.rank());
  EXPECT_EQ(m2.rcond(), m.rcond());
  EXPECT_EQ(m2.class_counts().to_vector<int64_t>(), m.class_counts().to_vector<int64_t>());
  EXPECT_EQ(m2.covariance().to_vector<double>(), m.covariance().to_vector<double>());

  ood::Vim v;
  v.fit(ztrain, w, b, 6);
  StatePath pv("vim");
  v.save(pv.path);
  const ood::Vim v2 = ood::Vim::load(pv.path);
  EXPECT_EQ(v2.alpha(), v.alpha());
  EXPECT_EQ(v2.principal_dim(), 6);
  EXPECT_EQ(v2.score(logits, zt).to_vector<float>(), v.score(logits, zt).to_vector<float>());

  ood::ReAct r;
  r.fit(ztrain, 85.5);
  StatePath pr("react");
  r.save(pr.path);
  const ood::ReAct r2 = ood::ReAct::load(pr.path);
  EXPECT_EQ(r2.threshold(), r.threshold());
  EXPECT_EQ(r2.percentile(), 85.5);
  EXPECT_EQ(r2.score(zt, w, b).to_vector<float>(), r.score(zt, w, b).to_vector<float>());
  const ood::ReAct r3 = ood::ReAct::with_threshold(0.1 + 0.2);  // a value that needs 17 digits
  r3.save(pr.path);
  EXPECT_EQ(ood::ReAct::load(pr.path).threshold(), 0.1 + 0.2);
  EXPECT_TRUE(std::isnan(ood::ReAct::load(pr.path).percentile()));

  for (const bool with_bias : {true, false}) {
    ood::Dice dice;
    dice.fit(ztrain, w, with_bias ? b : Tensor(), 0.7);
    StatePath pd("dice");
    dice.save(pd.path);
    const ood::Dice d2 = ood::Dice::load(pd.path);
    EXPECT_EQ(d2.kept(), dice.kept());
    EXPECT_EQ(d2.bias().defined(), with_bias);
    EXPECT_EQ(d2.score(zt).to_vector<float>(), dice.score(zt).to_vector<float>());
  }

  // The pair on disk: a .json naming its .safetensors, and both files present.
  const nlohmann::json j = read_json(pv.json());
  EXPECT_EQ(j["format_version"], ood::kStateFormatVersion);
  EXPECT_EQ(j["kind"], "vim");
  EXPECT_EQ(j["params"]["principal_dim"], 6);
  EXPECT_EQ(list_safetensors(pv.tensors()).size(), 3u);
}

TEST(FittedState, CorruptOrMissingFilesAreErrorsNamingTheFile) {
  Generator gen(52);
  const Tensor z = Tensor::uniform({40, 6}, 0.0, 1.0, gen);
  const Tensor w = Tensor::randn({3, 6}, gen), b = Tensor::randn({3}, gen);
  ood::Vim v;
  v.fit(z, w, b, 3);
  StatePath p("corrupt");
  auto load = [&] { ood::Vim::load(p.path); };

  // Missing files.
  expect_error_mentioning(load, {p.json()});
  v.save(p.path);
  std::remove(p.tensors().c_str());
  expect_error_mentioning(load, {p.tensors()});

  // Truncated tensors file.
  v.save(p.path);
  {
    std::ifstream in(p.tensors(), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string bytes = buf.str();
    write_text(p.tensors(), bytes.substr(0, bytes.size() - 9));
  }
  expect_error_mentioning(load, {p.tensors()});

  // JSON: garbage, wrong version, wrong kind, missing key, wrong type, shape mismatch.
  v.save(p.path);
  const nlohmann::json good = read_json(p.json());
  write_text(p.json(), "{ not json");
  expect_error_mentioning(load, {p.json()});
  nlohmann::json j = good;
  j["format_version"] = ood::kStateFormatVersion + 1;
  write_text(p.json(), j.dump());
  expect_error_mentioning(load, {p.json(), "format_version"});
  write_text(p.json(), good.dump());
  EXPECT_NO_THROW(load());
  expect_error_mentioning([&] { ood::Mahalanobis::load(p.path); }, {p.json(), "vim"});
  j = good;
  j["params"].erase("alpha");
  write_text(p.json(), j.dump());
  expect_error_mentioning(load, {p.json(), "alpha"});
  j = good;
  j["params"]["alpha"] = "large";
  write_text(p.json(), j.dump());
  expect_error_mentioning(load, {p.json(), "alpha"});
  j = good;
  j["params"]["principal_dim"] = 2;  // the null space on disk is [6, 3], now expected [6, 4]
  write_text(p.json(), j.dump());
  expect_error_mentioning(load, {p.tensors(), "null_space", "[6, 4]"});
  j = good;
  j["params"]["principal_dim"] = 6;  // D_p >= D
  write_text(p.json(), j.dump());
  expect_error_mentioning(load, {p.json(), "principal_dim"});

  // A tensor missing from the .safetensors, and an extra one (rewritten with the same metadata).
  std::map<std::string, std::string> meta;
  NamedTensors tensors = load_safetensors(p.tensors(), &meta);
  write_text(p.json(), good.dump());
  NamedTensors fewer(tensors.begin(), tensors.end() - 1);
  save_safetensors(p.tensors(), fewer, meta);
  expect_error_mentioning(load, {p.tensors(), "missing tensor"});
  NamedTensors more = tensors;
  more.emplace_back("stray", Tensor::zeros({2}));
  save_safetensors(p.tensors(), more, meta);
  expect_error_mentioning(load, {p.tensors(), "stray"});

  // Files from two different saves.
  v.save(p.path);
  StatePath other("other");
  v.save(other.path);
  std::rename(other.tensors().c_str(), p.tensors().c_str());
  expect_error_mentioning(load, {p.tensors(), p.json()});
}

}  // namespace
