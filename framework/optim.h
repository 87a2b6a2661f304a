// Optimisers with torch.optim semantics: SGD (momentum, dampening, Nesterov, L2 weight decay)
// and Adam / AdamW. Each holds handles of its parameters (leaf tensors with requires_grad,
// float32 on CPU/CUDA or float64 on the CPU) and updates their storage in place with one
// fused kernel per parameter, so modules keep seeing the new values through their own
// handles.
//
// Parameters are identified by their index i in the list given to the constructor. The
// per-parameter state is created lazily, at the first step() in which that parameter has a
// gradient (as torch does), and is exposed by state() under the names
//   SGD  (momentum != 0): "<i>.momentum_buffer"                        (parameter's shape)
//   Adam:                 "<i>.exp_avg", "<i>.exp_avg_sq"              (parameter's shape)
//                         "<i>.step"     int64 0-d: steps this parameter has taken
// Hyperparameters (lr included) are not part of the state: a resumed run sets them again
// (the lr from an LRSchedule, see framework/lr_schedule.h).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::optim {

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters without one (grad()
  // undefined) are skipped and their state is left alone. Runs under NoGradGuard; the grads
  // are read, never modified. Throws when a grad's shape, dtype or device differs from its
  // parameter's.
  virtual void step() = 0;
  // Drops every parameter's gradient (grad() becomes undefined).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // lr >= 0 and finite
  const std::vector<Tensor>& params() const { return params_; }

  // Snapshot (deep copies, on the parameters' devices) of the per-parameter state, named as
  // described at the top of this file, in parameter order.
  virtual NamedTensors state() const = 0;
  // Replaces the whole state with `state` (tensors on any device; copied to the parameter's
  // device). Checks every name, index, shape and dtype, and that each parameter's entries
  // are complete, before changing anything; throws naming the offending entry.
  virtual void load_state(const NamedTensors& state) = 0;

 protected:
  // Checks the parameter list (non-empty, defined, leaves requiring grad, float, distinct)
  // and lr; `op` names the optimiser in messages.
  Optimizer(std::vector<Tensor> params, double lr, const char* op);
  // The gradient of parameter i, checked against it; undefined when it has none.
  Tensor checked_grad(size_t i) const;

  std::vector<Tensor> params_;
  double lr_;
  const char* op_;
};

struct SGDOptions {
  double lr = 0.1, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

// torch.optim.SGD: g = grad + weight_decay * p; with momentum, buf = g on the first step and
// buf = momentum * buf + (1 - dampening) * g afterwards, then g = buf (or g + momentum * buf
// with nesterov); p -= lr * g. Nesterov requires momentum > 0 and dampening == 0.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  void step() override;
  NamedTensors state() const override;
  void load_state(const NamedTensors& state) override;
  const SGDOptions& options() const { return opt_; }

 private:
  SGDOptions opt_;
  std::vector<Tensor> momentum_buffer_;  // undefined until the parameter's first step
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled_weight_decay = false;  // AdamW
};

// torch.optim.Adam (decoupled_weight_decay = false: weight decay added to the gradient) and
// torch.optim.AdamW (true: p *= 1 - lr * weight_decay before the Adam update). With
// t = the parameter's step count after incrementing:
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options);
  void step() override;
  NamedTensors state() const override;
  void load_state(const NamedTensors& state) override;
  const AdamOptions& options() const { return opt_; }

 private:
  AdamOptions opt_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // undefined until the parameter's first step
  std::vector<int64_t> step_;                 // 0 until the parameter's first step
};

}  // namespace oodkit::optim
