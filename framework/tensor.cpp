#include "framework/tensor.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "framework/cuda/tensor_kernels.h"
#include "framework/cuda_api.h"
#include "framework/random.h"

namespace oodkit {

// ---------------------------------------------------------------- factories

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::from_external(void* data, const Shape& shape, DType dtype, Device device,
                             std::shared_ptr<void> owner) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(data, size_t(shape_numel(shape)) * dtype_size(dtype), device,
                                            std::move(owner));
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(0.0);
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  OODKIT_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
               " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>(), Device::cpu());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<uint8_t>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int64_t>&, const Shape&);

Tensor Tensor::randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  Tensor t = empty(shape, DType::F64, Device::cpu());
  double* p = t.data<double>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = gen.normal();
  return t.to(dtype).to(device);
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype,
                       Device device) {
  Tensor t = empty(shape, DType::F64, Device::cpu());
  double* p = t.data<double>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = lo + (hi - lo) * gen.uniform();
  return t.to(dtype).to(device);
}

// ---------------------------------------------------------------- metadata

const Shape& Tensor::shape() const {
  OODKIT_CHECK(impl_, "shape() of an undefined tensor");
  return impl_->shape;
}

int64_t Tensor::size(int dim) const {
  const int n = ndim();
  const int d = dim < 0 ? dim + n : dim;
  OODKIT_CHECK(d >= 0 && d < n, "dimension ", dim, " out of range for shape ", shape_str(shape()));
  return impl_->shape[size_t(d)];
}

int64_t Tensor::numel() const { return shape_numel(shape()); }

DType Tensor::dtype() const {
  OODKIT_CHECK(impl_, "dtype() of an undefined tensor");
  return impl_->dtype;
}

Device Tensor::device() const {
  OODKIT_CHECK(impl_, "device() of an undefined tensor");
  return impl_->storage->device();
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined tensor";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " on " + device().str();
}

template <class T>
T* Tensor::data() {
  OODKIT_CHECK(impl_, "data() of an undefined tensor");
  OODKIT_CHECK(impl_->dtype == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">() of a ",
               describe());
  return reinterpret_cast<T*>(static_cast<char*>(impl_->storage->data()) + impl_->offset_bytes);
}
template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
#define OODKIT_INSTANTIATE_DATA(T) \
  template T* Tensor::data<T>();   \
  template const T* Tensor::data<T>() const;
OODKIT_INSTANTIATE_DATA(float)
OODKIT_INSTANTIATE_DATA(double)
OODKIT_INSTANTIATE_DATA(uint8_t)
OODKIT_INSTANTIATE_DATA(int32_t)
OODKIT_INSTANTIATE_DATA(int64_t)
#undef OODKIT_INSTANTIATE_DATA

void* Tensor::raw_data() {
  OODKIT_CHECK(impl_, "raw_data() of an undefined tensor");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset_bytes;
}
const void* Tensor::raw_data() const { return const_cast<Tensor*>(this)->raw_data(); }

bool Tensor::same_storage(const Tensor& o) const {
  return impl_ && o.impl_ && impl_->storage == o.impl_->storage;
}

// ---------------------------------------------------------------- copies

namespace {

template <class S, class D>
void cast_loop(const S* s, D* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
}

template <class S>
void cast_from(const S* s, void* d, DType ddt, int64_t n) {
  switch (ddt) {
    case DType::F32: cast_loop(s, static_cast<float*>(d), n); break;
    case DType::F64: cast_loop(s, static_cast<double*>(d), n); break;
    case DType::U8: cast_loop(s, static_cast<uint8_t*>(d), n); break;
    case DType::I32: cast_loop(s, static_cast<int32_t*>(d), n); break;
    case DType::I64: cast_loop(s, static_cast<int64_t*>(d), n); break;
  }
}

void cpu_cast(const void* s, DType sdt, void* d, DType ddt, int64_t n) {
  switch (sdt) {
    case DType::F32: cast_from(static_cast<const float*>(s), d, ddt, n); break;
    case DType::F64: cast_from(static_cast<const double*>(s), d, ddt, n); break;
    case DType::U8: cast_from(static_cast<const uint8_t*>(s), d, ddt, n); break;
    case DType::I32: cast_from(static_cast<const int32_t*>(s), d, ddt, n); break;
    case DType::I64: cast_from(static_cast<const int64_t*>(s), d, ddt, n); break;
  }
}

// Copies nbytes between any two devices.
void copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t nbytes) {
  if (nbytes == 0) return;
  if (dd.is_cpu() && sd.is_cpu()) {
    std::memcpy(dst, src, nbytes);
  } else if (dd.is_cuda() && sd.is_cpu()) {
    cuda::copy_host_to_device(dst, src, nbytes, dd.index);
  } else if (dd.is_cpu() && sd.is_cuda()) {
    cuda::copy_device_to_host(dst, src, nbytes, sd.index);
  } else {
    OODKIT_CHECK(dd.index == sd.index, "copy between CUDA devices ", sd.str(), " and ", dd.str(),
                 " is not supported; go through the CPU");
    cuda::copy_device_to_device(dst, src, nbytes, dd.index);
  }
}

}  // namespace

