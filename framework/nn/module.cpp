#include "framework/nn/module.h"

#include <unordered_map>
#include <unordered_set>

namespace oodkit::nn {

void Module::register_parameter(const std::string& name, Tensor* slot) {
  OODKIT_CHECK(slot && slot->defined(), "register_parameter: '", name, "' is undefined");
  slot->set_requires_grad(true);
  params_.push_back({name, slot, false});
}

void Module::register_buffer(const std::string& name, Tensor* slot, bool optional) {
  OODKIT_CHECK(slot && slot->defined(), "register_buffer: '", name, "' is undefined");
  buffers_.push_back({name, slot, optional});
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Slot>>* out) const {
  if (params)
    for (const Slot& s : params_) out->emplace_back(prefix + s.name, s);
  if (buffers)
    for (const Slot& s : buffers_) out->emplace_back(prefix + s.name, s);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, buffers, out);
}


NamedTensors Module::named_parameters() const {
  std::vector<std::pair<std::string, Slot>> slots;
  collect("", true, false, &slots);
  NamedTensors out;
  for (auto& [n, s] : slots) out.emplace_back(n, *s.tensor);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  std::vector<std::pair<std::string, Slot>> slots;
  collect("", false, true, &slots);
  NamedTensors out;
  for (auto& [n, s] : slots) out.emplace_back(n, *s.tensor);
  return out;
}

NamedTensors Module::state_dict() const {
  // Per module: parameters, then buffers, then children (torch's order).
  struct Walker {
    static void walk(const Module& m, const std::string& prefix, NamedTensors* out) {
      for (const Slot& s : m.params_) out->emplace_back(prefix + s.name, s.tensor->detach());
      for (const Slot& s : m.buffers_) out->emplace_back(prefix + s.name, s.tensor->detach());
      for (const auto& [name, child] : m.children_) walk(*child, prefix + name + ".", out);
    }
  };
  NamedTensors out;
  Walker::walk(*this, "", &out);
  return out;
}

namespace {
// "a, b, c and 7 more": the first `shown` items and a count of the rest, so that an error about
// a whole network's worth of names stays a readable line.
std::string first_few(const std::vector<std::string>& items, size_t shown = 5) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < shown; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > shown) out += " and " + std::to_string(items.size() - shown) + " more";
  return out;
}
}  // namespace

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::vector<std::pair<std::string, Slot>> slots;
  collect("", true, true, &slots);
  std::unordered_map<std::string, const Tensor*> given;
  for (const auto& [n, t] : state) {
    OODKIT_CHECK(given.emplace(n, &t).second, "load_state_dict: duplicate entry '", n, "'");
  }
  std::unordered_set<std::string> known;
  // Every problem is collected (in the model's order) and reported at once, each kind as a count
  // plus its first few names.
  std::vector<std::string> missing, unexpected, bad_shape, bad_dtype;
  // Validate everything before writing anything, so that a bad state leaves the module as it was.
  std::vector<std::pair<Tensor*, Tensor>> writes;
  for (auto& [name, slot] : slots) {
    known.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      if (!slot.optional) missing.push_back("'" + name + "'");
      continue;
    }
    const Tensor& src = *it->second;
    Tensor& dst = *slot.tensor;
    OODKIT_CHECK(src.defined(), "load_state_dict: entry '", name, "' is undefined");
    if (src.shape() != dst.shape()) {
      bad_shape.push_back("'" + name + "' (checkpoint " + shape_str(src.shape()) + ", model " + shape_str(dst.shape()) + ")");
      continue;
    }
    Tensor v = src;
    if (v.dtype() != dst.dtype()) {
      const bool ok = (dst.dtype() == DType::F32 && v.dtype() == DType::F64) ||
                      (dst.dtype() == DType::I64 && v.dtype() == DType::I32);
      if (!ok) {
        bad_dtype.push_back("'" + name + "' (checkpoint " + dtype_name(v.dtype()) + ", model " + dtype_name(dst.dtype()) + ")");
        continue;
      }
      v = v.to(dst.dtype());
    }
    writes.emplace_back(&dst, v);
  }
  if (strict)
    for (const auto& [n, t] : state)
      if (!known.count(n)) unexpected.push_back("'" + n + "'");
  if (!strict) missing.clear();
  std::vector<std::string> parts;
  if (!bad_shape.empty()) parts.push_back(std::to_string(bad_shape.size()) + " with the wrong shape: " + first_few(bad_shape, 3));
  if (!bad_dtype.empty()) parts.push_back(std::to_string(bad_dtype.size()) + " with the wrong dtype: " + first_few(bad_dtype, 3));
  if (!missing.empty()) parts.push_back(std::to_string(missing.size()) + " missing: " + first_few(missing));
  if (!unexpected.empty()) parts.push_back(std::to_string(unexpected.size()) + " unexpected: " + first_few(unexpected));
  if (!parts.empty()) {
    std::string msg;
    for (const std::string& p : parts) msg += (msg.empty() ? "" : "; ") + p;
    OODKIT_FAIL("load_state_dict: ", slots.size(), " model entries, ", state.size(), " given; ", msg);
  }
  for (auto& [dst, v] : writes) dst->copy_(v);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::to(Device device) {
  for (Slot& s : params_) {
    if (s.tensor->device() == device) continue;
    Tensor moved = s.tensor->detach().to(device);
    moved.set_requires_grad(true);
    *s.tensor = moved;
  }
  for (Slot& s : buffers_)  // optional buffers are host-side bookkeeping and stay on the CPU
    if (!s.optional && s.tensor->device() != device) *s.tensor = s.tensor->to(device);
  for (auto& [n, c] : children_) c->to(device);
}

void Module::to(DType dtype) {
  OODKIT_CHECK(dtype == DType::F32 || dtype == DType::F64, "Module::to: dtype must be float32 or float64, got ",
               dtype_name(dtype));
  const auto is_float = [](DType t) { return t == DType::F32 || t == DType::F64; };
  for (Slot& s : params_) {
    if (s.tensor->dtype() == dtype) continue;
    Tensor cast = s.tensor->detach().to(dtype);
    cast.set_requires_grad(true);
    *s.tensor = cast;
  }
  for (Slot& s : buffers_)
    if (s.tensor->defined() && is_float(s.tensor->dtype()) && s.tensor->dtype() != dtype) *s.tensor = s.tensor->to(dtype);
  for (auto& [n, c] : children_) c->to(dtype);
}

void Module::zero_grad() {
  for (Slot& s : params_) s.tensor->zero_grad();
  for (auto& [n, c] : children_) c->zero_grad();
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

}  // namespace oodkit::nn
