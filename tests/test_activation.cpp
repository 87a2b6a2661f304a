#include <cmath>
#include <limits>

#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::kF32;
using oodkit::testing::randn_f64;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr oodkit::testing::Tol kExact{0.0, 0.0};

class ActivationTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ActivationTest);

// Naive reference of one map over a float tensor's values (computed in double, stored as float).
template <class F>
Tensor naive_map(const Tensor& x, F f) {
  std::vector<float> v = x.to_vector<float>();
  for (float& e : v) e = float(f(double(e)));
  return Tensor::from_vector(v, x.shape());
}

TEST_P(ActivationTest, ForwardMatchesNaiveLoop) {
  Tensor x = Tensor::randn({3, 5, 4, 7}, gen);
  x = ops::scale(x, 3.0);  // reach the saturated parts of tanh and sigmoid
  Tensor dx = x.to(device());
  EXPECT_ALL_CLOSE(ops::relu(dx), naive_map(x, [](double v) { return v > 0 ? v : 0.0; }), kF32);
  EXPECT_ALL_CLOSE(ops::tanh(dx), naive_map(x, [](double v) { return std::tanh(v); }), kF32);
  EXPECT_ALL_CLOSE(ops::sigmoid(dx), naive_map(x, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }), kF32);
  EXPECT_ALL_CLOSE(ops::clamp(dx, -0.7, 1.2), naive_map(x, [](double v) { return std::min(std::max(v, -0.7), 1.2); }),
                   kF32);
  EXPECT_ALL_CLOSE(ops::clamp(dx, -kInf, 0.5), naive_map(x, [](double v) { return std::min(v, 0.5); }), kF32);
  EXPECT_ALL_CLOSE(ops::clamp(dx, -0.25, kInf), naive_map(x, [](double v) { return std::max(v, -0.25); }), kF32);
  EXPECT_ALL_CLOSE(ops::clamp(dx, -kInf, kInf), x, kExact);
}

TEST_P(ActivationTest, HandWorkedValues) {
  Tensor x = Tensor::from_vector<float>({-2.f, -0.5f, 0.f, 0.5f, 3.f, -100.f, 100.f}, {7}).to(device());
  EXPECT_ALL_CLOSE(ops::relu(x), Tensor::from_vector<float>({0, 0, 0, 0.5f, 3, 0, 100}, {7}), kExact);
  EXPECT_ALL_CLOSE(ops::clamp(x, -1.0, 1.0), Tensor::from_vector<float>({-1, -0.5f, 0, 0.5f, 1, -1, 1}, {7}), kExact);
  // sigmoid saturates to exactly 0 / 1 without NaN; tanh to -1 / 1.
  Tensor s = ops::sigmoid(x).cpu();
  EXPECT_EQ(s.to_vector<float>()[2], 0.5f);
  EXPECT_NEAR(s.to_vector<float>()[5], 0.0, 1e-30);
  EXPECT_EQ(s.to_vector<float>()[6], 1.0f);
  Tensor t = ops::tanh(x).cpu();
  EXPECT_EQ(t.to_vector<float>()[5], -1.0f);
  EXPECT_EQ(t.to_vector<float>()[6], 1.0f);
}

TEST_P(ActivationTest, BackwardHandWorked) {
  // relu and clamp pass the gradient only strictly inside their linear regions.
  Tensor x0 = Tensor::from_vector<float>({-2.f, -1.f, 0.f, 0.5f, 1.f, 3.f}, {6});
  Tensor gout = Tensor::from_vector<float>({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {6}).to(device());
  Tensor x = x0.to(device()).clone().set_requires_grad(true);
  ops::relu(x).backward(gout);
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector<float>({0, 0, 0, 4, 5, 6}, {6}), kExact);
  x.zero_grad();
  ops::clamp(x, -1.0, 1.0).backward(gout);
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector<float>({0, 0, 3, 4, 0, 0}, {6}), kExact);
  x.zero_grad();
  ops::clamp(x, -kInf, 1.0).backward(gout);
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector<float>({1, 2, 3, 4, 0, 0}, {6}), kExact);
}