Tensor Tensor::to(Device device) const {
  OODKIT_CHECK(impl_, "to(", device.str(), ") of an undefined tensor");
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), dtype(), device);
  copy_bytes(out.raw_data(), device, raw_data(), this->device(), nbytes());
  return out;
}

Tensor Tensor::to(DType dt) const {
  OODKIT_CHECK(impl_, "to(", dtype_name(dt), ") of an undefined tensor");
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), dt, device());
  if (device().is_cpu()) {
    cpu_cast(raw_data(), dtype(), out.raw_data(), dt, numel());
  } else {
    OODKIT_CUDA_CALL(cuda::cast(raw_data(), dtype(), out.raw_data(), dt, numel(), device().index));
  }
  return out;
}

Tensor Tensor::clone() const {
  OODKIT_CHECK(impl_, "clone() of an undefined tensor");
  Tensor out = empty(shape(), dtype(), device());
  copy_bytes(out.raw_data(), device(), raw_data(), device(), nbytes());
  return out;
}

Tensor Tensor::detach() const {
  OODKIT_CHECK(impl_, "detach() of an undefined tensor");
  return make_view(*this, shape(), 0);
}

void Tensor::copy_(const Tensor& src) {
  check_defined(*this, "copy_", "self");
  check_defined(src, "copy_", "src");
  check_same_shape(*this, src, "copy_", "self", "src");
  check_dtype(src, dtype(), "copy_", "src");
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

void Tensor::fill_(double value) {
  check_defined(*this, "fill_", "self");
  const int64_t n = numel();
  if (device().is_cuda()) {
    if (value == 0.0) {
      cuda::memset_bytes(raw_data(), 0, nbytes(), device().index);
    } else {
      OODKIT_CUDA_CALL(cuda::fill(raw_data(), dtype(), n, value, device().index));
    }
    return;
  }
  switch (dtype()) {
    case DType::F32: std::fill_n(data<float>(), n, float(value)); break;
    case DType::F64: std::fill_n(data<double>(), n, value); break;
    case DType::U8: std::fill_n(data<uint8_t>(), n, uint8_t(value)); break;
    case DType::I32: std::fill_n(data<int32_t>(), n, int32_t(value)); break;
    case DType::I64: std::fill_n(data<int64_t>(), n, int64_t(value)); break;
  }
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  check_dtype(*this, dtype_of<T>(), "to_vector", "self");
  Tensor c = cpu();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<uint8_t> Tensor::to_vector() const;
template std::vector<int32_t> Tensor::to_vector() const;
template std::vector<int64_t> Tensor::to_vector() const;

double Tensor::item() const {
  OODKIT_CHECK(impl_ && numel() == 1, "item() needs a one-element tensor, got ", describe());
  return to(DType::F64).cpu().data<double>()[0];
}

// ---------------------------------------------------------------- views

Tensor make_view(const Tensor& base, const Shape& shape, size_t extra_offset_bytes) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl_->storage;
  impl->offset_bytes = base.impl_->offset_bytes + extra_offset_bytes;
  impl->shape = shape;
  impl->dtype = base.impl_->dtype;
  return Tensor(std::move(impl));
}

// ---------------------------------------------------------------- checks

void check_defined(const Tensor& t, const char* op, const char* arg) {
  OODKIT_CHECK(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  check_defined(a, op, an);
  check_defined(b, op, bn);
  OODKIT_CHECK(a.shape() == b.shape(), op, ": shape mismatch: ", an, " is ", shape_str(a.shape()), " but ",
               bn, " is ", shape_str(b.shape()));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  check_defined(a, op, an);
  check_defined(b, op, bn);
  OODKIT_CHECK(a.device() == b.device(), op, ": device mismatch: ", an, " is on ", a.device().str(),
               " but ", bn, " is on ", b.device().str());
}

void check_dtype(const Tensor& t, DType want, const char* op, const char* arg) {
  check_defined(t, op, arg);
  OODKIT_CHECK(t.dtype() == want, op, ": argument '", arg, "' must be ", dtype_name(want), ", got ",
               t.describe());
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  const bool ok = t.dtype() == DType::F32 || (t.dtype() == DType::F64 && t.device().is_cpu());
  OODKIT_CHECK(ok, op, ": argument '", arg, "' must be float32 (or float64 on the CPU), got ",
               t.describe());
}

void check_ndim(const Tensor& t, int ndim, const char* op, const char* arg) {
  check_defined(t, op, arg);
  OODKIT_CHECK(t.ndim() == ndim, op, ": argument '", arg, "' must have ", ndim, " dimensions, got ",
               t.describe());
}

}  // namespace oodkit
