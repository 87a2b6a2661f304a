#include <cmath>
#include <limits>
#include <string>

#include "framework/ops/elementwise.h"
#include "framework/ops/loss.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::error_of;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::randn_f64;

namespace {

class LossTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(LossTest);

// Naive double reference: mean_n -sum_k q_k log p_k with q = (1 - s) onehot + s / K.
double naive_cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels, double s) {
  const std::vector<double> v = logits.to(DType::F64).cpu().to_vector<double>();
  const int64_t n = logits.size(0), k = logits.size(1);
  double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    double m = -INFINITY;
    for (int64_t j = 0; j < k; ++j) m = std::max(m, v[size_t(r * k + j)]);
    double z = 0;
    for (int64_t j = 0; j < k; ++j) z += std::exp(v[size_t(r * k + j)] - m);
    for (int64_t j = 0; j < k; ++j) {
      const double log_p = v[size_t(r * k + j)] - m - std::log(z);
      const double q = (j == labels[size_t(r)] ? 1.0 - s : 0.0) + s / double(k);
      total -= q * log_p;
    }
  }
  return total / double(n);
}

// Naive double reference of the weighted MSE (weight undefined = 1).
double naive_mse(const Tensor& p, const Tensor& t, const Tensor& w) {
  const std::vector<double> pv = p.to(DType::F64).cpu().to_vector<double>();
  const std::vector<double> tv = t.to(DType::F64).cpu().to_vector<double>();
  const std::vector<double> wv = w.defined() ? w.to(DType::F64).cpu().to_vector<double>() : std::vector<double>();
  double total = 0;
  for (size_t i = 0; i < pv.size(); ++i) total += (wv.empty() ? 1.0 : wv[i]) * (pv[i] - tv[i]) * (pv[i] - tv[i]);
  return total / double(p.size(0));
}

std::vector<int64_t> random_labels(int64_t n, int64_t k, Generator& gen) {
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (auto& v : y) v = gen.randint(k);
  return y;
}

Tensor labels_tensor(const std::vector<int64_t>& y) { return Tensor::from_vector(y, {int64_t(y.size())}); }

bool all_finite(const Tensor& t) {
  for (double v : t.to(DType::F64).cpu().to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

// ------------------------------------------------------------------ cross_entropy

TEST_P(LossTest, CrossEntropyHandWorked) {
  // Row 0: logits [1, 2, 3], label 2: loss = log(e + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2).
  // Row 1: logits [0, 0, 0], label 1: loss = log 3.
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 0, 0, 0}, {2, 3}).to(device());
  Tensor y = Tensor::from_vector<int64_t>({2, 1}, {2}).to(device());
  const double lse0 = 3 + std::log(1 + std::exp(-1.0) + std::exp(-2.0)), lse1 = std::log(3.0);
  const double plain = ((lse0 - 3) + lse1) / 2;
  Tensor l = ops::cross_entropy(x, y);
  EXPECT_EQ(l.ndim(), 0);
  EXPECT_EQ(l.device(), device());
  EXPECT_NEAR(l.item(), plain, 1e-6);
  // Smoothing 0.1, K = 3: row loss = lse - 0.9 x_y - 0.1/3 sum_k x_k.
  const double smooth = ((lse0 - 0.9 * 3 - 0.1 / 3 * 6) + (lse1 - 0 - 0)) / 2;
  EXPECT_NEAR(ops::cross_entropy(x, y, 0.1).item(), smooth, 1e-6);
  EXPECT_NEAR(plain, 0.7531091, 1e-6);   // written out by hand
  EXPECT_NEAR(smooth, 0.8031091, 1e-6);
}

TEST_P(LossTest, CrossEntropyMatchesNaiveReference) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {7, 10}, {33, 3}, {4, 100}, {300, 37}})
    for (double s : {0.0, 0.1, 1.0}) {
      Tensor x = ops::scale(Tensor::randn({n, k}, gen), 3.0);
      const std::vector<int64_t> y = random_labels(n, k, gen);
      const double ref = naive_cross_entropy(x, y, s);
      const double got = ops::cross_entropy(x.to(device()), labels_tensor(y).to(device()), s).item();
      const oodkit::testing::Tol tol = f32_reduction(k);
      EXPECT_NEAR(got, ref, tol.atol + tol.rtol * std::fabs(ref)) << "n=" << n << " k=" << k << " s=" << s;
    }
}

