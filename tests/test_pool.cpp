#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "framework/ops/elementwise.h"
#include "framework/ops/pool.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::f32_reduction;
using oodkit::testing::kF32;
using oodkit::testing::Tol;

namespace {

class PoolTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(PoolTest);

std::string opt_str(const ops::Pool2dOptions& o) {
  return "k" + std::to_string(o.kernel_h) + "x" + std::to_string(o.kernel_w) + " s" + std::to_string(o.stride_h) +
         "x" + std::to_string(o.stride_w) + " p" + std::to_string(o.pad_h) + "x" + std::to_string(o.pad_w);
}

// Naive pooling in double over host vectors: for each output, the window's valid elements.
// Returns y and dx for a given dy (scatter of the gradient: arg-max or dy/divisor).
struct NaivePool {
  std::vector<double> y, dx;
};
NaivePool naive_pool(const std::vector<double>& x, const std::vector<double>& dy, const Shape& s,
                     const ops::Pool2dOptions& o, bool max, bool include_pad) {
  const int64_t planes = s[0] * s[1], H = s[2], W = s[3];
  const int64_t OH = (H + 2 * o.pad_h - o.kernel_h) / o.stride_h + 1;
  const int64_t OW = (W + 2 * o.pad_w - o.kernel_w) / o.stride_w + 1;
  NaivePool r;
  r.y.assign(size_t(planes * OH * OW), 0.0);
  r.dx.assign(x.size(), 0.0);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const size_t oi = size_t((p * OH + oh) * OW + ow);
        double best = -std::numeric_limits<double>::infinity(), sum = 0.0;
        int64_t best_i = -1, valid = 0;
        for (int64_t kh = 0; kh < o.kernel_h; ++kh)
          for (int64_t kw = 0; kw < o.kernel_w; ++kw) {
            const int64_t ih = oh * o.stride_h - o.pad_h + kh, iw = ow * o.stride_w - o.pad_w + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;  // padding: -inf / 0
            const int64_t ii = (p * H + ih) * W + iw;
            ++valid;
            sum += x[size_t(ii)];
            if (x[size_t(ii)] > best) {
              best = x[size_t(ii)];
              best_i = ii;
            }
          }
        if (max) {
          r.y[oi] = best;
          r.dx[size_t(best_i)] += dy[oi];
        } else {
          const double div = include_pad ? double(o.kernel_h * o.kernel_w) : double(valid);
          r.y[oi] = sum / div;
          for (int64_t kh = 0; kh < o.kernel_h; ++kh)
            for (int64_t kw = 0; kw < o.kernel_w; ++kw) {
              const int64_t ih = oh * o.stride_h - o.pad_h + kh, iw = ow * o.stride_w - o.pad_w + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              r.dx[size_t((p * H + ih) * W + iw)] += dy[oi] / div;
            }
        }
      }
  return r;
}

std::vector<double> as_f64(const Tensor& t) { return t.to(DType::F64).cpu().to_vector<double>(); }

const std::vector<ops::Pool2dOptions>& option_cases() {
  static const std::vector<ops::Pool2dOptions> cases = {
      ops::Pool2dOptions::square(2, 2),    ops::Pool2dOptions::square(3, 2, 1), ops::Pool2dOptions::square(3, 1, 1),
      ops::Pool2dOptions::square(1, 1),    ops::Pool2dOptions::square(4, 3, 2), {3, 2, 2, 1, 1, 0},
      {2, 3, 1, 2, 1, 1},                  {2, 2, 3, 3, 0, 0},                   {7, 6, 1, 1, 0, 0},
  };
  return cases;
}

// Forward and backward of max / avg pooling on the device against the naive loops.
TEST_P(PoolTest, MatchesNaiveLoops) {
  const Shape s{2, 3, 7, 6};
  for (const ops::Pool2dOptions& o : option_cases()) {
    for (int mode = 0; mode < 3; ++mode) {  // max, avg including padding, avg excluding padding
      SCOPED_TRACE(opt_str(o) + " mode " + std::to_string(mode));
      const bool max = mode == 0, include_pad = mode == 1;
      Tensor x = Tensor::randn(s, gen);
      Tensor xd = x.to(device()).clone().set_requires_grad(true);
      Tensor y = max ? ops::max_pool2d(xd, o) : ops::avg_pool2d(xd, o, include_pad);
      Tensor dy = Tensor::randn(y.shape(), gen);
      const NaivePool ref = naive_pool(as_f64(x), as_f64(dy), s, o, max, include_pad);
      const int64_t window = int64_t(o.kernel_h) * o.kernel_w;
      EXPECT_ALL_CLOSE(y, Tensor::from_vector(ref.y, y.shape()), max ? kF32 : f32_reduction(window));
      y.backward(dy.to(device()));
      EXPECT_ALL_CLOSE(xd.grad(), Tensor::from_vector(ref.dx, s), f32_reduction(window));
    }
  }
}