TEST_P(ActivationTest, BackwardMatchesCpu) {
  Tensor a = ops::scale(Tensor::randn({6, 33}, gen), 2.0);
  a = oodkit::testing::away_from_zero(a, 1e-3);
  Tensor gout = Tensor::randn({6, 33}, gen);
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> fns = {
      {"relu", [](const Tensor& t) { return ops::relu(t); }},
      {"tanh", [](const Tensor& t) { return ops::tanh(t); }},
      {"sigmoid", [](const Tensor& t) { return ops::sigmoid(t); }},
      {"clamp", [](const Tensor& t) { return ops::clamp(t, -1.5, 0.8); }},
  };
  for (const auto& [name, fn_] : fns) {
    SCOPED_TRACE(name);
    const auto& fn = fn_;  // a structured binding cannot be captured before C++20 (clang)
    auto run = [&](Device d) {
      Tensor x = a.to(d).clone().set_requires_grad(true);
      fn(x).backward(gout.to(d));
      return x.grad();
    };
    EXPECT_ALL_CLOSE(run(device()), run(Device::cpu()), kF32);
  }
}

TEST_P(ActivationTest, BackwardWorksInEvalMode) {
  // Input gradients through an eval network: dropout in eval is the identity and passes g.
  Tensor x = Tensor::randn({4, 5}, gen).to(device()).set_requires_grad(true);
  Tensor g = Tensor::randn({4, 5}, gen).to(device());
  Generator dg(3);
  ops::dropout(ops::tanh(x), 0.5, /*training=*/false, dg).backward(g);
  Tensor y = ops::tanh(x.detach()).cpu();
  std::vector<float> yv = y.to_vector<float>(), gv = g.to_vector<float>();
  for (size_t i = 0; i < yv.size(); ++i) gv[i] *= 1.0f - yv[i] * yv[i];
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector(gv, {4, 5}), kF32);
}

TEST(ActivationGrad, FiniteDifferences) {
  Generator gen(11);
  using oodkit::testing::away_from_zero;
  using oodkit::testing::gradcheck;
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return ops::relu(x[0]); },
                   {away_from_zero(randn_f64({3, 4, 2}, gen), 1e-2).set_requires_grad(true)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return ops::tanh(x[0]); }, {randn_f64({3, 5}, gen)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return ops::sigmoid(x[0]); }, {randn_f64({3, 5}, gen)});
  // clamp: kinks at lo and hi are skipped; both sides of each bound are exercised.
  for (auto [lo, hi] : {std::pair<double, double>{-0.5, 0.7}, {-kInf, 0.3}, {-0.2, kInf}}) {
    SCOPED_TRACE(lo);
    Tensor x = randn_f64({4, 6}, gen);
    const std::vector<double> xv = x.to_vector<double>();
    oodkit::testing::GradCheckOptions opt;
    opt.skip = [xv, lo = lo, hi = hi](size_t, int64_t j) {
      return std::fabs(xv[size_t(j)] - lo) < 1e-3 || std::fabs(xv[size_t(j)] - hi) < 1e-3;
    };
    EXPECT_GRADCHECK([lo = lo, hi = hi](const std::vector<Tensor>& in) { return ops::clamp(in[0], lo, hi); }, {x},
                     opt);
  }
  // dropout with a fixed seed per call is a fixed linear map.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& x) {
        Generator g(21);
        return ops::dropout(x[0], 0.4, true, g);
      },
      {randn_f64({5, 7}, gen)});
}

// ---------------------------------------------------------------- dropout

// Reference dropout: the mask from counter_uniform with the seed the op will draw.
Tensor naive_dropout(const Tensor& x, double p, uint64_t gen_seed, std::vector<uint8_t>* mask = nullptr) {
  Generator g(gen_seed);
  const uint64_t seed = g.next_u64();
  std::vector<float> v = x.to_vector<float>();
  const float scale = float(1.0 / (1.0 - p));
  if (mask) mask->assign(v.size(), 0);
  for (size_t i = 0; i < v.size(); ++i) {
    const bool keep = double(counter_uniform(seed, i)) >= p;
    if (mask) (*mask)[i] = keep;
    v[i] = keep ? v[i] * scale : 0.0f;
  }
  return Tensor::from_vector(v, x.shape());
}

TEST_P(ActivationTest, DropoutMatchesCounterMaskExactly) {
  // The CPU and CUDA must both reproduce the counter-based mask bit for bit.
  Tensor x = Tensor::randn({4, 3, 9, 11}, gen);
  for (double p : {0.1, 0.5, 0.9}) {
    SCOPED_TRACE(p);
    Generator g(77);
    Tensor y = ops::dropout(x.to(device()), p, true, g);
    EXPECT_ALL_CLOSE(y, naive_dropout(x, p, 77), kExact);
    // The generator advanced by exactly one draw.
    Generator ref(77);
    ref.next_u64();
    EXPECT_EQ(g.next_u64(), ref.next_u64());
  }
}

