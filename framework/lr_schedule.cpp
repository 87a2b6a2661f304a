#include "framework/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"

namespace oodkit::optim {

namespace {
constexpr double kPi = 3.14159265358979323846;

void check_step(int64_t step, const char* name) {
  OODKIT_CHECK(step >= 0, name, ".lr_at: negative step ", step);
}
void check_gamma(double gamma, const char* name) {
  OODKIT_CHECK(std::isfinite(gamma) && gamma >= 0.0, name, ": invalid gamma ", gamma, " (must be >= 0 and finite)");
}
}  // namespace

LRSchedule::~LRSchedule() = default;

LRSchedule::LRSchedule(double base_lr, const char* name) : base_lr_(base_lr) {
  OODKIT_CHECK(std::isfinite(base_lr) && base_lr >= 0.0, name, ": invalid base_lr ", base_lr,
               " (must be >= 0 and finite)");
}

ConstantLR::ConstantLR(double base_lr) : LRSchedule(base_lr, "ConstantLR") {}

double ConstantLR::lr_at(int64_t step) const {
  check_step(step, "ConstantLR");
  return base_lr_;
}

StepLR::StepLR(double base_lr, int64_t step_size, double gamma)
    : LRSchedule(base_lr, "StepLR"), step_size_(step_size), gamma_(gamma) {
  OODKIT_CHECK(step_size > 0, "StepLR: step_size must be > 0, got ", step_size);
  check_gamma(gamma, "StepLR");
}

double StepLR::lr_at(int64_t step) const {
  check_step(step, "StepLR");
  return base_lr_ * std::pow(gamma_, double(step / step_size_));
}

MultiStepLR::MultiStepLR(double base_lr, std::vector<int64_t> milestones, double gamma)
    : LRSchedule(base_lr, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  for (int64_t m : milestones_) OODKIT_CHECK(m >= 0, "MultiStepLR: negative milestone ", m);
  std::sort(milestones_.begin(), milestones_.end());
  check_gamma(gamma, "MultiStepLR");
}

double MultiStepLR::lr_at(int64_t step) const {
  check_step(step, "MultiStepLR");
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
  return base_lr_ * std::pow(gamma_, double(passed));
}

CosineLR::CosineLR(double base_lr, int64_t total_steps, double min_lr, int64_t warmup_steps)
    : LRSchedule(base_lr, "CosineLR"), total_steps_(total_steps), min_lr_(min_lr), warmup_steps_(warmup_steps) {
  OODKIT_CHECK(total_steps > 0, "CosineLR: total_steps must be > 0, got ", total_steps);
  OODKIT_CHECK(warmup_steps >= 0 && warmup_steps < total_steps, "CosineLR: warmup_steps ", warmup_steps,
               " must be in [0, total_steps = ", total_steps, ")");
  OODKIT_CHECK(std::isfinite(min_lr) && min_lr >= 0.0 && min_lr <= base_lr, "CosineLR: min_lr ", min_lr,
               " must be in [0, base_lr = ", base_lr, "]");
}

double CosineLR::lr_at(int64_t step) const {
  check_step(step, "CosineLR");
  if (step < warmup_steps_) return base_lr_ * double(step + 1) / double(warmup_steps_);
  const double p = std::min(1.0, double(step - warmup_steps_) / double(total_steps_ - warmup_steps_));
  return min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(kPi * p));
}

}  // namespace oodkit::optim