TEST_P(PoolTest, MaxPoolHandWorked4x4) {
  const std::vector<float> v = {1, 5, 2, 0, 3, 4, 8, 7, 9, 6, -1, -2, 0, 10, 3, 11};
  Tensor x = Tensor::from_vector(v, {1, 1, 4, 4}).to(device()).set_requires_grad(true);
  EXPECT_ALL_CLOSE(ops::max_pool2d(x, ops::Pool2dOptions::square(2, 2)),
                   Tensor::from_vector<float>({5, 8, 10, 11}, {1, 1, 2, 2}), kF32);
  Tensor y = ops::max_pool2d(x, ops::Pool2dOptions::square(3, 1, 1));
  EXPECT_ALL_CLOSE(y, Tensor::from_vector<float>({5, 8, 8, 8, 9, 9, 8, 8, 10, 10, 11, 11, 10, 10, 11, 11}, {1, 1, 4, 4}),
                   kF32);
  ops::sum(y).backward();  // each output's 1 goes to its arg-max
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector<float>({0, 1, 0, 0, 0, 0, 5, 0, 2, 0, 0, 0, 0, 4, 0, 4}, {1, 1, 4, 4}),
                   kF32);
  // All-negative input: padding (-inf) never wins.
  Tensor neg = Tensor::from_vector<float>({-3, -1, -4, -2}, {1, 1, 2, 2}).to(device());
  EXPECT_ALL_CLOSE(ops::max_pool2d(neg, ops::Pool2dOptions::square(3, 1, 1)),
                   Tensor::full({1, 1, 2, 2}, -1.0), kF32);
}

TEST_P(PoolTest, MaxPoolTiesGoToFirstMax) {
  // 2x2 window of equal values: the gradient goes to the top-left element.
  Tensor x = Tensor::full({1, 1, 2, 2}, 1.0).to(device()).set_requires_grad(true);
  ops::sum(ops::max_pool2d(x, ops::Pool2dOptions::square(2, 2))).backward();
  EXPECT_ALL_CLOSE(x.grad(), Tensor::from_vector<float>({1, 0, 0, 0}, {1, 1, 2, 2}), kF32);
  // Overlapping windows over [3 3 3]: each window picks its own leftmost element.
  Tensor r = Tensor::full({1, 1, 1, 3}, 3.0).to(device()).set_requires_grad(true);
  ops::sum(ops::max_pool2d(r, {1, 2, 1, 1, 0, 0})).backward();
  EXPECT_ALL_CLOSE(r.grad(), Tensor::from_vector<float>({1, 1, 0}, {1, 1, 1, 3}), kF32);
  // Many ties (values in {0, 1, 2}): the device routes every gradient like the CPU.
  Tensor t = Tensor::empty({2, 3, 9, 8});
  float* pt = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) pt[i] = float(gen.randint(3));
  for (const ops::Pool2dOptions& o : option_cases()) {
    SCOPED_TRACE(opt_str(o));
    auto run = [&](Device d) {
      Tensor xd = t.to(d).clone().set_requires_grad(true);
      Tensor y = ops::max_pool2d(xd, o);
      Generator g2(7);
      y.backward(Tensor::randn(y.shape(), g2, DType::F32, d));
      return std::make_pair(y, xd.grad());
    };
    const auto ref = run(Device::cpu()), got = run(device());
    EXPECT_ALL_CLOSE(got.first, ref.first, kF32);
    EXPECT_ALL_CLOSE(got.second, ref.second, kF32);
  }
}

