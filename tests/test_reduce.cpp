// Reductions along a dim (sum, max, argmax), expand and the row/column broadcast of add/sub/mul,
// and the fused all_finite check (framework/ops/reduce.h), against naive loops in double.
#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::randn_f64;
using oodkit::testing::Tol;

namespace {

class ReduceTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ReduceTest);

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr Tol kExact{0.0, 0.0};

// Naive reference: every element's multi-index, with `dim` dropped, names its output element.
struct NaiveReduce {
  std::vector<double> sum, max;
  std::vector<int64_t> argmax;
};
NaiveReduce naive_reduce(const Tensor& x, int dim) {
  const std::vector<double> v = x.cpu().to(DType::F64).to_vector<double>();
  const Shape& s = x.shape();
  const int nd = int(s.size());
  if (dim < 0) dim += nd;
  int64_t out_n = 1;
  for (int d = 0; d < nd; ++d)
    if (d != dim) out_n *= s[size_t(d)];
  NaiveReduce r{std::vector<double>(size_t(out_n), 0.0), std::vector<double>(size_t(out_n), -kInf),
                std::vector<int64_t>(size_t(out_n), -1)};
  std::vector<int64_t> idx(size_t(nd), 0);
  for (size_t e = 0; e < v.size(); ++e) {
    int64_t out = 0;
    for (int d = 0; d < nd; ++d)
      if (d != dim) out = out * s[size_t(d)] + idx[size_t(d)];
    const size_t o = size_t(out);
    r.sum[o] += v[e];
    const bool first_nan = std::isnan(v[e]) && !std::isnan(r.max[o]);
    if (r.argmax[o] < 0 || first_nan || (!std::isnan(r.max[o]) && v[e] > r.max[o])) {
      r.max[o] = v[e];
      r.argmax[o] = idx[size_t(dim)];
    }
    for (int d = nd - 1; d >= 0; --d) {  // next multi-index, last dim fastest
      if (++idx[size_t(d)] < s[size_t(d)]) break;
      idx[size_t(d)] = 0;
    }
  }
  return r;
}

Shape reduced(const Shape& s, int dim, bool keepdim) {
  if (dim < 0) dim += int(s.size());
  Shape out;
  for (int d = 0; d < int(s.size()); ++d)
    if (d != dim) out.push_back(s[size_t(d)]);
    else if (keepdim) out.push_back(1);
  return out;
}

Tensor from(const std::vector<double>& v, const Shape& s, DType t, Device d) {
  return Tensor::from_vector(v, s).to(t).to(d);
}

TEST_P(ReduceTest, SumMaxArgmaxMatchNaiveLoopsOnEveryDimOfARank3Tensor) {
  const Shape shape{3, 4, 5};
  const Tensor x = Tensor::randn(shape, gen).to(device());
  for (int dim = -3; dim < 3; ++dim)
    for (bool keepdim : {false, true}) {
      const NaiveReduce ref = naive_reduce(x, dim);
      const Shape out = reduced(shape, dim, keepdim);
      const Tensor s = ops::sum(x, dim, keepdim), m = ops::max(x, dim, keepdim), a = ops::argmax(x, dim, keepdim);
      EXPECT_EQ(s.shape(), out);
      EXPECT_EQ(m.shape(), out);
      EXPECT_EQ(a.shape(), out);
      EXPECT_EQ(a.dtype(), DType::I64);
      EXPECT_EQ(a.device(), device());
      EXPECT_ALL_CLOSE(s, Tensor::from_vector(ref.sum, out), f32_reduction(shape[size_t((dim + 3) % 3)]))
          << "dim " << dim;
      EXPECT_ALL_CLOSE(m, Tensor::from_vector(ref.max, out), kExact) << "dim " << dim;
      EXPECT_EQ(a.to_vector<int64_t>(), ref.argmax) << "dim " << dim;
    }
}

