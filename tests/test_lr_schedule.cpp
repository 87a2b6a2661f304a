#include "framework/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "framework/error.h"

using namespace oodkit;
using namespace oodkit::optim;

namespace {

constexpr double kPi = 3.14159265358979323846;

void expect_rel(double got, double want, double rel, int64_t step) {
  EXPECT_NEAR(got, want, rel * std::fabs(want) + 1e-300) << "step " << step;
}

TEST(LRSchedule, ConstantLR) {
  ConstantLR s(0.3);
  for (int64_t t : {0, 1, 100, 1000000}) EXPECT_EQ(s.lr_at(t), 0.3);
  EXPECT_EQ(s.base_lr(), 0.3);
}

TEST(LRSchedule, StepLRClosedFormAndTorchRecursion) {
  StepLR s(0.1, 30, 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(29), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(30), 0.01);
  EXPECT_DOUBLE_EQ(s.lr_at(59), 0.01);
  EXPECT_DOUBLE_EQ(s.lr_at(60), 0.001);
  EXPECT_DOUBLE_EQ(s.lr_at(95), 1e-4);
  // torch's chainable form: lr_t = lr_{t-1} * gamma when t % step_size == 0.
  StepLR h(0.5, 7, 0.5);
  double lr = 0.5;
  for (int64_t t = 0; t < 100; ++t) {
    if (t > 0 && t % 7 == 0) lr *= 0.5;
    expect_rel(h.lr_at(t), lr, 1e-12, t);
  }
}

TEST(LRSchedule, MultiStepLRClosedFormAndTorchRecursion) {
  MultiStepLR s(0.1, {80, 30, 120}, 0.2);  // unsorted on purpose
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(29), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(30), 0.02);
  EXPECT_DOUBLE_EQ(s.lr_at(79), 0.02);
  EXPECT_DOUBLE_EQ(s.lr_at(80), 0.004);
  EXPECT_DOUBLE_EQ(s.lr_at(120), 0.0008);
  EXPECT_DOUBLE_EQ(s.lr_at(500), 0.0008);
  // Repeated milestones count twice (torch keeps a Counter); milestone 0 applies at once.
  MultiStepLR d(1.0, {0, 10, 10}, 0.5);
  double lr = 1.0;
  for (int64_t t = 0; t < 30; ++t) {
    if (t == 0) lr *= 0.5;
    if (t == 10) lr *= 0.25;
    expect_rel(d.lr_at(t), lr, 1e-12, t);
  }
  MultiStepLR none(0.7, {}, 0.1);
  EXPECT_EQ(none.lr_at(1000), 0.7);
}

TEST(LRSchedule, CosineWithoutWarmupIsTorchCosineAnnealing) {
  const double base = 0.1, eta_min = 0.001;
  const int64_t T = 50;
  CosineLR s(base, T, eta_min);
  // Closed form.
  for (int64_t t = 0; t <= T; ++t)
    expect_rel(s.lr_at(t), eta_min + (base - eta_min) * (1 + std::cos(kPi * double(t) / double(T))) / 2, 1e-12, t);
  // torch's recursive form: lr_t = (1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T)) * (lr_{t-1} - eta_min) + eta_min.
  double lr = base;
  for (int64_t t = 1; t < T; ++t) {
    lr = (1 + std::cos(kPi * t / T)) / (1 + std::cos(kPi * (t - 1) / T)) * (lr - eta_min) + eta_min;
    expect_rel(s.lr_at(t), lr, 1e-9, t);
  }
  EXPECT_DOUBLE_EQ(s.lr_at(0), base);
  EXPECT_DOUBLE_EQ(s.lr_at(T / 2), (base + eta_min) / 2);
  EXPECT_DOUBLE_EQ(s.lr_at(T), eta_min);
  EXPECT_DOUBLE_EQ(s.lr_at(T + 1), eta_min);  // clamped after the end
  EXPECT_DOUBLE_EQ(s.lr_at(10 * T), eta_min);
}

TEST(LRSchedule, CosineWithWarmup) {
  CosineLR s(1.0, 110, 0.0, 10);
  for (int64_t t = 0; t < 10; ++t) expect_rel(s.lr_at(t), double(t + 1) / 10.0, 1e-15, t);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(10), 1.0);
  EXPECT_NEAR(s.lr_at(60), 0.5, 1e-15);
  EXPECT_NEAR(s.lr_at(35), (1 + std::cos(kPi * 0.25)) / 2, 1e-15);
  EXPECT_EQ(s.lr_at(110), 0.0);
  EXPECT_EQ(s.lr_at(111), 0.0);
  CosineLR m(1.0, 110, 0.1, 10);
  EXPECT_NEAR(m.lr_at(60), 0.55, 1e-15);
  EXPECT_NEAR(m.lr_at(0), 0.1, 1e-15);  // warmup ramps from base/warmup regardless of min_lr
  // Non-increasing after warmup.
  for (int64_t t = 10; t < 120; ++t) EXPECT_LE(m.lr_at(t + 1), m.lr_at(t)) << t;
}

TEST(LRSchedule, BadArgumentsThrow) {
  EXPECT_THROW(StepLR(0.1, 0), Error);
  EXPECT_THROW(StepLR(0.1, 10, -0.5), Error);
  EXPECT_THROW(StepLR(-0.1, 10), Error);
  EXPECT_THROW(MultiStepLR(0.1, {10, -1}), Error);
  EXPECT_THROW(CosineLR(0.1, 0), Error);
  EXPECT_THROW(CosineLR(0.1, 10, 0.0, 10), Error);   // warmup must end before total
  EXPECT_THROW(CosineLR(0.1, 10, 0.0, -1), Error);
  EXPECT_THROW(CosineLR(0.1, 10, 0.2), Error);       // min_lr > base_lr
  EXPECT_THROW(CosineLR(0.1, 10, -0.01), Error);
  EXPECT_THROW(ConstantLR(std::nan("")), Error);
  EXPECT_THROW(StepLR(0.1, 5).lr_at(-1), Error);
  EXPECT_THROW(CosineLR(0.1, 5).lr_at(-1), Error);
  EXPECT_THROW(MultiStepLR(0.1, {1}).lr_at(-3), Error);
}

}  // namespace