TEST_P(PoolTest, AvgPoolHandWorked4x4) {
  std::vector<float> v(16);
  std::iota(v.begin(), v.end(), 1.0f);  // 1..16 row-major
  Tensor x = Tensor::from_vector(v, {1, 1, 4, 4}).to(device());
  EXPECT_ALL_CLOSE(ops::avg_pool2d(x, ops::Pool2dOptions::square(2, 2)),
                   Tensor::from_vector<float>({3.5, 5.5, 11.5, 13.5}, {1, 1, 2, 2}), kF32);
  // k3 s2 p1: window sums 14, 30, 57, 99 over 4, 6, 6, 9 valid elements.
  const auto o = ops::Pool2dOptions::square(3, 2, 1);
  for (bool include : {true, false}) {
    SCOPED_TRACE(include ? "include pad" : "exclude pad");
    Tensor xg = x.clone().set_requires_grad(true);
    Tensor y = ops::avg_pool2d(xg, o, include);
    const std::vector<double> want = include ? std::vector<double>{14.0 / 9, 30.0 / 9, 57.0 / 9, 11}
                                             : std::vector<double>{3.5, 5, 9.5, 11};
    EXPECT_ALL_CLOSE(y, Tensor::from_vector(want, {1, 1, 2, 2}), kF32);
    ops::sum(y).backward();
    // Rows 0..3 lie in windows {0}, {0, 1}, {1}, {1}; likewise columns.
    const double a = 1.0 / 4, b = 1.0 / 6, c = 1.0 / 9;
    const std::vector<double> dx =
        include ? std::vector<double>{1 * c, 2 * c, 1 * c, 1 * c, 2 * c, 4 * c, 2 * c, 2 * c,
                                      1 * c, 2 * c, 1 * c, 1 * c, 1 * c, 2 * c, 1 * c, 1 * c}
                : std::vector<double>{a,     a + b, b,     b,     a + b, a + 2 * b + c, b + c, b + c,
                                      b,     b + c, c,     c,     b,     b + c,         c,     c};
    EXPECT_ALL_CLOSE(xg.grad(), Tensor::from_vector(dx, {1, 1, 4, 4}), kF32);
  }
}

TEST_P(PoolTest, GlobalAvgPoolMatchesNaive) {
  // Sizes covering every kernel path: 1, 3, 4x4, 7x7, 8x8, 10x10, 32x32, 33x33, 64x64; plane
  // counts that are not multiples of the rows handled per warp / block.
  const std::vector<std::pair<int64_t, int64_t>> hws = {{1, 1}, {1, 3},   {4, 4},   {7, 7},  {8, 8},
                                                        {10, 10}, {32, 32}, {33, 33}, {64, 64}};
  for (const auto& [h, w] : hws) {
    for (int64_t n : {1, 3}) {
      const Shape s{n, 11, h, w};
      SCOPED_TRACE(shape_str(s));
      Tensor x = ops::add_scalar(Tensor::randn(s, gen), 0.5);
      Tensor xd = x.to(device()).clone().set_requires_grad(true);
      Tensor y = ops::global_avg_pool(xd);
      const std::vector<double> xv = as_f64(x);
      const int64_t hw = h * w;
      std::vector<double> want(size_t(n * 11), 0.0);
      for (size_t r = 0; r < want.size(); ++r) {
        for (int64_t j = 0; j < hw; ++j) want[r] += xv[r * size_t(hw) + size_t(j)];
        want[r] /= double(hw);
      }
      EXPECT_ALL_CLOSE(y, Tensor::from_vector(want, {n, 11}), f32_reduction(hw));
      Tensor dy = Tensor::randn({n, 11}, gen);
      y.backward(dy.to(device()));
      const std::vector<double> dyv = as_f64(dy);
      std::vector<double> dx(xv.size());
      for (size_t i = 0; i < dx.size(); ++i) dx[i] = dyv[i / size_t(hw)] / double(hw);
      EXPECT_ALL_CLOSE(xd.grad(), Tensor::from_vector(dx, s), kF32);
    }
  }
}