TEST_P(ReduceTest, TiesGoToTheFirstIndex) {
  // Small integers: many exact ties along every dim.
  std::vector<double> v = Tensor::uniform({5, 6, 7}, 0.0, 3.0, gen).to(DType::F64).to_vector<double>();
  for (double& e : v) e = std::floor(e);
  const Tensor xi = from(v, {5, 6, 7}, DType::F32, device());
  for (int dim = 0; dim < 3; ++dim) {
    const NaiveReduce ref = naive_reduce(xi, dim);
    EXPECT_EQ(ops::argmax(xi, dim).to_vector<int64_t>(), ref.argmax) << "dim " << dim;
  }
  // Hand-worked: the row [2, 5, 5, 1] has its maximum 5 first at index 1.
  const Tensor row = from({2, 5, 5, 1, 7, 7, 7, 7}, {2, 4}, DType::F32, device());
  EXPECT_EQ(ops::argmax(row, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
}

TEST_P(ReduceTest, NanIsTheMaximumAndTheFirstNanWins) {
  const Tensor x = from({1, kNan, 3, kNan,   // NaN after a number, twice: index 1
                         kNan, 9, 2, 1,      // NaN first
                         -kInf, -kInf, -kInf, -kInf,  // all -inf: index 0
                         4, kInf, kInf, 0},  // +inf tie: index 1
                        {4, 4}, DType::F32, device());
  EXPECT_EQ(ops::argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1}));
  const std::vector<double> m = ops::max(x, 1).cpu().to(DType::F64).to_vector<double>();
  EXPECT_TRUE(std::isnan(m[0]));
  EXPECT_TRUE(std::isnan(m[1]));
  EXPECT_EQ(m[2], -kInf);
  EXPECT_EQ(m[3], kInf);
  EXPECT_EQ(ops::argmax(x, 1).to_vector<int64_t>(), naive_reduce(x, 1).argmax);
  EXPECT_EQ(ops::argmax(x, 0).to_vector<int64_t>(), naive_reduce(x, 0).argmax);
  EXPECT_TRUE(std::isnan(ops::sum(x, 1).cpu().to_vector<float>()[0]));
}

TEST_P(ReduceTest, EmptyDims) {
  // Reducing an empty dim: sum is 0, max and argmax throw.
  const Tensor e = Tensor::empty({3, 0, 2}, DType::F32, device());
  const Tensor s = ops::sum(e, 1);
  EXPECT_EQ(s.shape(), (Shape{3, 2}));
  EXPECT_EQ(s.cpu().to_vector<float>(), std::vector<float>(6, 0.f));
  EXPECT_THROW(ops::max(e, 1), Error);
  EXPECT_THROW(ops::argmax(e, -2), Error);
  // Reducing a non-empty dim of an empty tensor: an empty result.
  EXPECT_EQ(ops::sum(e, 0).shape(), (Shape{0, 2}));
  EXPECT_EQ(ops::max(e, 2, true).shape(), (Shape{3, 0, 1}));
  EXPECT_EQ(ops::argmax(e, 0).numel(), 0);
}

TEST_P(ReduceTest, BadArgumentsThrow) {
  const Tensor x = Tensor::zeros({2, 3}, DType::F32, device());
  EXPECT_THROW(ops::sum(x, 2), Error);
  EXPECT_THROW(ops::max(x, -3), Error);
  EXPECT_THROW(ops::argmax(Tensor::zeros({}, DType::F32, device()), 0), Error);
  EXPECT_THROW(ops::sum(Tensor::zeros({2, 3}, DType::I64, device()), 0), Error);
  EXPECT_THROW(ops::sum(Tensor(), 0), Error);
  EXPECT_THROW(ops::expand(x, {2, 3, 1}), Error);
  EXPECT_THROW(ops::expand(Tensor::zeros({2, 2}, DType::F32, device()), {2, 3}), Error);
  EXPECT_THROW(ops::sub(x, Tensor::zeros({3, 3}, DType::F32, device())), Error);
  EXPECT_THROW(ops::add(x, Tensor::zeros({3}, DType::F32, device())), Error);  // ranks differ
}

