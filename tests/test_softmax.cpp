#include <cmath>
#include <limits>
#include <string>

#include "framework/ops/elementwise.h"
#include "framework/ops/softmax.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::randn_f64;
using oodkit::testing::Tol;

namespace {

class SoftmaxTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(SoftmaxTest);

// Naive double references: softmax, log_softmax [n, k] and logsumexp [n] of x / t.
struct Ref {
  Tensor softmax, log_softmax, logsumexp;
};
Ref reference(const Tensor& x, double t) {
  const std::vector<double> v = x.to(DType::F64).cpu().to_vector<double>();
  const int64_t n = x.size(0), k = x.size(1);
  std::vector<double> sm(v.size()), lsm(v.size()), lse(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    double m = -INFINITY;
    for (int64_t j = 0; j < k; ++j) m = std::max(m, v[size_t(r * k + j)] / t);
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += std::exp(v[size_t(r * k + j)] / t - m);
    lse[size_t(r)] = t * (m + std::log(s));
    for (int64_t j = 0; j < k; ++j) {
      const double u = v[size_t(r * k + j)] / t - m;
      sm[size_t(r * k + j)] = std::exp(u) / s;
      lsm[size_t(r * k + j)] = u - std::log(s);
    }
  }
  return {Tensor::from_vector(sm, {n, k}), Tensor::from_vector(lsm, {n, k}), Tensor::from_vector(lse, {n})};
}

bool all_finite(const Tensor& t) {
  for (double v : t.to(DType::F64).cpu().to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

TEST_P(SoftmaxTest, ForwardMatchesNaiveReference) {
  const Shape shapes[] = {{7, 13}, {3, 1}, {5, 100}, {65, 3}, {2, 1000}};
  for (const Shape& sh : shapes)
    for (double t : {1.0, 0.5, 2.5, 1000.0}) {
      Tensor x = Tensor::randn(sh, gen);
      x = ops::scale(x, 3.0);
      const Ref ref = reference(x, t);
      const Tensor dx = x.to(device());
      const int64_t k = sh[1];
      EXPECT_TRUE(oodkit::testing::all_close(ops::softmax(dx, t), ref.softmax, f32_reduction(k)))
          << shape_str(sh) << " T=" << t;
      EXPECT_TRUE(oodkit::testing::all_close(ops::log_softmax(dx, t), ref.log_softmax, f32_reduction(k)))
          << shape_str(sh) << " T=" << t;
      EXPECT_TRUE(oodkit::testing::all_close(ops::logsumexp(dx, t), ref.logsumexp, f32_reduction(k)))
          << shape_str(sh) << " T=" << t;
    }
}

TEST_P(SoftmaxTest, HandWorkedExample) {
  // Row [0, ln 2, ln 3] at T = 1: exp = [1, 2, 3], sum 6.
  Tensor x = Tensor::from_vector<float>({0.f, float(std::log(2.0)), float(std::log(3.0)), 1.f, 1.f, 1.f}, {2, 3});
  const Tensor dx = x.to(device());
  EXPECT_ALL_CLOSE(ops::softmax(dx), Tensor::from_vector<double>({1. / 6, 2. / 6, 3. / 6, 1. / 3, 1. / 3, 1. / 3}, {2, 3}),
                   kF32);
  EXPECT_ALL_CLOSE(ops::logsumexp(dx), Tensor::from_vector<double>({std::log(6.0), 1.0 + std::log(3.0)}, {2}), kF32);
  // T = 2 on row [0, 2 ln 2]: softmax(x / 2) = [1/3, 2/3]; logsumexp = 2 ln 3.
  Tensor y = Tensor::from_vector<float>({0.f, float(2 * std::log(2.0))}, {1, 2}).to(device());
  EXPECT_ALL_CLOSE(ops::softmax(y, 2.0), Tensor::from_vector<double>({1. / 3, 2. / 3}, {1, 2}), kF32);
  EXPECT_ALL_CLOSE(ops::log_softmax(y, 2.0), Tensor::from_vector<double>({std::log(1. / 3), std::log(2. / 3)}, {1, 2}),
                   kF32);
  EXPECT_ALL_CLOSE(ops::logsumexp(y, 2.0), Tensor::from_vector<double>({2 * std::log(3.0)}, {1}), kF32);
}

TEST_P(SoftmaxTest, LargeLogitsDoNotOverflow) {
  // exp(1e4) overflows any float type: only a max-subtracting implementation gets these right.
  Tensor x = Tensor::from_vector<float>({1e4f, 1e4f - 1.f, -1e4f, -1e4f, -1e4f, -1e4f + 2.f}, {2, 3}).to(device());
  const double e = std::exp(-1.0), e2 = std::exp(-2.0);
  EXPECT_ALL_CLOSE(ops::softmax(x),
                   Tensor::from_vector<double>({1 / (1 + e), e / (1 + e), 0.0, e2 / (2 * e2 + 1), e2 / (2 * e2 + 1),
                                                1 / (2 * e2 + 1)},
                                               {2, 3}),
                   kF32);
  EXPECT_ALL_CLOSE(ops::logsumexp(x),
                   Tensor::from_vector<double>({1e4 + std::log(1 + e), -1e4 + 2 + std::log(1 + 2 * e2)}, {2}), kF32);
  Tensor lsm = ops::log_softmax(x);
  EXPECT_TRUE(all_finite(lsm));
  EXPECT_NEAR(lsm.cpu().to_vector<float>()[2], -2e4 - std::log(1 + e), 1e-2);  // float spacing at 2e4 is 2e-3
  // Random large logits against the reference; gradients stay finite.
  Tensor big = ops::scale(Tensor::randn({9, 17}, gen), 1e4);
  const Ref ref = reference(big, 1.0);
  Tensor xb = big.to(device()).clone().set_requires_grad(true);
  EXPECT_ALL_CLOSE(ops::softmax(xb), ref.softmax, f32_reduction(17));
  // log_softmax is ~1e4 here and the input carries a float rounding error of ~1e-3.
  EXPECT_ALL_CLOSE(ops::log_softmax(xb), ref.log_softmax, (Tol{1e-2, 1e-4}));
  EXPECT_ALL_CLOSE(ops::logsumexp(xb), ref.logsumexp, f32_reduction(17));
  ops::sum(ops::add(ops::sum(ops::mul(ops::softmax(xb), ops::softmax(xb))).reshape({1}),
                    ops::sum(ops::logsumexp(xb)).reshape({1})))
      .backward();
  EXPECT_TRUE(all_finite(xb.grad()));
}

// Hand-worked rows with -inf and NaN (PyTorch's conventions): the affected row only.
TEST_P(SoftmaxTest, NonFiniteRowsFollowTheContract) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // Row 0: [0, -inf, ln 3] -> softmax [1/4, 0, 3/4], log_softmax [-ln 4, -inf, ln 3 - ln 4], lse ln 4.
  // Row 1: all -inf -> softmax NaN, log_softmax NaN, lse -inf.
  // Row 2: [1, NaN, 2] -> NaN everywhere.  Row 3: [NaN, -inf, -inf] -> NaN everywhere.
  // Row 4: [1, 1, 1] -> unaffected: softmax 1/3, lse 1 + ln 3.
  const float l3 = float(std::log(3.0));
  Tensor x = Tensor::from_vector<float>({0, -inf, l3, -inf, -inf, -inf, 1, nan, 2, nan, -inf, -inf, 1, 1, 1}, {5, 3})
                 .to(device());
  const std::vector<float> sm = ops::softmax(x).cpu().to_vector<float>();
  const std::vector<float> lsm = ops::log_softmax(x).cpu().to_vector<float>();
  const std::vector<float> lse = ops::logsumexp(x).cpu().to_vector<float>();
  EXPECT_NEAR(sm[0], 0.25, 1e-6);
  EXPECT_EQ(sm[1], 0.f);
  EXPECT_NEAR(sm[2], 0.75, 1e-6);
  EXPECT_NEAR(lsm[0], -std::log(4.0), 1e-6);
  EXPECT_EQ(lsm[1], -inf);
  EXPECT_NEAR(lsm[2], std::log(0.75), 1e-6);
  EXPECT_NEAR(lse[0], std::log(4.0), 1e-6);
  for (int j = 3; j < 12; ++j) {
    EXPECT_TRUE(std::isnan(sm[size_t(j)])) << "softmax element " << j;
    EXPECT_TRUE(std::isnan(lsm[size_t(j)])) << "log_softmax element " << j;
  }
  EXPECT_EQ(lse[1], -inf);
  EXPECT_TRUE(std::isnan(lse[2]));
  EXPECT_TRUE(std::isnan(lse[3]));
  for (int j = 12; j < 15; ++j) EXPECT_NEAR(sm[size_t(j)], 1.0 / 3, 1e-6);
  EXPECT_NEAR(lse[4], 1 + std::log(3.0), 1e-6);
  // The same at T = 2 for the -inf rows: softmax([0, -inf, 2 ln 3] / 2) = [1/4, 0, 3/4].
  Tensor y = Tensor::from_vector<float>({0, -inf, 2 * l3, -inf, -inf, -inf}, {2, 3}).to(device());
  const std::vector<float> sm2 = ops::softmax(y, 2.0).cpu().to_vector<float>();
  EXPECT_NEAR(sm2[2], 0.75, 1e-6);
  EXPECT_EQ(sm2[1], 0.f);
  EXPECT_EQ(ops::logsumexp(y, 2.0).cpu().to_vector<float>()[1], -inf);
}

TEST_P(SoftmaxTest, HighTemperatureFlattens) {
  // T = 1000 on logits of size ~3: nearly uniform, logsumexp ~ T ln K + mean(x).
  Tensor x = ops::scale(Tensor::randn({4, 10}, gen), 3.0);
  const Ref ref = reference(x, 1000.0);
  Tensor p = ops::softmax(x.to(device()), 1000.0);
  EXPECT_ALL_CLOSE(p, ref.softmax, f32_reduction(10));
  for (float v : p.cpu().to_vector<float>()) EXPECT_NEAR(v, 0.1, 0.002);
  EXPECT_ALL_CLOSE(ops::logsumexp(x.to(device()), 1000.0), ref.logsumexp, f32_reduction(10));
}

TEST(SoftmaxGrad, FiniteDifferences) {
  Generator gen(21);
  for (double t : {1.0, 0.7, 3.0}) {
    auto sm = [t](const std::vector<Tensor>& x) { return ops::softmax(x[0], t); };
    auto lsm = [t](const std::vector<Tensor>& x) { return ops::log_softmax(x[0], t); };
    auto lse = [t](const std::vector<Tensor>& x) { return ops::logsumexp(x[0], t); };
    EXPECT_GRADCHECK(sm, {randn_f64({3, 5}, gen)}) << "T=" << t;
    EXPECT_GRADCHECK(lsm, {randn_f64({3, 5}, gen)}) << "T=" << t;
    EXPECT_GRADCHECK(lse, {randn_f64({4, 6}, gen)}) << "T=" << t;
  }
  // Single class: softmax is constant 1, its gradient 0.
  auto sm1 = [](const std::vector<Tensor>& x) { return ops::softmax(x[0]); };
  EXPECT_GRADCHECK(sm1, {randn_f64({3, 1}, gen)});
}

TEST_P(SoftmaxTest, BackwardMatchesCpu) {
  const int64_t n = 37, k = 70;
  Tensor x0 = ops::scale(Tensor::randn({n, k}, gen), 2.0);
  Tensor r = Tensor::randn({n, k}, gen), r1 = Tensor::randn({n}, gen);
  for (double t : {1.0, 0.5, 1000.0}) {
    auto run = [&](Device d, int which) {
      Tensor x = x0.to(d).clone().set_requires_grad(true);
      Tensor y = which == 0 ? ops::mul(ops::softmax(x, t), r.to(d))
                 : which == 1 ? ops::mul(ops::log_softmax(x, t), r.to(d))
                              : ops::mul(ops::logsumexp(x, t), r1.to(d));
      ops::sum(y).backward();
      return x.grad();
    };
    for (int which = 0; which < 3; ++which) {
      Tensor ref = run(Device::cpu(), which), got = run(device(), which);
      EXPECT_TRUE(all_finite(got));
      EXPECT_TRUE(oodkit::testing::all_close(got, ref, f32_reduction(k))) << "op " << which << " T=" << t;
    }
  }
}

TEST_P(SoftmaxTest, ManyRowsAllWritten) {
  // More rows than one grid of warps covers in a single pass on the device, K not a multiple of 32.
  Tensor x = Tensor::randn({5000, 37}, gen);
  const Ref ref = reference(x, 1.5);
  EXPECT_ALL_CLOSE(ops::softmax(x.to(device()), 1.5), ref.softmax, f32_reduction(37));
  EXPECT_ALL_CLOSE(ops::logsumexp(x.to(device()), 1.5), ref.logsumexp, f32_reduction(37));
}

TEST_P(SoftmaxTest, BadArgumentsThrow) {
  auto T = [&](const Shape& s) { return Tensor::zeros(s, DType::F32, device()); };
  EXPECT_THROW(ops::softmax(T({5})), Error);
  EXPECT_THROW(ops::log_softmax(T({2, 3, 4})), Error);
  EXPECT_THROW(ops::logsumexp(T({3, 0})), Error);
  EXPECT_THROW(ops::softmax(T({2, 3}), 0.0), Error);
  EXPECT_THROW(ops::softmax(T({2, 3}), -1.0), Error);
  EXPECT_THROW(ops::logsumexp(T({2, 3}), std::nan("")), Error);
  EXPECT_THROW(ops::softmax(Tensor()), Error);
  EXPECT_THROW(ops::softmax(Tensor::zeros({2, 3}, DType::I64, device())), Error);
  try {
    ops::logsumexp(T({4}));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("logsumexp"), std::string::npos) << m;
    EXPECT_NE(m.find("[4]"), std::string::npos) << m;
  }
}

}  // namespace
