#include <cmath>

#include "framework/ops/batch_norm.h"
#include "framework/ops/elementwise.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::Tol;

namespace {

class BatchNormTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(BatchNormTest);

// Naive double-precision batch norm on host vectors; x viewed as [n, c, hw]. Updates rm / rv
// in training mode like PyTorch.
struct NaiveBn {
  std::vector<double> y, rm, rv;
};
NaiveBn naive_bn(const std::vector<double>& x, int64_t n, int64_t c, int64_t hw, const std::vector<double>* w,
                 const std::vector<double>* b, std::vector<double> rm, std::vector<double> rv, bool training,
                 double momentum, double eps) {
  NaiveBn r;
  r.y.resize(x.size());
  const double m = double(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean = rm[size_t(ch)], var = rv[size_t(ch)];
    if (training) {
      double s = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) s += x[size_t((i * c + ch) * hw + j)];
      mean = s / m;
      double ss = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) ss += std::pow(x[size_t((i * c + ch) * hw + j)] - mean, 2);
      var = ss / m;
      rm[size_t(ch)] = (1 - momentum) * rm[size_t(ch)] + momentum * mean;
      rv[size_t(ch)] = (1 - momentum) * rv[size_t(ch)] + momentum * ss / (m - 1);
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) {
        const size_t k = size_t((i * c + ch) * hw + j);
        r.y[k] = (x[k] - mean) / std::sqrt(var + eps) * (w ? (*w)[size_t(ch)] : 1.0) + (b ? (*b)[size_t(ch)] : 0.0);
      }
  }
  r.rm = rm;
  r.rv = rv;
  return r;
}

std::vector<double> as_f64(const Tensor& t) { return t.to(DType::F64).cpu().to_vector<double>(); }

struct BnCase {
  Shape shape;
  bool affine;
};

TEST_P(BatchNormTest, ForwardMatchesNaive) {
  const std::vector<BnCase> cases = {
      {{4, 3, 5, 6}, true}, {{4, 3, 5, 6}, false}, {{9, 5}, true}, {{9, 5}, false}, {{2, 7, 1, 3}, true}};
  for (const BnCase& cs : cases) {
    for (bool training : {true, false}) {
      SCOPED_TRACE(shape_str(cs.shape) + (cs.affine ? " affine" : " plain") + (training ? " train" : " eval"));
      const int64_t n = cs.shape[0], c = cs.shape[1], hw = cs.shape.size() == 4 ? cs.shape[2] * cs.shape[3] : 1;
      // Offset and scaled inputs: the statistics are far from 0 / 1.
      Tensor x = ops::add_scalar(ops::scale(Tensor::randn(cs.shape, gen), 3.0), 1.5);
      Tensor w = Tensor::randn({c}, gen), b = Tensor::randn({c}, gen);
      Tensor rm = Tensor::randn({c}, gen), rv = Tensor::uniform({c}, 0.5, 2.0, gen);
      const std::vector<double> wv = as_f64(w), bv = as_f64(b);
      const NaiveBn ref = naive_bn(as_f64(x), n, c, hw, cs.affine ? &wv : nullptr, cs.affine ? &bv : nullptr,
                                   as_f64(rm), as_f64(rv), training, 0.1, 1e-5);

      Tensor drm = rm.to(device()).clone(), drv = rv.to(device()).clone();
      Tensor y = ops::batch_norm(x.to(device()), cs.affine ? w.to(device()) : Tensor(),
                                 cs.affine ? b.to(device()) : Tensor(), drm, drv, training);
      const Tol tol = f32_reduction(n * hw);
      EXPECT_ALL_CLOSE(y, Tensor::from_vector(ref.y, cs.shape), tol);
      EXPECT_ALL_CLOSE(drm, Tensor::from_vector(ref.rm, {c}), tol);
      EXPECT_ALL_CLOSE(drv, Tensor::from_vector(ref.rv, {c}), tol);
      if (!training) {  // eval leaves the buffers exactly as they were
        EXPECT_EQ(drm.to_vector<float>(), rm.to_vector<float>());
        EXPECT_EQ(drv.to_vector<float>(), rv.to_vector<float>());
      }
    }
  }
}

