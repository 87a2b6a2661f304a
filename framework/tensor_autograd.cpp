// Tensor's members that touch autograd: the views that record a backward step (reshape, flatten,
// narrow) and the gradient accessors (requires_grad, grad, grad_fn, backward). They live here, not
// in tensor.cpp, so that the tensor module does not depend on autograd, which depends on it
// (tools/include_graph.py: framework/ has no include cycle). Contracts in framework/tensor.h.
#include <memory>
#include <vector>

#include "framework/autograd.h"
#include "framework/tensor.h"

namespace oodkit {

Tensor Tensor::reshape(const Shape& new_shape) const {
  check_defined(*this, "reshape", "self");
  Shape s = new_shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      OODKIT_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(new_shape));
      infer = int(i);
    } else {
      OODKIT_CHECK(s[i] >= 0, "reshape: negative dimension in ", shape_str(new_shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    OODKIT_CHECK(known > 0 && numel() % known == 0, "reshape: cannot reshape ", describe(), " to ",
                 shape_str(new_shape));
    s[size_t(infer)] = numel() / known;
  }
  OODKIT_CHECK(shape_numel(s) == numel(), "reshape: cannot reshape ", describe(), " to ",
               shape_str(new_shape));
  Tensor out = make_view(*this, s, 0);
  const Shape in_shape = shape();
  autograd::record(out, "reshape", {*this},
                   [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
  return out;
}

Tensor Tensor::flatten(int start_dim) const {
  check_defined(*this, "flatten", "self");
  OODKIT_CHECK(start_dim >= 0 && start_dim < std::max(ndim(), 1), "flatten: start_dim ", start_dim,
               " out of range for ", describe());
  Shape s(shape().begin(), shape().begin() + start_dim);
  s.push_back(-1);
  return reshape(s);
}

Tensor Tensor::narrow(int64_t start, int64_t length) const {
  check_defined(*this, "narrow", "self");
  OODKIT_CHECK(ndim() >= 1, "narrow: needs at least one dimension, got ", describe());
  OODKIT_CHECK(start >= 0 && length >= 0 && start + length <= size(0), "narrow: rows [", start, ", ",
               start + length, ") out of range for ", describe());
  Shape s = shape();
  s[0] = length;
  const size_t row_bytes = size_t(shape_numel(s) / std::max<int64_t>(length, 1)) * dtype_size(dtype());
  Tensor out = make_view(*this, s, size_t(start) * (length ? row_bytes : 0));
  const Shape in_shape = shape();
  autograd::record(out, "narrow", {*this}, [in_shape, start, length](const Tensor& g) {
    Tensor full = Tensor::zeros(in_shape, g.dtype(), g.device());
    Tensor rows = make_view(full, g.shape(), 0);
    if (length > 0) {
      const size_t rb = g.nbytes() / size_t(length);
      rows = make_view(full, g.shape(), size_t(start) * rb);
    }
    rows.copy_(g);
    return std::vector<Tensor>{full};
  });
  return out;
}

// ---------------------------------------------------------------- autograd accessors

bool Tensor::requires_grad() const {
  return impl_ && impl_->autograd && (impl_->autograd->requires_grad || impl_->autograd->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool on) {
  check_defined(*this, "set_requires_grad", "self");
  OODKIT_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can be marked; this one is the output of ",
               impl_->autograd->grad_fn->name());
  if (on) check_float(*this, "set_requires_grad", "self");
  if (!impl_->autograd) impl_->autograd = std::make_shared<autograd::AutogradMeta>();
  impl_->autograd->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  return impl_ && impl_->autograd ? impl_->autograd->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  check_defined(*this, "set_grad", "self");
  if (g.defined()) check_same_shape(*this, g, "set_grad", "self", "grad");
  if (!impl_->autograd) impl_->autograd = std::make_shared<autograd::AutogradMeta>();
  impl_->autograd->grad = g;
}

void Tensor::zero_grad() {
  if (impl_ && impl_->autograd) impl_->autograd->grad = Tensor();
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  return impl_ && impl_->autograd ? impl_->autograd->grad_fn : nullptr;
}

void Tensor::backward(const Tensor& grad) const { autograd::backward(*this, grad); }

}  // namespace oodkit