TEST_P(ReduceTest, CudaMatchesTheCpuExactly) {
  if (!on_cuda()) GTEST_SKIP() << "compares CUDA with the CPU";
  // Same order, same double accumulator: the sums agree to the last bit, max/argmax exactly.
  const Tensor x = ops::scale(Tensor::randn({7, 300, 9}, gen), 100.0);
  const Tensor xd = x.to(device());
  for (int dim = 0; dim < 3; ++dim) {
    EXPECT_ALL_CLOSE(ops::sum(xd, dim), ops::sum(x, dim), kExact) << "dim " << dim;
    EXPECT_ALL_CLOSE(ops::max(xd, dim), ops::max(x, dim), kExact) << "dim " << dim;
    EXPECT_EQ(ops::argmax(xd, dim).to_vector<int64_t>(), ops::argmax(x, dim).to_vector<int64_t>());
  }
  const Tensor big = Tensor::randn({3, 5000}, gen);
  EXPECT_ALL_CLOSE(ops::sum(big.to(device()), 1), ops::sum(big, 1), kExact);
}

TEST_P(ReduceTest, Rank1AndRank4MatchNaiveLoops) {
  const Tensor v = ops::scale(Tensor::randn({1000}, gen), 10.0).to(device());
  for (bool keepdim : {false, true}) {
    const NaiveReduce ref = naive_reduce(v, 0);
    const Shape out = reduced(v.shape(), 0, keepdim);
    EXPECT_EQ(ops::sum(v, 0, keepdim).shape(), out);
    EXPECT_ALL_CLOSE(ops::sum(v, 0, keepdim), Tensor::from_vector(ref.sum, out), f32_reduction(1000));
    EXPECT_ALL_CLOSE(ops::max(v, -1, keepdim), Tensor::from_vector(ref.max, out), kExact);
    EXPECT_EQ(ops::argmax(v, 0, keepdim).to_vector<int64_t>(), ref.argmax);
  }
  const Tensor x = Tensor::randn({3, 4, 5, 6}, gen).to(device());
  for (int dim = -4; dim < 4; ++dim)
    for (bool keepdim : {false, true}) {
      const NaiveReduce ref = naive_reduce(x, dim);
      const Shape out = reduced(x.shape(), dim, keepdim);
      EXPECT_EQ(ops::sum(x, dim, keepdim).shape(), out) << "dim " << dim;
      EXPECT_ALL_CLOSE(ops::sum(x, dim, keepdim), Tensor::from_vector(ref.sum, out), f32_reduction(6)) << "dim " << dim;
      EXPECT_ALL_CLOSE(ops::max(x, dim, keepdim), Tensor::from_vector(ref.max, out), kExact) << "dim " << dim;
      EXPECT_EQ(ops::argmax(x, dim, keepdim).to_vector<int64_t>(), ref.argmax) << "dim " << dim;
    }
}

TEST_P(ReduceTest, ViewsWithAnOffsetAreReducedFromTheirOwnRows) {
  // narrow() gives a view whose data starts rows into its base: the kernels must honour the offset.
  const Tensor base = Tensor::randn({9, 7, 5}, gen).to(device());
  const Tensor view = base.narrow(3, 4);  // rows 3..6
  const Tensor copy = view.clone();       // the same values at offset 0
  ASSERT_EQ(view.shape(), (Shape{4, 7, 5}));
  for (int dim = 0; dim < 3; ++dim) {
    const NaiveReduce ref = naive_reduce(copy, dim);
    const Shape out = reduced(view.shape(), dim, false);
    EXPECT_ALL_CLOSE(ops::sum(view, dim), Tensor::from_vector(ref.sum, out), f32_reduction(7)) << "dim " << dim;
    EXPECT_ALL_CLOSE(ops::max(view, dim), Tensor::from_vector(ref.max, out), kExact) << "dim " << dim;
    EXPECT_EQ(ops::argmax(view, dim).to_vector<int64_t>(), ref.argmax) << "dim " << dim;
  }
  const Tensor row = Tensor::randn({6, 1, 5}, gen).to(device()).narrow(2, 1);  // {1, 1, 5} at row 2
  const std::vector<float> vr = row.cpu().to_vector<float>(), ve = ops::expand(row, {1, 3, 5}).cpu().to_vector<float>();
  for (int j = 0; j < 3; ++j)
    for (int i = 0; i < 5; ++i) EXPECT_EQ(ve[size_t(j * 5 + i)], vr[size_t(i)]);
  // all_finite on a view reads the view's elements only: a NaN in the base outside it is not seen.
  std::vector<float> vals(40, 1.f);
  vals[0] = float(kNan);
  vals[39] = float(kNan);
  const Tensor with_nan = Tensor::from_vector(vals, {10, 4}).to(device());
  EXPECT_EQ(ops::all_finite({with_nan.narrow(1, 8)}).item(), 1.0);
  EXPECT_EQ(ops::all_finite({with_nan.narrow(1, 9)}).item(), 0.0);
  EXPECT_EQ(ops::all_finite({with_nan.narrow(0, 1)}).item(), 0.0);
}