TEST_P(LossTest, CrossEntropyLargeLogits) {
  // Logits 1e4 apart: loss 0 for the top class, 1e4 / 2e4 for the others; gradients finite.
  Tensor x = Tensor::from_vector<float>({1e4f, 0.f, -1e4f}, {1, 3}).to(device());
  EXPECT_NEAR(ops::cross_entropy(x, Tensor::from_vector<int64_t>({0}, {1}).to(device())).item(), 0.0, 1e-6);
  EXPECT_NEAR(ops::cross_entropy(x, Tensor::from_vector<int64_t>({1}, {1}).to(device())).item(), 1e4, 1e-2);
  EXPECT_NEAR(ops::cross_entropy(x, Tensor::from_vector<int64_t>({2}, {1}).to(device())).item(), 2e4, 1e-2);
  // Smoothed: 0.9 * 1e4 + 0.1/3 * (0 + 1e4 + 2e4) = 1e4 for label 1.
  EXPECT_NEAR(ops::cross_entropy(x, Tensor::from_vector<int64_t>({1}, {1}).to(device()), 0.1).item(), 1e4, 1e-2);

  Tensor big = ops::scale(Tensor::randn({16, 9}, gen), 1e4);
  const std::vector<int64_t> y = random_labels(16, 9, gen);
  Tensor xb = big.to(device()).clone().set_requires_grad(true);
  Tensor l = ops::cross_entropy(xb, labels_tensor(y).to(device()), 0.1);
  const double ref = naive_cross_entropy(big, y, 0.1);
  EXPECT_NEAR(l.item(), ref, 1e-4 * std::fabs(ref));
  l.backward();
  EXPECT_TRUE(all_finite(xb.grad()));
}

// A -inf logit off the label is a masked class (loss finite, its gradient 0); -inf at the label
// gives +inf; a NaN row makes the mean loss NaN (hand-worked, PyTorch's conventions).
TEST_P(LossTest, CrossEntropyNonFiniteLogits) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float l3 = float(std::log(3.0));
  // Row [0, -inf, ln 3], label 2: loss = ln 4 - ln 3.
  Tensor x = Tensor::from_vector<float>({0, -inf, l3}, {1, 3}).to(device()).set_requires_grad(true);
  Tensor l = ops::cross_entropy(x, Tensor::from_vector<int64_t>({2}, {1}).to(device()));
  EXPECT_NEAR(l.item(), std::log(4.0 / 3.0), 1e-6);
  l.backward();
  const std::vector<float> g = x.grad().cpu().to_vector<float>();  // softmax - onehot = [1/4, 0, -1/4]
  EXPECT_NEAR(g[0], 0.25, 1e-6);
  EXPECT_EQ(g[1], 0.f);
  EXPECT_NEAR(g[2], -0.25, 1e-6);
  // Label on the -inf class: +inf.
  Tensor x2 = Tensor::from_vector<float>({0, -inf, l3}, {1, 3}).to(device());
  EXPECT_EQ(ops::cross_entropy(x2, Tensor::from_vector<int64_t>({1}, {1}).to(device())).item(), inf);
  // One NaN row among finite ones: the mean is NaN.
  Tensor x3 = Tensor::from_vector<float>({0, 1, 2, 0, nan, 1}, {2, 3}).to(device());
  EXPECT_TRUE(std::isnan(ops::cross_entropy(x3, Tensor::from_vector<int64_t>({0, 2}, {2}).to(device())).item()));
}

TEST(LossGrad, CrossEntropyFiniteDifferences) {
  Generator gen(31);
  const Tensor y = Tensor::from_vector<int64_t>({2, 0, 4, 4}, {4});
  for (double s : {0.0, 0.1}) {
    auto f = [&y, s](const std::vector<Tensor>& x) { return ops::cross_entropy(x[0], y, s); };
    EXPECT_GRADCHECK(f, {randn_f64({4, 5}, gen)}) << "s=" << s;
  }
}

TEST_P(LossTest, CrossEntropyBackwardMatchesCpu) {
  const int64_t n = 45, k = 70;
  Tensor x0 = ops::scale(Tensor::randn({n, k}, gen), 2.0);
  const Tensor y = labels_tensor(random_labels(n, k, gen));
  for (double s : {0.0, 0.1}) {
    auto run = [&](Device d) {
      Tensor x = x0.to(d).clone().set_requires_grad(true);
      // Scale the loss so that the incoming gradient is not 1.
      ops::scale(ops::cross_entropy(x, y.to(d), s), 2.5).backward();
      return x.grad();
    };
    Tensor ref = run(Device::cpu()), got = run(device());
    EXPECT_TRUE(oodkit::testing::all_close(got, ref, f32_reduction(k))) << "s=" << s;
    // Closed form: 2.5 / n * (softmax - q); each row sums to 0.
    const std::vector<float> g = got.cpu().to_vector<float>();
    for (int64_t r = 0; r < n; ++r) {
      double row = 0;
      for (int64_t j = 0; j < k; ++j) row += g[size_t(r * k + j)];
      EXPECT_NEAR(row, 0.0, 1e-6);
    }
  }
}

