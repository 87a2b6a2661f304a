#include "framework/ops/reduce.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/reduce_cuda.h"

namespace oodkit::ops {

namespace {

// x viewed as [outer, r, inner] around dimension `dim` (already normalised to [0, ndim)).
struct DimView {
  int dim;
  int64_t outer = 1, r = 1, inner = 1;
};

// The view of shape s around dimension dim in [0, s.size()).
DimView view_around(const Shape& s, int dim) {
  DimView v;
  v.dim = dim;
  for (int d = 0; d < int(s.size()); ++d) {
    if (d < dim) v.outer *= s[size_t(d)];
    else if (d == dim) v.r = s[size_t(d)];
    else v.inner *= s[size_t(d)];
  }
  return v;
}

// Checks `dim` against x (negative counts from the end) and returns the view around it.
DimView dim_view(const Tensor& x, int dim, const char* op) {
  const int nd = x.ndim();
  OODKIT_CHECK(nd >= 1, op, ": argument 'x' must have at least one dimension, got ", x.describe());
  OODKIT_CHECK(dim >= -nd && dim < nd, op, ": dim ", dim, " is out of range for ", x.describe(), " (expected [",
               -nd, ", ", nd - 1, "])");
  return view_around(x.shape(), dim < 0 ? dim + nd : dim);
}

// x's shape with dimension v.dim removed (or kept as 1).
Shape reduced_shape(const Shape& s, const DimView& v, bool keepdim) {
  Shape out;
  for (int d = 0; d < int(s.size()); ++d) {
    if (d != v.dim) out.push_back(s[size_t(d)]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

template <class T>
void sum_cpu(const T* x, T* y, const DimView& v) {
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      const T* p = x + o * v.r * v.inner + i;
      double acc = 0.0;
      for (int64_t j = 0; j < v.r; ++j) acc += double(p[j * v.inner]);
      y[o * v.inner + i] = T(acc);
    }
}

// Value (y may be null) and first index of the maximum; the first NaN wins.
template <class T>
void max_cpu(const T* x, T* y, int64_t* idx, const DimView& v) {
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      const T* p = x + o * v.r * v.inner + i;
      T best = p[0];
      int64_t bj = 0;
      for (int64_t j = 1; j < v.r && !std::isnan(best); ++j) {
        const T u = p[j * v.inner];
        if (u > best || std::isnan(u)) {
          best = u;
          bj = j;
        }
      }
      if (y) y[o * v.inner + i] = best;
      idx[o * v.inner + i] = bj;
    }
}

// y [outer, r, inner] = x [outer, inner] repeated along the middle dimension.
Tensor expand_dim(const Tensor& x, const Shape& out_shape, const DimView& v) {
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::expand_dim(x.data<float>(), y.data<float>(), v.outer, v.r, v.inner));
    return y;
  }
  const size_t row = size_t(v.inner) * dtype_size(x.dtype());
  const char* px = static_cast<const char*>(x.raw_data());
  char* py = static_cast<char*>(y.raw_data());
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t j = 0; j < v.r; ++j) std::memcpy(py + (o * v.r + j) * row, px + o * row, row);
  return y;
}

Tensor sum_forward(const Tensor& x, const DimView& v, bool keepdim) {
  Tensor y = Tensor::empty(reduced_shape(x.shape(), v, keepdim), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::sum_dim(x.data<float>(), y.data<float>(), v.outer, v.r, v.inner));
    return y;
  }
  dispatch_float(x.dtype(), "sum", [&](auto tag) {
    using T = decltype(tag);
    sum_cpu<T>(x.data<T>(), y.data<T>(), v);
  });
  return y;
}

// Fills idx (int64, the reduced shape) and, when y is defined, the maximum values.
void max_forward(const Tensor& x, const DimView& v, Tensor* y, Tensor& idx) {
  if (idx.numel() == 0) return;
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::max_dim(x.data<float>(), y ? y->data<float>() : nullptr, idx.data<int64_t>(), v.outer,
                                   v.r, v.inner));
    return;
  }
  dispatch_float(x.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    max_cpu<T>(x.data<T>(), y ? y->data<T>() : nullptr, idx.data<int64_t>(), v);
  });
}

Tensor max_backward(const Tensor& g, const Tensor& idx, const Shape& x_shape, const DimView& v) {
  Tensor dx = Tensor::empty(x_shape, g.dtype(), g.device());
  if (dx.numel() == 0) return dx;
  if (g.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::max_dim_backward(g.data<float>(), idx.data<int64_t>(), dx.data<float>(), v.outer, v.r,
                                            v.inner));
    return dx;
  }
  dx.fill_(0.0);
  dispatch_float(g.dtype(), "max backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    const int64_t* pi = idx.data<int64_t>();
    T* pd = dx.data<T>();
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t i = 0; i < v.inner; ++i)
        pd[(o * v.r + pi[o * v.inner + i]) * v.inner + i] = pg[o * v.inner + i];
  });
  return dx;
}

