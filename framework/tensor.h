// Tensor: a contiguous N-d array (NCHW for images) on the CPU or a CUDA device, with
// optional autograd metadata. Copying a Tensor copies a handle (shared storage); use
// clone() for a deep copy. Views (reshape, narrow) share storage with their base.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/dtype.h"
#include "framework/storage.h"

namespace oodkit {

class Generator;
namespace autograd {
struct Node;
struct AutogradMeta;
}  // namespace autograd

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset_bytes = 0;
  Shape shape;
  DType dtype = DType::F32;
  std::shared_ptr<autograd::AutogradMeta> autograd;  // null unless grad is involved
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor

  // ---- factories (uninitialised contents only for empty) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = Device::cpu());
  // Copies `values` (row-major) into a new CPU tensor of dtype_of<T>() and the given shape.
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // A tensor over memory owned elsewhere (no copy): `data` holds shape's elements of `dtype`,
  // row-major and contiguous, on `device`; `owner` keeps that memory alive and is released when
  // the last tensor (or view) over it goes (Storage's borrowing constructor). Used by the Python
  // bindings (python/) to read NumPy arrays and DLPack tensors in place; oodkit ops never write
  // into their inputs.
  static Tensor from_external(void* data, const Shape& shape, DType dtype, Device device, std::shared_ptr<void> owner);
  // Random tensors drawn on the CPU from `gen` (reproducible for a seed), then moved to `device`.
  static Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::F32,
                      Device device = Device::cpu());
  static Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen,
                        DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int ndim() const { return int(shape().size()); }
  int64_t size(int dim) const;  // negative dims count from the end
  int64_t numel() const;  // the product of shape(), recomputed (out of line) on every call: hoist it out of loops
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  std::string describe() const;  // "float32[2, 3] on cpu"

  // ---- raw data (checks dtype; pointer is device memory for CUDA tensors) ----
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  // ---- copies and conversions (explicit; never implicit between devices) ----
  Tensor to(Device device) const;  // same tensor if already there; not differentiable
  Tensor to(DType dtype) const;    // cast on the tensor's device; not differentiable
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor clone() const;            // deep copy, detached
  Tensor detach() const;           // shares storage, no autograd history
  void copy_(const Tensor& src);   // same shape and dtype, any devices; no autograd
  void fill_(double value);        // no autograd
  template <class T> std::vector<T> to_vector() const;  // copies to host
  double item() const;             // single-element tensor, any dtype, to double

  // ---- views (share storage; differentiable) ----
  Tensor reshape(const Shape& shape) const;  // one dim may be -1
  Tensor flatten(int start_dim = 1) const;   // [N, ...] -> [N, prod(...)]
  Tensor narrow(int64_t start, int64_t length) const;  // rows [start, start+length) of dim 0

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // leaves only
  Tensor grad() const;                         // undefined until a backward reaches it
  void set_grad(const Tensor& g);
  void zero_grad();                            // drops the gradient
  std::shared_ptr<autograd::Node> grad_fn() const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  // Backpropagates from this tensor; `grad` defaults to 1 for a one-element tensor.
  void backward(const Tensor& grad = Tensor()) const;

  TensorImpl* impl() const { return impl_.get(); }
  bool same_storage(const Tensor& o) const;

 private:
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<TensorImpl> impl_;
  friend Tensor make_view(const Tensor& base, const Shape& shape, size_t extra_offset_bytes);
};

// Named tensors in a fixed order (state dicts, checkpoints).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// A view of `base`'s storage with another shape/offset; no autograd (callers attach).
Tensor make_view(const Tensor& base, const Shape& shape, size_t extra_offset_bytes);

// ---- argument checks with messages naming both sides ----
void check_defined(const Tensor& t, const char* op, const char* arg);
void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn);
void check_same_device(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn);
void check_dtype(const Tensor& t, DType want, const char* op, const char* arg);
void check_float(const Tensor& t, const char* op, const char* arg);  // F32, or F64 on CPU
void check_ndim(const Tensor& t, int ndim, const char* op, const char* arg);

// Runs f(T{}) with T = float or double according to `t`'s dtype; throws for other dtypes.
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  if (t == DType::F32) f(float{});
  else if (t == DType::F64) f(double{});
  else OODKIT_FAIL(op, ": expected a float32 or float64 tensor, got ", dtype_name(t));
}

// Poisoning: when on, every new allocation (CPU and CUDA) is filled with 0xFF bytes
// (NaN for floats), so a kernel that leaves an output element unwritten fails its test.
void set_poison_allocations(bool on);
bool poison_allocations();

}  // namespace oodkit
