#include "framework/ops/elementwise.h"
#include "testing.h"

using namespace oodkit;

namespace {

Tensor scalar(double v) {
  Tensor t = Tensor::from_vector<double>({v}, {});
  return t;
}

TEST(Autograd, SumsGradientsOverPathsAndAccumulatesIntoLeaves) {
  // y = (a*b + a) * a  ->  dy/da = 2ab + 2a... evaluated with a=3, b=2: y = a^2 b + a^2
  Tensor a = scalar(3).set_requires_grad(true);
  Tensor b = scalar(2).set_requires_grad(true);
  Tensor y = ops::mul(ops::add(ops::mul(a, b), a), a);
  EXPECT_DOUBLE_EQ(y.item(), 27.0);
  y.backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 2 * 3 * 2 + 2 * 3);  // 18
  EXPECT_DOUBLE_EQ(b.grad().item(), 9.0);
  // A second backward accumulates.
  Tensor y2 = ops::mul(a, b);
  y2.backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 18.0 + 2.0);
  a.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(Autograd, NoGradModeRecordsNothing) {
  Tensor a = scalar(1).set_requires_grad(true);
  {
    autograd::NoGradGuard ng;
    Tensor y = ops::scale(a, 2.0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_THROW(y.backward(), Error);
  }
  EXPECT_TRUE(ops::scale(a, 2.0).requires_grad());
}

TEST(Autograd, GradFunctionLeavesDotGradAlone) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad(true);
  Tensor w = Tensor::from_vector<double>({4, 5, 6}, {3});
  Tensor y = ops::sum(ops::mul(x, w));
  std::vector<Tensor> g = autograd::grad(y, {x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{4, 5, 6}));
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, BackwardThroughViews) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2}).set_requires_grad(true);
  Tensor y = ops::sum(ops::scale(x.narrow(1, 2).reshape({4}), 3.0));
  y.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 3, 3, 3, 3}));
}

TEST(Autograd, ErrorsAreClear) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad(true);
  Tensor y = ops::scale(x, 2.0);
  EXPECT_THROW(y.backward(), Error);  // non-scalar root without a gradient
  EXPECT_THROW(y.set_requires_grad(true), Error);  // not a leaf
  Tensor i = Tensor::zeros({2}, DType::I64);
  EXPECT_THROW(i.set_requires_grad(true), Error);
}

}  // namespace