// Device vs CPU on the same float32 inputs, forward and backward, all three ops.
TEST_P(PoolTest, DeviceMatchesCpu) {
  const Shape s{4, 5, 12, 10};
  Tensor x = Tensor::randn(s, gen);
  for (int op = 0; op < 4; ++op) {
    SCOPED_TRACE("op " + std::to_string(op));
    const auto o = ops::Pool2dOptions::square(3, 2, 1);
    auto f = [&](const Tensor& t) {
      switch (op) {
        case 0: return ops::max_pool2d(t, o);
        case 1: return ops::avg_pool2d(t, o, true);
        case 2: return ops::avg_pool2d(t, o, false);
        default: return ops::global_avg_pool(t);
      }
    };
    auto run = [&](Device d) {
      Tensor xd = x.to(d).clone().set_requires_grad(true);
      Tensor y = f(xd);
      Generator g2(11);
      y.backward(Tensor::randn(y.shape(), g2, DType::F32, d));
      return std::make_pair(y, xd.grad());
    };
    const auto ref = run(Device::cpu()), got = run(device());
    EXPECT_ALL_CLOSE(got.first, ref.first, op == 3 ? f32_reduction(120) : f32_reduction(9));
    EXPECT_ALL_CLOSE(got.second, ref.second, f32_reduction(9));
  }
}

TEST_P(PoolTest, BadArgumentsThrow) {
  Tensor x = Tensor::randn({1, 2, 2, 2}, gen, DType::F32, device());
  using O = ops::Pool2dOptions;
  // Kernel 5 larger than the padded input 2 + 2*1 = 4.
  EXPECT_THROW(ops::max_pool2d(x, O::square(5, 1, 1)), Error);
  EXPECT_THROW(ops::avg_pool2d(x, O::square(5, 1, 1)), Error);
  EXPECT_THROW(ops::max_pool2d(x, O::square(3, 1, 0)), Error);
  EXPECT_THROW(ops::max_pool2d(x, {1, 3, 1, 1, 0, 0}), Error);
  // Padding more than half the kernel (PyTorch forbids it).
  EXPECT_THROW(ops::max_pool2d(x, O::square(3, 1, 2)), Error);
  EXPECT_THROW(ops::avg_pool2d(x, O::square(2, 1, 2)), Error);
  EXPECT_THROW(ops::max_pool2d(x, {3, 2, 1, 1, 1, 2}), Error);
  EXPECT_THROW(ops::max_pool2d(x, O::square(2, 0)), Error);     // stride 0
  EXPECT_THROW(ops::max_pool2d(x, O::square(0, 1)), Error);     // kernel 0
  EXPECT_THROW(ops::max_pool2d(x, O::square(2, 1, -1)), Error);  // negative padding
  EXPECT_THROW(ops::max_pool2d(Tensor::randn({2, 4, 4}, gen, DType::F32, device()), O::square(2, 2)), Error);
  EXPECT_THROW(ops::max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::I32, device()), O::square(2, 2)), Error);
  EXPECT_THROW(ops::global_avg_pool(Tensor::randn({2, 4}, gen, DType::F32, device())), Error);
  EXPECT_THROW(ops::global_avg_pool(Tensor::zeros({1, 1, 4, 4}, DType::I32, device())), Error);
  EXPECT_THROW(ops::global_avg_pool(Tensor::zeros({1, 1, 0, 4}, DType::F32, device())), Error);
  // Edge cases that are valid: kernel == padded input; pad == kernel/2.
  EXPECT_EQ(ops::max_pool2d(x, O::square(4, 1, 1)).shape(), (Shape{1, 2, 1, 1}));
  EXPECT_EQ(ops::avg_pool2d(x, O::square(2, 1, 1)).shape(), (Shape{1, 2, 3, 3}));
}

TEST(PoolGrad, FiniteDifferences) {
  Generator gen(31);
  using oodkit::testing::randn_f64;
  // Distinct values 0.05 apart (shuffled), so the finite-difference steps never change the arg-max.
  const Shape s{2, 2, 5, 6};
  std::vector<double> v(size_t(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.05 * double(i) - 1.5;
  std::shuffle(v.begin(), v.end(), gen.engine());
  Tensor distinct = Tensor::from_vector(v, s);
  distinct.set_requires_grad(true);
  for (const ops::Pool2dOptions& o : {ops::Pool2dOptions::square(2, 2), ops::Pool2dOptions::square(3, 2, 1),
                                      ops::Pool2dOptions::square(3, 1, 1), ops::Pool2dOptions{2, 3, 1, 2, 1, 1}}) {
    SCOPED_TRACE(opt_str(o));
    EXPECT_GRADCHECK([o](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], o); }, {distinct});
    EXPECT_GRADCHECK([o](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], o, true); },
                     {randn_f64(s, gen)});
    EXPECT_GRADCHECK([o](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], o, false); },
                     {randn_f64(s, gen)});
  }
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return ops::global_avg_pool(in[0]); }, {randn_f64(s, gen)});
}

}  // namespace