// On the CPU the call throws; on CUDA the kernel records the bad label and the error comes at the
// next synchronisation (item() here), with the same message.
TEST_P(LossTest, CrossEntropyBadLabels) {
  Tensor x = Tensor::zeros({3, 4}, DType::F32, device());
  std::string m =
      error_of([&] { ops::cross_entropy(x, Tensor::from_vector<int64_t>({0, -1, 2}, {3}).to(device())).item(); });
  EXPECT_NE(m.find("label -1"), std::string::npos) << m;
  EXPECT_NE(m.find("index 1"), std::string::npos) << m;
  EXPECT_NE(m.find("4"), std::string::npos) << m;
  m = error_of([&] { ops::cross_entropy(x, Tensor::from_vector<int64_t>({0, 1, 4}, {3}).to(device())).item(); });
  EXPECT_NE(m.find("label 4"), std::string::npos) << m;
  EXPECT_NE(m.find("index 2"), std::string::npos) << m;
  EXPECT_NE(m.find("[0, 4)"), std::string::npos) << m;
  // The error is reported once: the next valid call runs normally.
  EXPECT_NEAR(ops::cross_entropy(x, Tensor::from_vector<int64_t>({0, 1, 3}, {3}).to(device())).item(), std::log(4.0),
              1e-6);
}

TEST_P(LossTest, CrossEntropyBadArgumentsThrow) {
  Tensor x = Tensor::zeros({3, 4}, DType::F32, device());
  Tensor y = Tensor::zeros({3}, DType::I64, device());
  std::string m = error_of([&] { ops::cross_entropy(x, Tensor::zeros({2}, DType::I64, device())); });
  EXPECT_NE(m.find("[3, 4]"), std::string::npos) << m;
  EXPECT_NE(m.find("[2]"), std::string::npos) << m;
  EXPECT_THROW(ops::cross_entropy(x, Tensor::zeros({3}, DType::F32, device())), Error);   // float labels
  EXPECT_THROW(ops::cross_entropy(x, Tensor::zeros({3}, DType::I32, device())), Error);   // int32 labels
  EXPECT_THROW(ops::cross_entropy(x, Tensor::zeros({3, 1}, DType::I64, device())), Error);
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({12}, DType::F32, device()), y), Error);
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({0, 4}, DType::F32, device()), Tensor::zeros({0}, DType::I64, device())),
               Error);
  EXPECT_THROW(ops::cross_entropy(x, y, -0.1), Error);
  EXPECT_THROW(ops::cross_entropy(x, y, 1.5), Error);
  if (on_cuda()) EXPECT_THROW(ops::cross_entropy(x, Tensor::zeros({3}, DType::I64)), Error);  // device mismatch
}

// ------------------------------------------------------------------ weighted_mse

TEST_P(LossTest, WeightedMseHandWorked) {
  Tensor p = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}).to(device());
  Tensor t = Tensor::from_vector<float>({0, 0, 1, 1}, {2, 2}).to(device());
  Tensor w = Tensor::from_vector<float>({1, 0.5f, 2, 0}, {2, 2}).to(device());
  // Rows: 1*1 + 0.5*4 = 3 and 2*4 + 0*9 = 8 -> mean 5.5; unweighted 5 and 13 -> 9.
  Tensor l = ops::weighted_mse(p, t, w);
  EXPECT_EQ(l.ndim(), 0);
  EXPECT_EQ(l.device(), device());
  EXPECT_NEAR(l.item(), 5.5, 1e-6);
  EXPECT_NEAR(ops::weighted_mse(p, t, Tensor()).item(), 9.0, 1e-6);
}

TEST_P(LossTest, WeightedMseMatchesNaiveReference) {
  for (const Shape& sh : {Shape{5}, Shape{3, 7}, Shape{3, 2, 4, 5}, Shape{64, 3, 33, 17}}) {
    Tensor p = Tensor::randn(sh, gen), t = Tensor::randn(sh, gen), w = Tensor::uniform(sh, 0.0, 2.0, gen);
    const int64_t per_row = shape_numel(sh) / sh[0];
    const oodkit::testing::Tol tol = f32_reduction(per_row);
    const double ref_w = naive_mse(p, t, w), ref = naive_mse(p, t, Tensor());
    EXPECT_NEAR(ops::weighted_mse(p.to(device()), t.to(device()), w.to(device())).item(), ref_w,
                tol.atol + tol.rtol * ref_w)
        << shape_str(sh);
    EXPECT_NEAR(ops::weighted_mse(p.to(device()), t.to(device()), Tensor()).item(), ref, tol.atol + tol.rtol * ref)
        << shape_str(sh);
  }
}