void check_nonempty_dim(const Tensor& x, const DimView& v, const char* op) {
  OODKIT_CHECK(v.r > 0, op, ": dim ", v.dim, " of ", x.describe(), " is empty (no maximum of zero elements)");
}

// Whether n values starting at p are all finite, looking at the exponent bits (all ones for
// NaN and +-Inf) in blocks that the compiler can vectorise, stopping at the first bad block.
template <class T, class U>
bool all_finite_cpu(const T* p, int64_t n) {
  static_assert(sizeof(T) == sizeof(U));
  constexpr U kExp = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  constexpr int64_t kBlock = 1024;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    U bad = 0;
    for (int64_t i = b; i < e; ++i) {
      U bits;
      std::memcpy(&bits, p + i, sizeof bits);
      bad |= U((bits & kExp) == kExp);
    }
    if (bad) return false;
  }
  return true;
}

}  // namespace

Tensor sum(const Tensor& x, int dim, bool keepdim) {
  check_float(x, "sum", "x");
  const DimView v = dim_view(x, dim, "sum");
  Tensor y = sum_forward(x, v, keepdim);
  const Shape shape = x.shape();
  autograd::record(y, "sum_dim", {x}, [shape, v](const Tensor& g) {
    return std::vector<Tensor>{expand_dim(g, shape, v)};
  });
  return y;
}

Tensor max(const Tensor& x, int dim, bool keepdim) {
  check_float(x, "max", "x");
  const DimView v = dim_view(x, dim, "max");
  check_nonempty_dim(x, v, "max");
  const Shape out_shape = reduced_shape(x.shape(), v, keepdim);
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor idx = Tensor::empty(out_shape, DType::I64, x.device());
  max_forward(x, v, &y, idx);
  const Shape shape = x.shape();
  autograd::record(y, "max_dim", {x}, [idx, shape, v](const Tensor& g) {
    return std::vector<Tensor>{max_backward(g, idx, shape, v)};
  });
  return y;
}

Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  check_float(x, "argmax", "x");
  const DimView v = dim_view(x, dim, "argmax");
  check_nonempty_dim(x, v, "argmax");
  Tensor idx = Tensor::empty(reduced_shape(x.shape(), v, keepdim), DType::I64, x.device());
  max_forward(x, v, nullptr, idx);
  return idx;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_float(x, "expand", "x");
  OODKIT_CHECK(x.ndim() == int(shape.size()), "expand: cannot expand ", x.describe(), " to ", shape_str(shape),
               " (the ranks differ)");
  std::vector<int> dims;  // the dimensions repeated
  for (int d = 0; d < x.ndim(); ++d) {
    OODKIT_CHECK(shape[size_t(d)] >= 0 && (x.size(d) == shape[size_t(d)] || x.size(d) == 1), "expand: cannot expand ",
                 x.describe(), " to ", shape_str(shape), " (dim ", d, " must be 1 or ", shape[size_t(d)], ")");
    if (x.size(d) != shape[size_t(d)]) dims.push_back(d);
  }
  if (dims.empty()) return x;
  Tensor y = x.detach();
  for (int d : dims) {
    Shape s = y.shape();
    s[size_t(d)] = shape[size_t(d)];
    y = expand_dim(y, s, view_around(s, d));
  }
  autograd::record(y, "expand", {x}, [dims](const Tensor& g) {
    Tensor dx = g;
    for (int d : dims) dx = sum(dx, d, true);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor all_finite(const std::vector<Tensor>& tensors) {
  const char* op = "all_finite";
  const Tensor* first = nullptr;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const Tensor& x = tensors[t];
    if (!x.defined()) continue;
    const std::string arg = "tensors[" + std::to_string(t) + "]";
    check_float(x, op, arg.c_str());
    if (!first) first = &x;
    else
      OODKIT_CHECK(x.device() == first->device(), op, ": ", arg, " is on ", x.device().str(), ", the first tensor on ",
                   first->device().str(), " (all must share one device)");
  }
  const Device device = first ? first->device() : Device::cpu();
  Tensor flag = Tensor::full({}, 1.0, DType::F32, device);
  if (device.is_cuda()) {
    std::vector<const float*> data;
    std::vector<int64_t> numel;
    for (const Tensor& x : tensors)
      if (x.defined() && x.numel() > 0) {
        data.push_back(x.data<float>());
        numel.push_back(x.numel());
      }
    for (size_t b = 0; b < data.size(); b += size_t(cuda::kAllFiniteChunk)) {
      const int count = int(std::min(data.size() - b, size_t(cuda::kAllFiniteChunk)));
      OODKIT_CUDA_CALL(cuda::all_finite_chunk(data.data() + b, numel.data() + b, count, flag.data<float>()));
    }
    return flag;
  }
  for (const Tensor& x : tensors) {
    if (!x.defined()) continue;
    const bool ok = x.dtype() == DType::F32 ? all_finite_cpu<float, uint32_t>(x.data<float>(), x.numel())
                                            : all_finite_cpu<double, uint64_t>(x.data<double>(), x.numel());
    if (!ok) {
      flag.fill_(0.0);
      break;
    }
  }
  return flag;
}

}  // namespace oodkit::ops
