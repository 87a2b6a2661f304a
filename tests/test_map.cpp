// Elementwise maps (framework/ops/map.h): the CPU loops against naive loops, and every op built on
// them at sizes that cross the OpenMP threshold and span many CUDA blocks (n not a multiple of the
// block size), against naive per-element formulas written here. Outputs are NaN-poisoned
// (tests/main.cpp), so a skipped element fails.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/map.h"
#include "framework/optim.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::kF32;
using oodkit::testing::Tol;

namespace {

constexpr Tol kExact{0.0, 0.0};
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// (a + b) * c: an add then a multiply, no product to fuse, so any compiler gives the same bits.
struct AddMul {
  float operator()(float a, float b, float c) const { return (a + b) * c; }
};
// y[i] = x[i] + i
struct AddIndex {
  const float* x;
  float* y;
  void operator()(int64_t i) const { y[i] = x[i] + float(i); }
};

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(MapCpu, MapNAndForNWriteEveryElementOnce) {
  Generator gen(7);
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), ops::kMapParallelMin - 1, ops::kMapParallelMin + 5,
                    3 * ops::kMapParallelMin + 1}) {
    std::vector<float> a(n), b(n), c(n);
    for (int64_t i = 0; i < n; ++i) a[i] = float(gen.normal()), b[i] = float(gen.normal()), c[i] = float(gen.normal());
    // One sentinel past the end: it must stay NaN.
    std::vector<float> out(n + 1, kNaN), idx(n + 1, kNaN);
    ops::map_n(AddMul{}, n, out.data(), a.data(), b.data(), c.data());
    ops::for_n(n, AddIndex{a.data(), idx.data()});
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      bad += !same_bits(out[i], (a[i] + b[i]) * c[i]);
      bad += !same_bits(idx[i], a[i] + float(i));
    }
    EXPECT_EQ(bad, 0) << "n = " << n;
    EXPECT_TRUE(std::isnan(out[n]) && std::isnan(idx[n])) << "wrote past the end, n = " << n;
  }
}

class MapOpsTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(MapOpsTest);

// 1M + 3 elements: above kMapParallelMin on the CPU, ~4096 blocks of 256 threads on CUDA.
constexpr int64_t kLarge = (int64_t(1) << 20) + 3;

// f applied to each element of x (and y), on the CPU, as a float tensor of x's shape.
template <class F>
Tensor naive1(const Tensor& x, F f) {
  std::vector<float> v = x.to_vector<float>();
  for (float& e : v) e = f(e);
  return Tensor::from_vector(v, x.shape());
}
template <class F>
Tensor naive2(const Tensor& x, const Tensor& y, F f) {
  std::vector<float> v = x.to_vector<float>(), w = y.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = f(v[i], w[i]);
  return Tensor::from_vector(v, x.shape());
}

TEST_P(MapOpsTest, LargeForwardMatchesNaiveFormulas) {
  Tensor x = Tensor::uniform({kLarge}, -6.0, 6.0, gen), y = Tensor::randn({kLarge}, gen);
  Tensor dx = x.to(device()), dy = y.to(device());
  // Products and selections are exact on both devices; tanh/exp may differ by an ulp on CUDA.
  EXPECT_ALL_CLOSE(ops::add(dx, dy), naive2(x, y, [](float a, float b) { return a + b; }), kExact);
  EXPECT_ALL_CLOSE(ops::sub(dx, dy), naive2(x, y, [](float a, float b) { return a - b; }), kExact);
  EXPECT_ALL_CLOSE(ops::mul(dx, dy), naive2(x, y, [](float a, float b) { return a * b; }), kExact);
  EXPECT_ALL_CLOSE(ops::scale(dx, -0.5), naive1(x, [](float a) { return -0.5f * a; }), kExact);
  EXPECT_ALL_CLOSE(ops::add_scalar(dx, 0.25), naive1(x, [](float a) { return a + 0.25f; }), kExact);
  EXPECT_ALL_CLOSE(ops::relu(dx), naive1(x, [](float a) { return a > 0.0f ? a : 0.0f; }), kExact);
  EXPECT_ALL_CLOSE(ops::clamp(dx, -0.5, 0.75),
                   naive1(x, [](float a) { return std::fmin(std::fmax(a, -0.5f), 0.75f); }), kExact);
  EXPECT_ALL_CLOSE(ops::tanh(dx), naive1(x, [](float a) { return float(std::tanh(double(a))); }), kF32);
  EXPECT_ALL_CLOSE(ops::sigmoid(dx), naive1(x, [](float a) { return float(1.0 / (1.0 + std::exp(-double(a)))); }),
                   kF32);
}

