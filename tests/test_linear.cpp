#include <cmath>
#include <string>

#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::error_of;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::randn_f64;

namespace {

class LinearTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(LinearTest);

// Naive row-major op(a) op(b) in double; a is [m, k] or [k, m] (ta), b is [k, n] or [n, k] (tb).
Tensor naive_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const std::vector<double> av = a.to(DType::F64).cpu().to_vector<double>();
  const std::vector<double> bv = b.to(DType::F64).cpu().to_vector<double>();
  const int64_t m = ta ? a.size(1) : a.size(0), k = ta ? a.size(0) : a.size(1);
  const int64_t n = tb ? b.size(0) : b.size(1);
  std::vector<double> c(size_t(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p)
        acc += av[size_t(ta ? p * m + i : i * k + p)] * bv[size_t(tb ? j * k + p : p * n + j)];
      c[size_t(i * n + j)] = acc;
    }
  return Tensor::from_vector(c, {m, n});
}

// Naive x W^T + b in double.
Tensor naive_linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y = naive_matmul(x, w, false, true);
  if (b.defined()) {
    const std::vector<double> bv = b.to(DType::F64).cpu().to_vector<double>();
    double* py = y.data<double>();
    for (int64_t i = 0; i < y.size(0); ++i)
      for (int64_t j = 0; j < y.size(1); ++j) py[i * y.size(1) + j] += bv[size_t(j)];
  }
  return y;
}

Shape stored(int64_t rows, int64_t cols, bool trans) { return trans ? Shape{cols, rows} : Shape{rows, cols}; }

TEST_P(LinearTest, MatmulMatchesNaiveLoopAllTransposes) {
  const int64_t sizes[] = {1, 3, 17, 65};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t m : sizes)
        for (int64_t k : sizes)
          for (int64_t n : sizes) {
            Tensor a = Tensor::randn(stored(m, k, ta), gen), b = Tensor::randn(stored(k, n, tb), gen);
            Tensor c = ops::matmul(a.to(device()), b.to(device()), ta, tb);
            ASSERT_EQ(c.shape(), (Shape{m, n}));
            EXPECT_EQ(c.device(), device());
            EXPECT_TRUE(oodkit::testing::all_close(c, naive_matmul(a, b, ta, tb), f32_reduction(k)))
                << "m=" << m << " k=" << k << " n=" << n << " trans_a=" << ta << " trans_b=" << tb;
          }
}

// float64 is CPU-only: a plain CPU test (no CUDA instance to skip on a GPU machine).
TEST(LinearCpuTest, MatmulFloat64OnCpuIsExact) {
  Generator gen{1234};
  Tensor a = Tensor::randn({17, 65}, gen, DType::F64), b = Tensor::randn({17, 3}, gen, DType::F64);
  EXPECT_ALL_CLOSE(ops::matmul(a, b, true, false), naive_matmul(a, b, true, false), (oodkit::testing::Tol{1e-12, 1e-12}));
}

TEST_P(LinearTest, MatmulWithEmptyInnerDimensionIsZero) {
  Tensor a = Tensor::empty({3, 0}, DType::F32, device()), b = Tensor::empty({0, 4}, DType::F32, device());
  EXPECT_ALL_CLOSE(ops::matmul(a, b), Tensor::zeros({3, 4}), kF32);
  EXPECT_EQ(ops::matmul(Tensor::empty({0, 5}, DType::F32, device()), Tensor::randn({5, 2}, gen).to(device()))
                .shape(),
            (Shape{0, 2}));
}

TEST_P(LinearTest, TF32ModeStaysCloseToFloat64) {
  if (!on_cuda()) GTEST_SKIP() << "math mode only affects CUDA";
  // TF32 rounds the inputs to 10-bit mantissas (relative error ~5e-4 per factor): a looser,
  // sqrt(K)-scaled bound than strict FP32, still far below the O(1) error of a wrong product.
  const int64_t m = 65, k = 257, n = 33;
  Tensor a = Tensor::randn({m, k}, gen), b = Tensor::randn({n, k}, gen);
  Tensor c;
  {
    MathModeGuard tf32(MathMode::TF32);
    c = ops::matmul(a.to(device()), b.to(device()), false, true);
  }
  const double s = std::sqrt(double(k));
  EXPECT_ALL_CLOSE(c, naive_matmul(a, b, false, true), (oodkit::testing::Tol{4e-3 * s, 4e-3}));
  // Back in FP32 mode the strict tolerance holds again.
  EXPECT_ALL_CLOSE(ops::matmul(a.to(device()), b.to(device()), false, true), naive_matmul(a, b, false, true),
                   f32_reduction(k));
}