TEST_P(ActivationTest, DropoutStatistics) {
  const int64_t n = 100000;
  const double p = 0.3;
  Tensor x = Tensor::uniform({n}, 0.5, 1.5, gen);
  Generator g(5);
  Tensor y = ops::dropout(x.to(device()), p, true, g).cpu();
  const std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>();
  int64_t kept = 0;
  double sx = 0, sy = 0;
  for (int64_t i = 0; i < n; ++i) {
    kept += yv[size_t(i)] != 0.0f;
    sx += xv[size_t(i)];
    sy += yv[size_t(i)];
    if (yv[size_t(i)] != 0.0f) EXPECT_FLOAT_EQ(yv[size_t(i)], xv[size_t(i)] / float(1.0 - p));
  }
  // Binomial std of the kept fraction is ~0.0015; 0.01 is > 6 sigma.
  EXPECT_NEAR(double(kept) / double(n), 1.0 - p, 0.01);
  // Std of mean(y) is ~0.0023 here.
  EXPECT_NEAR(sy / double(n), sx / double(n), 0.015);
  // Two calls draw different masks.
  Tensor y2 = ops::dropout(x.to(device()), p, true, g).cpu();
  EXPECT_FALSE(oodkit::testing::all_close(y2, y, kExact));
}

TEST_P(ActivationTest, DropoutIdentityInEvalAndForZeroP) {
  Tensor x = Tensor::randn({3, 4}, gen).to(device()).set_requires_grad(true);
  Generator g(9);
  Tensor a = ops::dropout(x, 0.5, false, g);
  EXPECT_TRUE(a.same_storage(x));
  EXPECT_EQ(a.impl(), x.impl());
  Tensor b = ops::dropout(x, 0.0, true, g);
  EXPECT_EQ(b.impl(), x.impl());
  // Neither consumed a random number.
  Generator ref(9);
  EXPECT_EQ(g.next_u64(), ref.next_u64());
}

TEST_P(ActivationTest, DropoutGradientIsMaskOverKeep) {
  const double p = 0.6;
  Tensor x0 = Tensor::randn({7, 13}, gen);
  Tensor x = x0.to(device()).clone().set_requires_grad(true);
  Generator g(123);
  Tensor y = ops::dropout(x, p, true, g);
  ops::sum(y).backward();
  std::vector<uint8_t> mask;
  naive_dropout(x0, p, 123, &mask);
  std::vector<float> want(mask.size());
  for (size_t i = 0; i < mask.size(); ++i) want[i] = mask[i] ? float(1.0 / (1.0 - p)) : 0.0f;
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector(want, x0.shape()), kExact);
  // The gradient of a non-uniform grad_output uses the same mask.
  Tensor gout = Tensor::randn({7, 13}, gen);
  x.zero_grad();
  Generator g2(123);
  ops::dropout(x, p, true, g2).backward(gout.to(device()));
  EXPECT_ALL_CLOSE(x.grad(), naive_dropout(gout, p, 123), kExact);
}

TEST_P(ActivationTest, BadArgumentsThrow) {
  Tensor x = Tensor::randn({2, 3}, gen).to(device());
  Generator g(1);
  EXPECT_THROW(ops::dropout(x, 1.0, true, g), Error);
  EXPECT_THROW(ops::dropout(x, -0.1, true, g), Error);
  EXPECT_THROW(ops::dropout(x, std::nan(""), true, g), Error);
  EXPECT_THROW(ops::dropout(x, 1.5, false, g), Error);  // checked in eval too
  EXPECT_THROW(ops::clamp(x, 1.0, -1.0), Error);
  EXPECT_THROW(ops::clamp(x, std::nan(""), 1.0), Error);
  EXPECT_THROW(ops::relu(Tensor()), Error);
  Tensor i = Tensor::zeros({2, 3}, DType::I64, device());
  EXPECT_THROW(ops::relu(i), Error);
  EXPECT_THROW(ops::sigmoid(i), Error);
  EXPECT_THROW(ops::dropout(i, 0.5, true, g), Error);
  if (on_cuda()) EXPECT_THROW(ops::tanh(Tensor::zeros({2}, DType::F64, device())), Error);
}

}  // namespace