TEST_P(MapOpsTest, LargeBackwardMatchesNaiveFormulas) {
  Tensor x = Tensor::uniform({kLarge}, -3.0, 3.0, gen), g = Tensor::randn({kLarge}, gen);
  // dx of op at x for the incoming gradient g.
  auto grad = [&](Tensor (*op)(const Tensor&)) {
    Tensor xd = x.to(device()).clone().set_requires_grad(true);
    op(xd).backward(g.to(device()));
    return xd.grad();
  };
  EXPECT_ALL_CLOSE(grad([](const Tensor& t) { return ops::relu(t); }),
                   naive2(x, g, [](float a, float gv) { return a > 0.0f ? gv : 0.0f; }), kExact);
  EXPECT_ALL_CLOSE(grad([](const Tensor& t) { return ops::clamp(t, -0.5, 0.75); }),
                   naive2(x, g, [](float a, float gv) { return a > -0.5f && a < 0.75f ? gv : 0.0f; }), kExact);
  EXPECT_ALL_CLOSE(grad([](const Tensor& t) { return ops::tanh(t); }), naive2(x, g, [](float a, float gv) {
                     const double t = std::tanh(double(a));
                     return float(gv * (1.0 - t * t));
                   }),
                   kF32);
  EXPECT_ALL_CLOSE(grad([](const Tensor& t) { return ops::sigmoid(t); }), naive2(x, g, [](float a, float gv) {
                     const double s = 1.0 / (1.0 + std::exp(-double(a)));
                     return float(gv * s * (1.0 - s));
                   }),
                   kF32);
  EXPECT_ALL_CLOSE(grad([](const Tensor& t) { return ops::mul(t, t); }),
                   naive2(x, g, [](float a, float gv) { return 2.0f * (gv * a); }), kExact);
}

TEST_P(MapOpsTest, LargeDropoutMatchesCounterMask) {
  const double p = 0.3;
  Tensor x = Tensor::randn({kLarge}, gen);
  Generator g1(99), g2(99);
  const uint64_t seed = g2.next_u64();  // the draw dropout takes from g1
  const float scale = float(1.0 / (1.0 - p));
  std::vector<float> v = x.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(counter_uniform(seed, uint64_t(i))) >= p ? v[i] * scale : 0.0f;
  EXPECT_ALL_CLOSE(ops::dropout(x.to(device()), p, true, g1), Tensor::from_vector(v, x.shape()), kExact);
}

// The optimisers' for_n functors at a size spanning many blocks, against the CPU (CUDA only: the
// update formulas themselves are checked against torch.optim in test_optim.cpp). Covers the cases
// test_optim's DeviceMatchesCpu does not: SGD without momentum (no buffer), SGD with dampening,
// and Adam with coupled weight decay.
TEST_P(MapOpsTest, LargeOptimiserStepsMatchCpu) {
  if (!on_cuda()) GTEST_SKIP() << "compares the CUDA update with the CPU one";
  Tensor p0 = Tensor::randn({kLarge}, gen);
  std::vector<Tensor> grads;
  for (int s = 0; s < 3; ++s) grads.push_back(Tensor::randn({kLarge}, gen));
  for (int which = 0; which < 3; ++which) {
    auto run = [&](Device d) {
      Tensor p = p0.to(d).clone().set_requires_grad(true);
      std::unique_ptr<optim::Optimizer> opt;
      if (which == 0) opt = std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{0.1, 0, 0, 1e-2, false});
      if (which == 1) opt = std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{0.1, 0.9, 0.2, 0, false});
      if (which == 2)
        opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions{1e-2, 0.9, 0.99, 1e-8, 0.1, false});
      for (const Tensor& g : grads) {
        p.set_grad(g.to(d));
        opt->step();
      }
      return p;
    };
    EXPECT_ALL_CLOSE(run(device()), run(Device::cpu()), kF32) << "case " << which;
  }
}

}  // namespace