// TF32 backward of linear (dx, dweight through cuBLAS in TF32; dbias) against the CPU's float32
// gradients: within TF32's rounding (normalised squared error ~1e-6), far from a wrong one (~1).
TEST_P(LinearTest, TF32BackwardStaysClose) {
  if (!on_cuda()) GTEST_SKIP() << "math mode only affects CUDA";
  Tensor x = Tensor::randn({65, 257}, gen), w = Tensor::randn({33, 257}, gen), b = Tensor::randn({33}, gen);
  Tensor r = Tensor::randn({65, 33}, gen);
  auto run = [&](Device d) {
    Tensor xd = x.to(d).clone().set_requires_grad(true), wd = w.to(d).clone().set_requires_grad(true);
    Tensor bd = b.to(d).clone().set_requires_grad(true);
    ops::sum(ops::mul(ops::linear(xd, wd, bd), r.to(d))).backward();
    return std::vector<Tensor>{xd.grad(), wd.grad(), bd.grad()};
  };
  const auto ref = run(Device::cpu());
  std::vector<Tensor> got;
  {
    MathModeGuard tf32(MathMode::TF32);
    got = run(device());
  }
  EXPECT_LT(oodkit::testing::nmse(got[0], ref[0]), 1e-5) << "dx";
  EXPECT_LT(oodkit::testing::nmse(got[1], ref[1]), 1e-5) << "dweight";
  EXPECT_LT(oodkit::testing::nmse(got[2], ref[2]), 1e-5) << "dbias";
}

TEST_P(LinearTest, LinearMatchesNaiveLoop) {
  const int64_t sizes[] = {1, 3, 17, 65};
  for (int64_t n : sizes)
    for (int64_t in : sizes)
      for (int64_t out : sizes) {
        Tensor x = Tensor::randn({n, in}, gen), w = Tensor::randn({out, in}, gen), b = Tensor::randn({out}, gen);
        Tensor y = ops::linear(x.to(device()), w.to(device()), b.to(device()));
        EXPECT_TRUE(oodkit::testing::all_close(y, naive_linear(x, w, b), f32_reduction(in + 1)))
            << "n=" << n << " in=" << in << " out=" << out;
        Tensor y0 = ops::linear(x.to(device()), w.to(device()), Tensor());
        EXPECT_TRUE(oodkit::testing::all_close(y0, naive_linear(x, w, Tensor()), f32_reduction(in)))
            << "no bias: n=" << n << " in=" << in << " out=" << out;
      }
}

TEST(LinearGrad, MatmulFiniteDifferences) {
  Generator gen(11);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      auto f = [ta, tb](const std::vector<Tensor>& x) { return ops::matmul(x[0], x[1], ta, tb); };
      EXPECT_GRADCHECK(f, {randn_f64(stored(3, 4, ta), gen), randn_f64(stored(4, 5, tb), gen)})
          << "trans_a=" << ta << " trans_b=" << tb;
    }
  // Same tensor on both sides: gradients from both paths add up.
  auto sq = [](const std::vector<Tensor>& x) { return ops::matmul(x[0], x[0], true, false); };
  EXPECT_GRADCHECK(sq, {randn_f64({4, 3}, gen)});
}

TEST(LinearGrad, LinearFiniteDifferences) {
  Generator gen(12);
  auto f = [](const std::vector<Tensor>& x) { return ops::linear(x[0], x[1], x[2]); };
  EXPECT_GRADCHECK(f, {randn_f64({5, 4}, gen), randn_f64({3, 4}, gen), randn_f64({3}, gen)});
  auto g = [](const std::vector<Tensor>& x) { return ops::linear(x[0], x[1], Tensor()); };
  EXPECT_GRADCHECK(g, {randn_f64({2, 7}, gen), randn_f64({6, 7}, gen)});
  // Only some inputs require grad.
  EXPECT_GRADCHECK(f, {randn_f64({5, 4}, gen, false), randn_f64({3, 4}, gen), randn_f64({3}, gen, false)});
}

TEST_P(LinearTest, MatmulBackwardMatchesCpu) {
  const int64_t m = 17, k = 65, n = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = Tensor::randn(stored(m, k, ta), gen), b = Tensor::randn(stored(k, n, tb), gen);
      Tensor r = Tensor::randn({m, n}, gen);
      auto run = [&](Device d) {
        Tensor x = a.to(d).clone().set_requires_grad(true), y = b.to(d).clone().set_requires_grad(true);
        ops::sum(ops::mul(ops::matmul(x, y, ta, tb), r.to(d))).backward();
        return std::make_pair(x.grad(), y.grad());
      };
      auto ref = run(Device::cpu());
      auto got = run(device());
      // grad_a sums over n terms, grad_b over m terms.
      EXPECT_TRUE(oodkit::testing::all_close(got.first, ref.first, f32_reduction(n))) << "ta=" << ta << " tb=" << tb;
      EXPECT_TRUE(oodkit::testing::all_close(got.second, ref.second, f32_reduction(m))) << "ta=" << ta << " tb=" << tb;
    }
}