TEST(LossGrad, WeightedMseFiniteDifferences) {
  Generator gen(32);
  const Tensor w = Tensor::uniform({3, 2, 2}, 0.0, 2.0, gen, DType::F64);
  auto f = [&w](const std::vector<Tensor>& x) { return ops::weighted_mse(x[0], x[1], w); };
  EXPECT_GRADCHECK(f, {randn_f64({3, 2, 2}, gen), randn_f64({3, 2, 2}, gen)});
  EXPECT_GRADCHECK(f, {randn_f64({3, 2, 2}, gen), randn_f64({3, 2, 2}, gen, false)});
  auto g = [](const std::vector<Tensor>& x) { return ops::weighted_mse(x[0], x[1], Tensor()); };
  EXPECT_GRADCHECK(g, {randn_f64({4, 3}, gen), randn_f64({4, 3}, gen)});
}

TEST_P(LossTest, WeightedMseBackwardMatchesCpu) {
  const Shape sh{6, 3, 5};
  Tensor p0 = Tensor::randn(sh, gen), t0 = Tensor::randn(sh, gen), w0 = Tensor::uniform(sh, 0.0, 2.0, gen);
  auto run = [&](Device d) {
    Tensor p = p0.to(d).clone().set_requires_grad(true), t = t0.to(d).clone().set_requires_grad(true);
    Tensor w = w0.to(d).clone().set_requires_grad(true);
    ops::scale(ops::weighted_mse(p, t, w), -1.5).backward();
    EXPECT_FALSE(w.grad().defined());  // the weight gets no gradient
    return std::make_pair(p.grad(), t.grad());
  };
  auto ref = run(Device::cpu());
  auto got = run(device());
  EXPECT_ALL_CLOSE(got.first, ref.first, kF32);
  EXPECT_ALL_CLOSE(got.second, ref.second, kF32);
  // Closed form: -1.5 * 2 / N * w (p - t).
  const std::vector<float> pv = p0.to_vector<float>(), tv = t0.to_vector<float>(), wv = w0.to_vector<float>();
  std::vector<double> expect(pv.size());
  for (size_t i = 0; i < pv.size(); ++i) expect[i] = -1.5 * 2.0 / 6.0 * wv[i] * (pv[i] - tv[i]);
  EXPECT_ALL_CLOSE(got.first, Tensor::from_vector(expect, sh), kF32);
  EXPECT_ALL_CLOSE(ops::scale(got.second, -1.0), Tensor::from_vector(expect, sh), kF32);
}

TEST_P(LossTest, LossesAreDeterministic) {
  // Large inputs so that the device reductions span many blocks; repeated calls agree bit for bit.
  Tensor p = Tensor::randn({256, 3, 32, 32}, gen).to(device()), t = Tensor::randn({256, 3, 32, 32}, gen).to(device());
  const double a = ops::weighted_mse(p, t, Tensor()).item();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ops::weighted_mse(p, t, Tensor()).item(), a);
  Tensor x = Tensor::randn({4096, 100}, gen).to(device());
  Tensor y = labels_tensor(random_labels(4096, 100, gen)).to(device());
  const double c = ops::cross_entropy(x, y, 0.1).item();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ops::cross_entropy(x, y, 0.1).item(), c);
}

TEST_P(LossTest, WeightedMseBadArgumentsThrow) {
  auto T = [&](const Shape& s) { return Tensor::zeros(s, DType::F32, device()); };
  std::string m = error_of([&] { ops::weighted_mse(T({2, 3}), T({3, 2}), Tensor()); });
  EXPECT_NE(m.find("weighted_mse"), std::string::npos) << m;
  EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
  EXPECT_NE(m.find("[3, 2]"), std::string::npos) << m;
  m = error_of([&] { ops::weighted_mse(T({2, 3}), T({2, 3}), T({2})); });
  EXPECT_NE(m.find("weight"), std::string::npos) << m;
  EXPECT_NE(m.find("[2]"), std::string::npos) << m;
  EXPECT_THROW(ops::weighted_mse(T({}), T({}), Tensor()), Error);
  EXPECT_THROW(ops::weighted_mse(T({0, 3}), T({0, 3}), Tensor()), Error);
  EXPECT_THROW(ops::weighted_mse(T({2, 3}), Tensor(), Tensor()), Error);
  EXPECT_THROW(ops::weighted_mse(T({2}), Tensor::zeros({2}, DType::I64, device()), Tensor()), Error);
  if (on_cuda()) EXPECT_THROW(ops::weighted_mse(T({2}), Tensor::zeros({2}), Tensor()), Error);
}

}  // namespace
