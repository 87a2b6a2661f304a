// nn::Module: a tree of named parameters, buffers and child modules, with PyTorch-style
// dotted names ("layer1.0.bn1.running_mean") so that state dicts move both ways through
// safetensors. Subclasses own their tensors as members and register pointers to them in
// their constructor; modules are held by shared_ptr and never copied or moved.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::nn {

using oodkit::NamedTensors;  // framework/tensor.h

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Recursive, in registration order: own entries first, then each child's (PyTorch order).
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  // Parameters then buffers of each module, recursively (the order of torch's state_dict()).
  NamedTensors state_dict() const;
  // Copies values into the registered tensors (converting device; dtype must match, except
  // that float64 sources are accepted for float32 slots). Errors name the entry and both
  // shapes. strict: every non-optional entry must be present and no unknown names given.
  // All problems are reported in one Error: per kind (wrong shape, wrong dtype, missing,
  // unexpected) a count and the first few names, never the whole list.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter and buffer to `device` (parameters stay leaves requiring grad).
  // Parameters are new tensors afterwards: create optimisers after moving the model.
  void to(Device device);
  // Casts every floating-point parameter and buffer to `dtype` (F32 or F64; float64 runs on the
  // CPU only). Integer buffers (num_batches_tracked) keep their dtype. Parameters are new tensors
  // afterwards, as with to(Device).
  void to(DType dtype);
  void zero_grad();
  int64_t num_parameters() const;

 protected:
  void register_parameter(const std::string& name, Tensor* slot);  // marks requires_grad
  // Optional buffers (BatchNorm's num_batches_tracked) may be absent when loading and are
  // host-side bookkeeping: to() leaves them on the CPU.
  void register_buffer(const std::string& name, Tensor* slot, bool optional = false);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  struct Slot {
    std::string name;
    Tensor* tensor;
    bool optional;
  };
  void collect(const std::string& prefix, bool params, bool buffers, std::vector<std::pair<std::string, Slot>>* out) const;
  std::vector<Slot> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace oodkit::nn
