#include "framework/optim.h"

#include <cmath>
#include <set>
#include <unordered_set>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/map.h"
#include "framework/optim_update.h"

namespace oodkit::optim {

namespace {

void check_hyper(bool ok, const char* op, const char* name, double value, const char* want) {
  OODKIT_CHECK(ok, op, ": invalid ", name, " ", value, " (must be ", want, ")");
}

// A state entry name "<index>.<key>" split into its parts; throws naming the entry.
struct StateName {
  size_t index;
  std::string key;
};
StateName parse_state_name(const std::string& name, size_t num_params, const char* op) {
  const size_t dot = name.find('.');
  bool ok = dot != std::string::npos && dot > 0 && dot <= 9;
  for (size_t k = 0; ok && k < dot; ++k) ok = name[k] >= '0' && name[k] <= '9';
  OODKIT_CHECK(ok, op, ".load_state: malformed state name '", name, "' (expected '<index>.<key>')");
  const size_t index = size_t(std::stoull(name.substr(0, dot)));
  OODKIT_CHECK(index < num_params, op, ".load_state: state '", name, "' refers to parameter ", index,
               " but the optimiser has ", num_params, " parameters");
  return {index, name.substr(dot + 1)};
}

// Copy of a state tensor onto `param`'s device after checking it matches `param`.
Tensor checked_buffer(const Tensor& src, const Tensor& param, const std::string& name, const char* op) {
  const std::string what = std::string(op) + ".load_state";
  check_defined(src, what.c_str(), name.c_str());
  OODKIT_CHECK(src.shape() == param.shape(), what, ": state '", name, "' has shape ", shape_str(src.shape()),
               " but its parameter has shape ", shape_str(param.shape()));
  OODKIT_CHECK(src.dtype() == param.dtype(), what, ": state '", name, "' is ", dtype_name(src.dtype()),
               " but its parameter is ", dtype_name(param.dtype()));
  Tensor out = Tensor::empty_like(param);
  out.copy_(src);
  return out;
}

std::string state_name(size_t i, const char* key) { return std::to_string(i) + "." + key; }

}  // namespace

// ---------------------------------------------------------------- Optimizer

Optimizer::~Optimizer() = default;

Optimizer::Optimizer(std::vector<Tensor> params, double lr, const char* op)
    : params_(std::move(params)), lr_(0.0), op_(op) {
  OODKIT_CHECK(!params_.empty(), op, ": got an empty parameter list");
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string arg = "params[" + std::to_string(i) + "]";
    const Tensor& p = params_[i];
    check_float(p, op, arg.c_str());
    OODKIT_CHECK(p.is_leaf() && p.requires_grad(), op, ": ", arg, " (", p.describe(),
                 ") must be a leaf tensor with requires_grad set");
    OODKIT_CHECK(seen.insert(p.impl()).second, op, ": ", arg, " appears more than once in the parameter list");
  }
  set_lr(lr);
}

void Optimizer::set_lr(double lr) {
  check_hyper(std::isfinite(lr) && lr >= 0.0, op_, "learning rate", lr, ">= 0 and finite");
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

Tensor Optimizer::checked_grad(size_t i) const {
  const Tensor& p = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  const std::string pn = "params[" + std::to_string(i) + "]", gn = pn + ".grad";
  const std::string what = std::string(op_) + ".step";
  check_same_shape(p, g, what.c_str(), pn.c_str(), gn.c_str());
  check_same_device(p, g, what.c_str(), pn.c_str(), gn.c_str());
  check_dtype(g, p.dtype(), what.c_str(), gn.c_str());
  return g;
}

// ---------------------------------------------------------------- SGD

SGD::SGD(std::vector<Tensor> params, SGDOptions o) : Optimizer(std::move(params), o.lr, "SGD"), opt_(o) {
  check_hyper(std::isfinite(o.momentum) && o.momentum >= 0.0, "SGD", "momentum", o.momentum, ">= 0");
  check_hyper(std::isfinite(o.dampening), "SGD", "dampening", o.dampening, "finite");
  check_hyper(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, "SGD", "weight_decay", o.weight_decay,
              ">= 0");
  OODKIT_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
               "SGD: Nesterov momentum requires a momentum > 0 and zero dampening (got momentum ", o.momentum,
               ", dampening ", o.dampening, ")");
  momentum_buffer_.resize(params_.size());
}

void SGD::step() {
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = checked_grad(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i];
    const bool use_buf = opt_.momentum != 0.0;
    const bool first = use_buf && !momentum_buffer_[i].defined();
    Tensor buf = first ? Tensor::empty_like(p) : momentum_buffer_[i];
    const int64_t n = p.numel();
    // One element's update (optim_update.h) on either device: T = float on CUDA.
    auto update = [&](auto tag) {
      using T = decltype(tag);
      const detail::SGDParams<T> h{T(lr_), T(opt_.momentum), T(opt_.dampening), T(opt_.weight_decay), opt_.nesterov,
                                   first};
      return detail::SGDStep<T>{p.data<T>(), g.data<T>(), use_buf ? buf.data<T>() : nullptr, h};
    };
    if (p.is_cuda()) OODKIT_CUDA_CALL(cuda::for_n(n, update(float{})));
    else dispatch_float(p.dtype(), "SGD.step", [&](auto tag) { ops::for_n(n, update(tag)); });
    if (first) momentum_buffer_[i] = buf;  // only once it holds the first gradient
  }
}

NamedTensors SGD::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_buffer_[i].defined()) out.emplace_back(state_name(i, "momentum_buffer"), momentum_buffer_[i].clone());
  return out;
}

