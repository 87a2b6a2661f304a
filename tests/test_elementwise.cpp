#include "framework/ops/elementwise.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;
using oodkit::testing::kF32;

namespace {

class ElementwiseTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(ElementwiseTest);

TEST_P(ElementwiseTest, ForwardMatchesNaiveLoop) {
  Tensor a = Tensor::randn({3, 7, 5}, gen), b = Tensor::randn({3, 7, 5}, gen);
  std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
  std::vector<float> add(av.size()), sub(av.size()), mul(av.size()), sc(av.size()), as(av.size());
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    add[i] = av[i] + bv[i];
    sub[i] = av[i] - bv[i];
    mul[i] = av[i] * bv[i];
    sc[i] = -2.5f * av[i];
    as[i] = av[i] + 0.75f;
    s += av[i];
  }
  const Shape sh = a.shape();
  Tensor da = a.to(device()), db = b.to(device());
  EXPECT_ALL_CLOSE(ops::add(da, db), Tensor::from_vector(add, sh), kF32);
  EXPECT_ALL_CLOSE(ops::sub(da, db), Tensor::from_vector(sub, sh), kF32);
  EXPECT_ALL_CLOSE(ops::mul(da, db), Tensor::from_vector(mul, sh), kF32);
  EXPECT_ALL_CLOSE(ops::scale(da, -2.5), Tensor::from_vector(sc, sh), kF32);
  EXPECT_ALL_CLOSE(ops::add_scalar(da, 0.75), Tensor::from_vector(as, sh), kF32);
  EXPECT_NEAR(ops::sum(da).item(), s, 1e-4);
  EXPECT_NEAR(ops::mean(da).item(), s / double(av.size()), 1e-5);
}

TEST_P(ElementwiseTest, LargeSumIsAccurate) {
  // 1e6 terms of 0.1 + noise: float accumulation in order would drift by ~1e-2.
  Tensor x = Tensor::uniform({1000, 1000}, 0.0, 0.2, gen);
  double ref = 0;
  for (float v : x.to_vector<float>()) ref += v;
  EXPECT_NEAR(ops::sum(x.to(device())).item(), ref, 1e-6 * std::fabs(ref) + 1e-3);
}

TEST_P(ElementwiseTest, BackwardMatchesCpu) {
  Tensor a = Tensor::randn({4, 9}, gen), b = Tensor::randn({4, 9}, gen);
  auto run = [&](Device d) {
    Tensor x = a.to(d).clone().set_requires_grad(true), y = b.to(d).clone().set_requires_grad(true);
    // mean and sum both: their backward broadcasts the incoming scalar on the device.
    Tensor l = ops::add(ops::mean(ops::mul(ops::sub(ops::scale(x, 3.0), y), ops::add_scalar(y, 1.0))).reshape({1}),
                        ops::scale(ops::sum(ops::mul(x, y)), 0.25).reshape({1}));
    ops::sum(ops::scale(l, 2.0)).backward();
    return std::make_pair(x.grad(), y.grad());
  };
  auto ref = run(Device::cpu());
  auto got = run(device());
  EXPECT_ALL_CLOSE(got.first, ref.first, kF32);
  EXPECT_ALL_CLOSE(got.second, ref.second, kF32);
}

TEST(ElementwiseGrad, FiniteDifferences) {
  Generator gen(5);
  using oodkit::testing::randn_f64;
  auto f = [](const std::vector<Tensor>& x) {
    return ops::add_scalar(ops::mul(ops::sub(ops::scale(x[0], 1.5), x[1]), ops::add(x[0], x[1])), 0.5);
  };
  EXPECT_GRADCHECK(f, {randn_f64({2, 3}, gen), randn_f64({2, 3}, gen)});
  auto g = [](const std::vector<Tensor>& x) { return ops::mean(ops::mul(x[0], x[0])); };
  EXPECT_GRADCHECK(g, {randn_f64({5}, gen)});
}

}  // namespace