TEST_P(LinearTest, LinearBackwardMatchesCpu) {
  const int64_t n = 33, in = 17, out = 5;
  Tensor x0 = Tensor::randn({n, in}, gen), w0 = Tensor::randn({out, in}, gen), b0 = Tensor::randn({out}, gen);
  Tensor r = Tensor::randn({n, out}, gen);
  auto run = [&](Device d) {
    Tensor x = x0.to(d).clone().set_requires_grad(true), w = w0.to(d).clone().set_requires_grad(true);
    Tensor b = b0.to(d).clone().set_requires_grad(true);
    ops::sum(ops::mul(ops::linear(x, w, b), r.to(d))).backward();
    return std::vector<Tensor>{x.grad(), w.grad(), b.grad()};
  };
  auto ref = run(Device::cpu());
  auto got = run(device());
  EXPECT_ALL_CLOSE(got[0], ref[0], f32_reduction(out));
  EXPECT_ALL_CLOSE(got[1], ref[1], f32_reduction(n));
  EXPECT_ALL_CLOSE(got[2], ref[2], f32_reduction(n));
  // grad_bias is the column sum of R, computed here naively.
  std::vector<double> colsum(size_t(out), 0.0);
  const std::vector<float> rv = r.to_vector<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < out; ++j) colsum[size_t(j)] += rv[size_t(i * out + j)];
  EXPECT_ALL_CLOSE(got[2], Tensor::from_vector(colsum, {out}), f32_reduction(n));

  // Eval-style use: only the input requires grad (OOD input gradients); the weights get none.
  Tensor x = x0.to(device()).clone().set_requires_grad(true);
  Tensor w = w0.to(device()), b = b0.to(device());
  ops::sum(ops::mul(ops::linear(x, w, b), r.to(device()))).backward();
  EXPECT_ALL_CLOSE(x.grad(), ref[0], f32_reduction(out));
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

TEST_P(LinearTest, ColumnSumOverManyRows) {
  // Bias gradient over a long batch (more rows than threads in a block) and > 32 columns.
  const int64_t n = 1000, in = 3, out = 70;
  Tensor x0 = Tensor::randn({n, in}, gen), w0 = Tensor::randn({out, in}, gen);
  Tensor b = Tensor::zeros({out}, DType::F32, device()).set_requires_grad(true);
  Tensor r = Tensor::randn({n, out}, gen);
  ops::sum(ops::mul(ops::linear(x0.to(device()), w0.to(device()), b), r.to(device()))).backward();
  std::vector<double> colsum(size_t(out), 0.0);
  const std::vector<float> rv = r.to_vector<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < out; ++j) colsum[size_t(j)] += rv[size_t(i * out + j)];
  EXPECT_ALL_CLOSE(b.grad(), Tensor::from_vector(colsum, {out}), f32_reduction(n));
}

TEST_P(LinearTest, BadArgumentsThrowNamingShapes) {
  auto T = [&](const Shape& s) { return Tensor::zeros(s, DType::F32, device()); };
  std::string m = error_of([&] { ops::matmul(T({2, 3}), T({4, 5})); });
  EXPECT_NE(m.find("matmul"), std::string::npos) << m;
  EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
  EXPECT_NE(m.find("[4, 5]"), std::string::npos) << m;
  m = error_of([&] { ops::matmul(T({3, 2}), T({3, 5}), false, true); });
  EXPECT_NE(m.find("[3, 2]"), std::string::npos) << m;
  EXPECT_NE(m.find("[3, 5] (transposed)"), std::string::npos) << m;
  EXPECT_THROW(ops::matmul(T({2, 3}), T({3})), Error);
  EXPECT_THROW(ops::matmul(T({2, 3, 1}), T({3, 2})), Error);
  EXPECT_THROW(ops::matmul(T({2, 3}), Tensor()), Error);
  EXPECT_THROW(ops::matmul(T({2, 3}), Tensor::zeros({3, 2}, DType::I64, device())), Error);

  m = error_of([&] { ops::linear(T({4, 3}), T({5, 2}), T({5})); });
  EXPECT_NE(m.find("linear"), std::string::npos) << m;
  EXPECT_NE(m.find("[4, 3]"), std::string::npos) << m;
  EXPECT_NE(m.find("[5, 2]"), std::string::npos) << m;
  m = error_of([&] { ops::linear(T({4, 3}), T({5, 3}), T({4})); });
  EXPECT_NE(m.find("[4]"), std::string::npos) << m;
  EXPECT_NE(m.find("[5, 3]"), std::string::npos) << m;
  EXPECT_THROW(ops::linear(T({4, 3}), T({5, 3}), T({5, 1})), Error);
  EXPECT_THROW(ops::linear(T({3}), T({5, 3}), T({5})), Error);
  if (on_cuda()) {
    EXPECT_THROW(ops::matmul(T({2, 3}), Tensor::zeros({3, 2})), Error);  // device mismatch
    EXPECT_THROW(ops::linear(T({4, 3}), T({5, 3}), Tensor::zeros({5})), Error);
  } else {
    EXPECT_THROW(ops::matmul(T({2, 3}), Tensor::zeros({3, 2}, DType::F64)), Error);  // dtype mismatch
  }
}

}  // namespace