void SGD::load_state(const NamedTensors& state) {
  std::vector<Tensor> bufs(params_.size());
  std::set<std::string> seen;
  for (const auto& [name, t] : state) {
    OODKIT_CHECK(seen.insert(name).second, "SGD.load_state: duplicate state name '", name, "'");
    const StateName sn = parse_state_name(name, params_.size(), "SGD");
    OODKIT_CHECK(sn.key == "momentum_buffer", "SGD.load_state: unknown state '", name,
                 "' (SGD keeps only '<i>.momentum_buffer')");
    OODKIT_CHECK(opt_.momentum != 0.0, "SGD.load_state: state '", name,
                 "' given but this SGD has momentum 0 and keeps no state");
    bufs[sn.index] = checked_buffer(t, params_[sn.index], name, "SGD");
  }
  momentum_buffer_ = std::move(bufs);
}

// ---------------------------------------------------------------- Adam

Adam::Adam(std::vector<Tensor> params, AdamOptions o)
    : Optimizer(std::move(params), o.lr, o.decoupled_weight_decay ? "AdamW" : "Adam"), opt_(o) {
  check_hyper(std::isfinite(o.eps) && o.eps >= 0.0, op_, "eps", o.eps, ">= 0");
  check_hyper(o.beta1 >= 0.0 && o.beta1 < 1.0, op_, "beta1", o.beta1, "in [0, 1)");
  check_hyper(o.beta2 >= 0.0 && o.beta2 < 1.0, op_, "beta2", o.beta2, "in [0, 1)");
  check_hyper(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, op_, "weight_decay", o.weight_decay, ">= 0");
  exp_avg_.resize(params_.size());
  exp_avg_sq_.resize(params_.size());
  step_.assign(params_.size(), 0);
}

void Adam::step() {
  autograd::NoGradGuard no_grad;
  const std::string what = std::string(op_) + ".step";
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = checked_grad(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i];
    Tensor m = exp_avg_[i], v = exp_avg_sq_[i];
    if (!m.defined()) {
      m = Tensor::zeros_like(p);
      v = Tensor::zeros_like(p);
    }
    const int64_t t = step_[i] + 1;
    const double bc1 = 1.0 - std::pow(opt_.beta1, double(t));
    const double bc2 = 1.0 - std::pow(opt_.beta2, double(t));
    const double step_size = lr_ / bc1, bc2_sqrt = std::sqrt(bc2);
    const int64_t n = p.numel();
    // One element's update (optim_update.h) on either device: T = float on CUDA.
    auto update = [&](auto tag) {
      using T = decltype(tag);
      const detail::AdamParams<T> h{T(lr_),       T(opt_.beta1), T(opt_.beta2),
                                    T(opt_.eps),  T(opt_.weight_decay), opt_.decoupled_weight_decay,
                                    T(step_size), T(bc2_sqrt)};
      return detail::AdamStep<T>{p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), h};
    };
    if (p.is_cuda()) OODKIT_CUDA_CALL(cuda::for_n(n, update(float{})));
    else dispatch_float(p.dtype(), what.c_str(), [&](auto tag) { ops::for_n(n, update(tag)); });
    exp_avg_[i] = m;
    exp_avg_sq_[i] = v;
    step_[i] = t;
  }
}

NamedTensors Adam::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg_[i].defined()) continue;
    out.emplace_back(state_name(i, "step"), Tensor::full({}, double(step_[i]), DType::I64).to(params_[i].device()));
    out.emplace_back(state_name(i, "exp_avg"), exp_avg_[i].clone());
    out.emplace_back(state_name(i, "exp_avg_sq"), exp_avg_sq_[i].clone());
  }
  return out;
}

void Adam::load_state(const NamedTensors& state) {
  const size_t np = params_.size();
  std::vector<Tensor> m(np), v(np);
  std::vector<int64_t> steps(np, 0);
  std::set<std::string> seen;
  for (const auto& [name, t] : state) {
    const std::string what = std::string(op_) + ".load_state";
    OODKIT_CHECK(seen.insert(name).second, what, ": duplicate state name '", name, "'");
    const StateName sn = parse_state_name(name, np, op_);
    if (sn.key == "exp_avg") {
      m[sn.index] = checked_buffer(t, params_[sn.index], name, op_);
    } else if (sn.key == "exp_avg_sq") {
      v[sn.index] = checked_buffer(t, params_[sn.index], name, op_);
    } else if (sn.key == "step") {
      check_defined(t, what.c_str(), name.c_str());
      OODKIT_CHECK(t.dtype() == DType::I64 && t.numel() == 1, what, ": state '", name,
                   "' must be a one-element int64 tensor, got ", t.describe());
      const int64_t s = int64_t(t.cpu().data<int64_t>()[0]);
      OODKIT_CHECK(s >= 1, what, ": state '", name, "' holds step ", s, " (must be >= 1)");
      steps[sn.index] = s;
    } else {
      OODKIT_FAIL(what, ": unknown state '", name, "' (", op_,
                  " keeps '<i>.step', '<i>.exp_avg' and '<i>.exp_avg_sq')");
    }
  }
  for (size_t i = 0; i < np; ++i) {
    const int present = int(m[i].defined()) + int(v[i].defined()) + int(steps[i] > 0);
    OODKIT_CHECK(present == 0 || present == 3, op_, ".load_state: the state of parameter ", i,
                 " is incomplete: it needs all of '", i, ".step', '", i, ".exp_avg' and '", i, ".exp_avg_sq'");
  }
  exp_avg_ = std::move(m);
  exp_avg_sq_ = std::move(v);
  step_ = std::move(steps);
}

}  // namespace oodkit::optim