TEST_P(ReduceTest, ExpandToAnEmptyDim) {
  const Tensor col = Tensor::randn({4, 1}, gen).to(device());
  const Tensor e = ops::expand(col, {4, 0});
  EXPECT_EQ(e.shape(), (Shape{4, 0}));
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.device(), device());
  EXPECT_EQ(ops::expand(Tensor::zeros({1, 3}, DType::F32, device()), {0, 3}).shape(), (Shape{0, 3}));
  EXPECT_EQ(ops::sum(ops::expand(col, {4, 0}), 1).cpu().to_vector<float>(), std::vector<float>(4, 0.f));
}

TEST_P(ReduceTest, ExpandAndBroadcastMatchNaiveLoops) {
  const Tensor a = Tensor::randn({4, 5}, gen).to(device());
  const Tensor row = Tensor::randn({1, 5}, gen).to(device()), col = Tensor::randn({4, 1}, gen).to(device());
  const std::vector<float> va = a.cpu().to_vector<float>(), vr = row.cpu().to_vector<float>(),
                           vc = col.cpu().to_vector<float>();
  std::vector<double> sub_row(20), add_col(20), mul_row(20), exp_col(20);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j) {
      const size_t e = size_t(i * 5 + j);
      sub_row[e] = double(va[e]) - double(vr[size_t(j)]);
      add_col[e] = double(va[e]) + double(vc[size_t(i)]);
      mul_row[e] = double(va[e]) * double(vr[size_t(j)]);
      exp_col[e] = vc[size_t(i)];
    }
  EXPECT_ALL_CLOSE(ops::sub(a, row), Tensor::from_vector(sub_row, {4, 5}), kF32);
  EXPECT_ALL_CLOSE(ops::add(a, col), Tensor::from_vector(add_col, {4, 5}), kF32);
  EXPECT_ALL_CLOSE(ops::mul(a, row), Tensor::from_vector(mul_row, {4, 5}), kF32);
  EXPECT_ALL_CLOSE(ops::expand(col, {4, 5}), Tensor::from_vector(exp_col, {4, 5}), kExact);
  // Both dims repeated, rank 3.
  const Tensor one = Tensor::full({1, 1, 1}, 2.5, DType::F32, device());
  EXPECT_EQ(ops::expand(one, {2, 3, 4}).cpu().to_vector<float>(), std::vector<float>(24, 2.5f));
  const Tensor mid = Tensor::randn({2, 1, 3}, gen).to(device());
  const std::vector<float> vm = mid.cpu().to_vector<float>(), em = ops::expand(mid, {2, 4, 3}).cpu().to_vector<float>();
  for (int o = 0; o < 2; ++o)
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 3; ++i) EXPECT_EQ(em[size_t((o * 4 + j) * 3 + i)], vm[size_t(o * 3 + i)]);
}

TEST_P(ReduceTest, MaxGradientGoesToTheFirstMaximum) {
  const Tensor x = from({1, 4, 4, 2, 3, 3, 0, 3}, {2, 4}, DType::F32, device()).set_requires_grad();
  const Tensor g = from({10, 20}, {2}, DType::F32, device());
  ops::max(x, 1).backward(g);
  EXPECT_EQ(x.grad().cpu().to_vector<float>(), (std::vector<float>{0, 10, 0, 0, 20, 0, 0, 0}));
}