TEST_P(BatchNormTest, RunningStatsAfterTwoStepsByHand) {
  // x [4, 2]: channel 0 then channel 1 of each row.
  Tensor x1 = Tensor::from_vector<float>({1, 0, 2, 0, 3, 2, 4, 2}, {4, 2}).to(device());
  Tensor x2 = Tensor::from_vector<float>({2, 1, 4, 1, 6, 1, 8, 5}, {4, 2}).to(device());
  Tensor rm = Tensor::zeros({2}, DType::F32, device()), rv = Tensor::ones({2}, DType::F32, device());
  // Step 1: means 2.5, 1; unbiased variances 5/3, 4/3 (biased 1.25, 1).
  Tensor y1 = ops::batch_norm(x1, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  EXPECT_ALL_CLOSE(rm, Tensor::from_vector<double>({0.25, 0.1}, {2}), kF32);
  EXPECT_ALL_CLOSE(rv, Tensor::from_vector<double>({0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 4.0 / 3.0}, {2}), kF32);
  const double s0 = 1.0 / std::sqrt(1.25 + 1e-5), s1 = 1.0 / std::sqrt(1.0 + 1e-5);
  EXPECT_ALL_CLOSE(y1,
                   Tensor::from_vector<double>({-1.5 * s0, -s1, -0.5 * s0, -s1, 0.5 * s0, s1, 1.5 * s0, s1}, {4, 2}),
                   kF32);
  // Step 2: means 5, 2; unbiased variances 20/3, 4.
  ops::batch_norm(x2, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  EXPECT_ALL_CLOSE(rm, Tensor::from_vector<double>({0.9 * 0.25 + 0.5, 0.9 * 0.1 + 0.2}, {2}), kF32);
  EXPECT_ALL_CLOSE(rv, Tensor::from_vector<double>({1.626666666666667, 1.33}, {2}), kF32);
  // Eval with those statistics and an affine map.
  Tensor w = Tensor::from_vector<float>({2, -1}, {2}).to(device());
  Tensor b = Tensor::from_vector<float>({0.5, 3}, {2}).to(device());
  Tensor y = ops::batch_norm(x2, w, b, rm, rv, false, 0.1, 1e-5);
  const double e0 = 2.0 / std::sqrt(1.626666666666667 + 1e-5), e1 = -1.0 / std::sqrt(1.33 + 1e-5);
  std::vector<double> want;
  const double xs[8] = {2, 1, 4, 1, 6, 1, 8, 5};
  for (int i = 0; i < 4; ++i) {
    want.push_back((xs[2 * i] - 0.725) * e0 + 0.5);
    want.push_back((xs[2 * i + 1] - 0.29) * e1 + 3.0);
  }
  EXPECT_ALL_CLOSE(y, Tensor::from_vector(want, {4, 2}), kF32);
}

// Device backward (both modes, with and without affine) against the CPU on the same float32 inputs.
TEST_P(BatchNormTest, BackwardMatchesCpu) {
  for (const Shape& shape : {Shape{6, 4, 5, 3}, Shape{7, 6}}) {
    for (bool training : {true, false}) {
      for (bool affine : {true, false}) {
        SCOPED_TRACE(shape_str(shape) + (training ? " train" : " eval") + (affine ? " affine" : " plain"));
        const int64_t c = shape[1], m = shape_numel(shape) / c;
        Tensor x = ops::add_scalar(Tensor::randn(shape, gen), -0.7);
        Tensor w = Tensor::randn({c}, gen), b = Tensor::randn({c}, gen);
        Tensor rm = Tensor::randn({c}, gen), rv = Tensor::uniform({c}, 0.5, 2.0, gen);
        Tensor r = Tensor::randn(shape, gen);
        struct Out {
          Tensor y, dx, dw, db, rm, rv;
        };
        auto run = [&](Device d) {
          Tensor xd = x.to(d).clone().set_requires_grad(true);
          Tensor wd = affine ? w.to(d).clone().set_requires_grad(true) : Tensor();
          Tensor bd = affine ? b.to(d).clone().set_requires_grad(true) : Tensor();
          Out o;
          o.rm = rm.to(d).clone();
          o.rv = rv.to(d).clone();
          o.y = ops::batch_norm(xd, wd, bd, o.rm, o.rv, training);
          ops::sum(ops::mul(o.y, r.to(d))).backward();
          o.dx = xd.grad();
          if (affine) {
            o.dw = wd.grad();
            o.db = bd.grad();
          }
          return o;
        };
        const Out ref = run(Device::cpu()), got = run(device());
        const Tol tol = f32_reduction(m);
        EXPECT_ALL_CLOSE(got.y, ref.y, tol);
        EXPECT_ALL_CLOSE(got.dx, ref.dx, tol);
        EXPECT_ALL_CLOSE(got.rm, ref.rm, tol);
        EXPECT_ALL_CLOSE(got.rv, ref.rv, tol);
        if (affine) {
          EXPECT_ALL_CLOSE(got.dw, ref.dw, tol);
          EXPECT_ALL_CLOSE(got.db, ref.db, tol);
        }
      }
    }
  }
}

// Eval-mode input gradient is the affine map dy * w / sqrt(rv + eps), with the statistics of
// the forward even if a later training step updated the buffers before backward.
TEST_P(BatchNormTest, EvalBackwardUsesForwardStatistics) {
  const int64_t c = 3;
  Tensor x = Tensor::randn({4, c, 2, 2}, gen);
  Tensor w = Tensor::randn({c}, gen);
  Tensor rm = Tensor::randn({c}, gen), rv = Tensor::uniform({c}, 0.5, 2.0, gen);
  const std::vector<float> wv = w.to_vector<float>(), rvv = rv.to_vector<float>();
  Tensor xd = x.to(device()).clone().set_requires_grad(true);
  Tensor drm = rm.to(device()).clone(), drv = rv.to(device()).clone();
  Tensor y = ops::batch_norm(xd, w.to(device()), Tensor(), drm, drv, false);
  {
    autograd::NoGradGuard ng;
    ops::batch_norm(ops::scale(x, 5.0).to(device()), Tensor(), Tensor(), drm, drv, true, 0.9);
  }
  ASSERT_GT(std::fabs(drv.to_vector<float>()[0] - rvv[0]), 0.1f);  // the buffers did move
  ops::sum(y).backward();
  std::vector<double> want;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int j = 0; j < 4; ++j) want.push_back(double(wv[size_t(ch)]) / std::sqrt(double(rvv[size_t(ch)]) + 1e-5));
  EXPECT_ALL_CLOSE(xd.grad(), Tensor::from_vector(want, {4, c, 2, 2}), kF32);
}

TEST_P(BatchNormTest, BadArgumentsThrow) {
  auto t = [&](const Shape& s) { return Tensor::randn(s, gen, DType::F32, device()); };
  Tensor rm = Tensor::zeros({3}, DType::F32, device()), rv = Tensor::ones({3}, DType::F32, device());
  Tensor w = t({3}), b = t({3});
  EXPECT_THROW(ops::batch_norm(t({2, 3, 4}), w, b, rm, rv, true), Error);          // 3-d
  EXPECT_THROW(ops::batch_norm(t({2, 4, 2, 2}), Tensor(), Tensor(), rm, rv, true), Error);  // C mismatch
  EXPECT_THROW(ops::batch_norm(t({2, 3, 2, 2}), t({4}), b, rm, rv, true), Error);  // weight shape
  EXPECT_THROW(ops::batch_norm(t({2, 3, 2, 2}), w, t({3, 1}), rm, rv, true), Error);
  Tensor rv_bad = Tensor::ones({2}, DType::F32, device());
  EXPECT_THROW(ops::batch_norm(t({2, 3, 2, 2}), w, b, rm, rv_bad, false), Error);
  Tensor undefined;
  EXPECT_THROW(ops::batch_norm(t({2, 3, 2, 2}), w, b, undefined, rv, false), Error);
  // One value per channel: the batch variance is undefined in training (fine in eval).
  EXPECT_THROW(ops::batch_norm(t({1, 3}), w, b, rm, rv, true), Error);
  EXPECT_THROW(ops::batch_norm(t({1, 3, 1, 1}), w, b, rm, rv, true), Error);
  EXPECT_NO_THROW(ops::batch_norm(t({1, 3, 1, 1}), w, b, rm, rv, false));
  EXPECT_THROW(ops::batch_norm(t({2, 3}), w, b, rm, rv, true, 0.1, -1e-5), Error);  // eps
  EXPECT_THROW(ops::batch_norm(t({2, 3}), w, b, rm, rv, true, 1.5), Error);         // momentum
  Tensor rm_grad = Tensor::zeros({3}, DType::F32, device()).set_requires_grad(true);
  EXPECT_THROW(ops::batch_norm(t({2, 3}), w, b, rm_grad, rv, true), Error);
  Tensor xi = Tensor::zeros({2, 3}, DType::I32, device());
  EXPECT_THROW(ops::batch_norm(xi, w, b, rm, rv, true), Error);
  if (on_cuda()) {  // mixed devices
    Tensor rm_cpu = Tensor::zeros({3});
    EXPECT_THROW(ops::batch_norm(t({2, 3}), w, b, rm_cpu, rv, true), Error);
  } else {  // mixed dtypes
    Tensor rm64 = Tensor::zeros({3}, DType::F64);
    EXPECT_THROW(ops::batch_norm(t({2, 3}), w, b, rm64, rv, true), Error);
  }
}

TEST(BatchNormGrad, TrainingFiniteDifferences) {
  Generator gen(21);
  using oodkit::testing::randn_f64;
  for (const Shape& shape : {Shape{3, 2, 2, 3}, Shape{5, 3}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t c = shape[1];
    auto affine = [c](const std::vector<Tensor>& in) {
      Tensor rm = Tensor::zeros({c}, DType::F64), rv = Tensor::ones({c}, DType::F64);
      return ops::batch_norm(in[0], in[1], in[2], rm, rv, true);
    };
    EXPECT_GRADCHECK(affine, {randn_f64(shape, gen), randn_f64({c}, gen), randn_f64({c}, gen)});
    auto plain = [c](const std::vector<Tensor>& in) {
      Tensor rm = Tensor::zeros({c}, DType::F64), rv = Tensor::ones({c}, DType::F64);
      return ops::batch_norm(in[0], Tensor(), Tensor(), rm, rv, true, 0.3, 1e-3);
    };
    EXPECT_GRADCHECK(plain, {randn_f64(shape, gen)});
  }
}

TEST(BatchNormGrad, EvalFiniteDifferences) {
  Generator gen(22);
  using oodkit::testing::randn_f64;
  for (const Shape& shape : {Shape{3, 2, 2, 3}, Shape{5, 3}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t c = shape[1];
    const Tensor rm = Tensor::randn({c}, gen, DType::F64), rv = Tensor::uniform({c}, 0.5, 2.0, gen, DType::F64);
    auto f = [rm, rv](const std::vector<Tensor>& in) {
      Tensor m = rm, v = rv;
      return ops::batch_norm(in[0], in[1], in[2], m, v, false);
    };
    // x only (the OOD use case), then all three.
    EXPECT_GRADCHECK(f, {randn_f64(shape, gen), randn_f64({c}, gen, false), randn_f64({c}, gen, false)});
    EXPECT_GRADCHECK(f, {randn_f64(shape, gen), randn_f64({c}, gen), randn_f64({c}, gen)});
  }
}

}  // namespace
