// Learning-rate schedules as pure functions of the step (or epoch) index: lr_at(step) has no
// hidden state, so a resumed run only needs the step it resumes at. Typical use:
//   for (int64_t epoch = start; epoch < epochs; ++epoch) { opt.set_lr(sched.lr_at(epoch)); ... }
// Steps are counted from 0; a negative step is an Error.
#pragma once
#include <cstdint>
#include <vector>

namespace oodkit::optim {

class LRSchedule {
 public:
  virtual ~LRSchedule();
  virtual double lr_at(int64_t step) const = 0;
  double base_lr() const { return base_lr_; }

 protected:
  explicit LRSchedule(double base_lr, const char* name);  // base_lr >= 0 and finite
  double base_lr_;
};

// lr = base_lr for every step.
class ConstantLR : public LRSchedule {
 public:
  explicit ConstantLR(double base_lr);
  double lr_at(int64_t step) const override;
};

// torch StepLR: lr = base_lr * gamma^floor(step / step_size); step_size > 0.
class StepLR : public LRSchedule {
 public:
  StepLR(double base_lr, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t step) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// torch MultiStepLR: lr = base_lr * gamma^(number of milestones <= step). Milestones are
// non-negative, in any order; a repeated milestone counts as often as it is listed (as torch).
class MultiStepLR : public LRSchedule {
 public:
  MultiStepLR(double base_lr, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(int64_t step) const override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// Linear warmup then cosine decay over total_steps (0 <= warmup_steps < total_steps,
// 0 <= min_lr <= base_lr):
//   step <  warmup_steps: lr = base_lr * (step + 1) / warmup_steps   (reaches base_lr at the last warmup step)
//   otherwise:            lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * p)) / 2,
//                         p = min(1, (step - warmup_steps) / (total_steps - warmup_steps))
// so lr = base_lr right after warmup and min_lr from step total_steps on. Without warmup
// this is torch's CosineAnnealingLR(T_max = total_steps, eta_min = min_lr) closed form.
class CosineLR : public LRSchedule {
 public:
  CosineLR(double base_lr, int64_t total_steps, double min_lr = 0.0, int64_t warmup_steps = 0);
  double lr_at(int64_t step) const override;

 private:
  int64_t total_steps_;
  double min_lr_;
  int64_t warmup_steps_;
};

}  // namespace oodkit::optim