TEST_P(ReduceTest, MaxKeepdimGradientGoesToTheFirstMaximum) {
  // Hand-worked: rank 3, reduced along the middle dim with keepdim; ties go to the first index.
  const Tensor x = from({1, 9, 7, 2,   // [0, :, 0] = {1, 7}, [0, :, 1] = {9, 2}
                         3, 3, 3, 5},  // [1, :, 0] = {3, 3} tie -> index 0, [1, :, 1] = {3, 5}
                        {2, 2, 2}, DType::F32, device()).set_requires_grad();
  const Tensor m = ops::max(x, 1, true);
  ASSERT_EQ(m.shape(), (Shape{2, 1, 2}));
  m.backward(from({10, 20, 30, 40}, {2, 1, 2}, DType::F32, device()));
  EXPECT_EQ(x.grad().device(), device());
  EXPECT_EQ(x.grad().cpu().to_vector<float>(), (std::vector<float>{0, 20, 10, 0, 30, 0, 0, 40}));
}

TEST_P(ReduceTest, GradientsOnTheDeviceMatchTheCpu) {
  const Tensor x = Tensor::randn({3, 4, 5}, gen);
  const Tensor w = Tensor::randn({3, 1, 5}, gen);
  for (int dim = 0; dim < 3; ++dim) {
    const Tensor r = Tensor::randn(reduced(x.shape(), dim, false), gen);
    std::vector<Tensor> grads;
    for (Device d : {Device::cpu(), device()}) {
      Tensor xd = x.clone().to(d);
      xd.set_requires_grad();
      ops::add(ops::sum(xd, dim), ops::max(xd, dim)).backward(r.to(d));
      grads.push_back(xd.grad());
    }
    EXPECT_ALL_CLOSE(grads[1], grads[0], kExact) << "dim " << dim;
  }
  std::vector<Tensor> grads;
  for (Device d : {Device::cpu(), device()}) {
    Tensor wd = w.clone().to(d);
    wd.set_requires_grad();
    ops::sum(ops::mul(x.to(d), wd)).backward();
    grads.push_back(wd.grad());
  }
  EXPECT_ALL_CLOSE(grads[1], grads[0], kExact);
}

// Finite-difference gradient checks in float64 (CPU only).
class ReduceGradTest : public ::testing::Test {
 protected:
  Generator gen{99};
};

// float64 is CPU-only: a plain CPU test, so that no CUDA instance exists to skip on a GPU machine
// (scripts/gpu_check.sh runs every */CUDA case and fails on a skip).
TEST_F(ReduceGradTest, Float64SumIsTheExactDoubleSum) {
  const Tensor x = randn_f64({4, 6, 3}, gen, false);
  for (int dim = 0; dim < 3; ++dim) {
    const NaiveReduce ref = naive_reduce(x, dim);
    EXPECT_ALL_CLOSE(ops::sum(x, dim), Tensor::from_vector(ref.sum, reduced(x.shape(), dim, false)), (Tol{1e-14, 1e-14}));
    EXPECT_ALL_CLOSE(ops::max(x, dim), Tensor::from_vector(ref.max, reduced(x.shape(), dim, false)), kExact);
    EXPECT_EQ(ops::argmax(x, dim).to_vector<int64_t>(), ref.argmax);
  }
}

TEST_F(ReduceGradTest, SumAlongEveryDim) {
  const Tensor x = randn_f64({3, 4, 5}, gen);
  for (int dim = -3; dim < 3; ++dim)
    for (bool keepdim : {false, true})
      EXPECT_GRADCHECK([dim, keepdim](const std::vector<Tensor>& in) { return ops::sum(in[0], dim, keepdim); }, {x});
}

TEST_F(ReduceGradTest, MaxAlongEveryDim) {
  // Random normals: distinct values, so max is differentiable at x.
  const Tensor x = randn_f64({3, 4, 5}, gen);
  for (int dim = -3; dim < 3; ++dim)
    EXPECT_GRADCHECK([dim](const std::vector<Tensor>& in) { return ops::max(in[0], dim, dim == 1); }, {x});
}

TEST_F(ReduceGradTest, ExpandAndBroadcastBinaryOps) {
  const Tensor a = randn_f64({4, 5}, gen), row = randn_f64({1, 5}, gen), col = randn_f64({4, 1}, gen);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return ops::sub(in[0], in[1]); }, {a, row});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return ops::add(in[0], in[1]); }, {a, col});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return ops::mul(in[0], in[1]); }, {a, row});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return ops::mul(in[0], in[1]); }, {a, col});
  const Tensor one = randn_f64({1, 1, 3}, gen);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return ops::expand(in[0], {2, 4, 3}); }, {one});
}

// ---- all_finite -------------------------------------------------------------------------------

// Naive: every element of every defined tensor finite.
bool naive_all_finite(const std::vector<Tensor>& ts) {
  for (const Tensor& t : ts)
    if (t.defined())
      for (double v : t.cpu().to(DType::F64).to_vector<double>())
        if (!std::isfinite(v)) return false;
  return true;
}

TEST_P(ReduceTest, AllFiniteMatchesANaiveLoop) {
  const double fmax = double(FLT_MAX);
  // 150 tensors (three CUDA chunks of 64), sizes 0..~5000 (several blocks per tensor).
  std::vector<Tensor> ts;
  for (int t = 0; t < 150; ++t) {
    const int64_t n = (t * 37) % 5003;
    ts.push_back(t % 17 == 5 ? Tensor() : ops::scale(Tensor::randn({n}, gen), 1e30).to(device()));
  }
  // Largest finite magnitudes and denormals must not trip it.
  ts.push_back(from({fmax, fmax, double(FLT_MIN) / 4}, {3}, DType::F32, device()));
  ts.push_back(from({-fmax, -fmax, -0.0, 1}, {2, 2}, DType::F32, device()));
  ASSERT_TRUE(naive_all_finite(ts));
  EXPECT_EQ(ops::all_finite(ts).item(), 1.0);
  // One bad element, in each chunk and at either end of a tensor.
  for (double bad : {kNan, kInf, -kInf})
    for (size_t t : {size_t(1), size_t(70), size_t(149)}) {
      std::vector<Tensor> with = ts;
      const int64_t n = with[t].numel();
      ASSERT_GT(n, 1);
      std::vector<float> v = with[t].cpu().to_vector<float>();
      for (int64_t at : {int64_t(0), n - 1}) {
        std::vector<float> w = v;
        w[size_t(at)] = float(bad);
        with[t] = Tensor::from_vector(w, {n}).to(device());
        ASSERT_FALSE(naive_all_finite(with));
        const Tensor flag = ops::all_finite(with);
        EXPECT_EQ(flag.device(), device());
        EXPECT_EQ(flag.dtype(), DType::F32);
        EXPECT_EQ(flag.item(), 0.0) << "value " << bad << " in tensor " << t << " at " << at;
      }
    }
}

TEST_P(ReduceTest, AllFiniteOnALargeTensorSeesItsLastElement) {
  // 2^20 + 3 elements: more than one grid's worth (262,144 threads), so the grid-stride loop's
  // later passes and the tail are both exercised.
  const int64_t n = (int64_t(1) << 20) + 3;
  const Tensor zeros = Tensor::zeros({n}, DType::F32, device());
  EXPECT_EQ(ops::all_finite({zeros}).item(), 1.0);
  for (int64_t at : {int64_t(262144), int64_t(1) << 19, n - 1}) {
    std::vector<float> v(size_t(n), 0.f);
    v[size_t(at)] = float(kNan);
    EXPECT_EQ(ops::all_finite({Tensor::from_vector(v, {n}).to(device())}).item(), 0.0) << "NaN at " << at;
  }
}

TEST_P(ReduceTest, AllFiniteFloat64AndBadLists) {
  if (!on_cuda()) {
    const double dmax = std::numeric_limits<double>::max();
    const Tensor ok = from({dmax, -dmax, 1e-310}, {3}, DType::F64, device());
    EXPECT_EQ(ops::all_finite({ok, Tensor::ones({2}, DType::F32)}).item(), 1.0);
    for (double bad : {kNan, kInf, -kInf})
      EXPECT_EQ(ops::all_finite({ok, from({1, bad}, {2}, DType::F64, device())}).item(), 0.0) << bad;
  }
  EXPECT_EQ(ops::all_finite({Tensor::empty({0}, DType::F32, device())}).item(), 1.0);
  EXPECT_THROW(ops::all_finite({Tensor::zeros({2}, DType::I64, device())}), Error);
  if (on_cuda()) EXPECT_THROW(ops::all_finite({Tensor::zeros({2}, DType::F32, device()), Tensor::zeros({2})}), Error);
}

}  // namespace
