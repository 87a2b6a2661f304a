#include "framework/ops/channel.h"

#include <algorithm>
#include <string>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/channel_cuda.h"

namespace oodkit::ops {

namespace {

// CPU loops go parallel above this many output elements.
constexpr int64_t kParallelMin = 1 << 15;

// A 2-d [N, C] or 4-d [N, C, H, W] tensor viewed as [N, C, H, W] (H = W = 1 for 2-d).
struct Dims {
  int64_t N = 0, C = 0, H = 1, W = 1;
  int64_t hw() const { return H * W; }
  int64_t numel() const { return N * C * H * W; }
};
Dims dims_of(const Tensor& t) {
  Dims d;
  d.N = t.size(0);
  d.C = t.size(1);
  if (t.ndim() == 4) {
    d.H = t.size(2);
    d.W = t.size(3);
  }
  return d;
}
// Shape with `like`'s rank (2 or 4) for dims d.
Shape shape_of(const Dims& d, int ndim) {
  if (ndim == 2) return {d.N, d.C};
  return {d.N, d.C, d.H, d.W};
}

void check_nc_or_nchw(const Tensor& t, const char* op, const char* arg) {
  OODKIT_CHECK(t.ndim() == 2 || t.ndim() == 4, op, ": ", arg, " must be 2-d [N, C] or 4-d [N, C, H, W], got ",
               t.describe());
}

// ---- CPU kernels (T = float or double) ----

template <class T>
void cpu_copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t row_len) {
#pragma omp parallel for schedule(static) if (rows * row_len >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) std::copy_n(src + r * src_stride, row_len, dst + r * dst_stride);
}

// y[n, c, h, w] = x[n, c - offset, h*s, w*s] if 0 <= c - offset < in.C, else 0 (see channel_cuda.h).
template <class T>
void cpu_gather(const T* x, T* y, const Dims& in, const Dims& out, int s, int64_t offset) {
  const int64_t planes = out.N * out.C, hwx = in.hw(), hwy = out.hw();
  const bool plain = s == 1 && in.H == out.H && in.W == out.W;
#pragma omp parallel for schedule(static) if (planes * hwy >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / out.C, c = p % out.C, cs = c - offset;
    T* yp = y + p * hwy;
    if (cs < 0 || cs >= in.C) {
      std::fill_n(yp, hwy, T(0));
      continue;
    }
    const T* xp = x + (n * in.C + cs) * hwx;
    if (plain) {
      std::copy_n(xp, hwy, yp);
      continue;
    }
    for (int64_t h = 0; h < out.H; ++h) {
      const T* xr = xp + h * s * in.W;
      T* yr = yp + h * out.W;
      for (int64_t w = 0; w < out.W; ++w) yr[w] = xr[w * s];
    }
  }
}

// gx[n, c, h, w] = g[n, c + offset, h/s, w/s] where s divides h and w, else 0.
template <class T>
void cpu_scatter_subsample(const T* g, T* gx, const Dims& gd, const Dims& xd, int s, int64_t offset) {
  const int64_t planes = xd.N * xd.C, hwx = xd.hw(), hwg = gd.hw();
#pragma omp parallel for schedule(static) if (planes * hwx >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / xd.C, c = p % xd.C;
    T* xp = gx + p * hwx;
    const T* gp = g + (n * gd.C + c + offset) * hwg;
    std::fill_n(xp, hwx, T(0));
    for (int64_t h = 0; h < gd.H; ++h)
      for (int64_t w = 0; w < gd.W; ++w) xp[(h * s) * xd.W + w * s] = gp[h * gd.W + w];
  }
}

// ---- device dispatch (no autograd) ----

// Output of dims `out` (rank `ndim`) gathered from x; see cpu_gather.
Tensor gather(const Tensor& x, const Dims& out, int ndim, int s, int64_t offset) {
  const Dims in = dims_of(x);
  Tensor y = Tensor::empty(shape_of(out, ndim), x.dtype(), x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::channel_gather(x.data<float>(), y.data<float>(), in.N, in.C, in.H, in.W, out.C, out.H,
                                          out.W, s, offset));
    return y;
  }
  dispatch_float(x.dtype(), "channel gather", [&](auto tag) {
    using T = decltype(tag);
    cpu_gather(x.data<T>(), y.data<T>(), in, out, s, offset);
  });
  return y;
}

// Gradient of x (dims xd, 4-d) from g of subsample_pad_channels; see cpu_scatter_subsample.
Tensor scatter_subsample(const Tensor& g, const Dims& xd, int s, int64_t offset) {
  const Dims gd = dims_of(g);
  Tensor gx = Tensor::empty(shape_of(xd, 4), g.dtype(), g.device());
  if (g.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::channel_scatter_subsample(g.data<float>(), gx.data<float>(), xd.N, xd.C, xd.H, xd.W,
                                                     gd.C, gd.H, gd.W, s, offset));
    return gx;
  }
  dispatch_float(g.dtype(), "subsample_pad_channels backward", [&](auto tag) {
    using T = decltype(tag);
    cpu_scatter_subsample(g.data<T>(), gx.data<T>(), gd, xd, s, offset);
  });
  return gx;
}

// Channels [start, start + count) of x (rank 2 or 4).
Tensor take_channels(const Tensor& x, int64_t start, int64_t count) {
  Dims out = dims_of(x);
  out.C = count;
  return gather(x, out, x.ndim(), 1, -start);
}

}  // namespace

Tensor concat_channels(const std::vector<Tensor>& xs) {
  const char* op = "concat_channels";
  OODKIT_CHECK(!xs.empty(), op, ": needs at least one tensor");
  check_defined(xs[0], op, "xs[0]");
  check_float(xs[0], op, "xs[0]");
  check_nc_or_nchw(xs[0], op, "xs[0]");
  const Tensor& x0 = xs[0];
  const Dims d0 = dims_of(x0);
  const int ndim = x0.ndim();
  std::vector<int64_t> channels, offsets;
  std::vector<bool> wants_grad;
  int64_t total_c = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string name = "xs[" + std::to_string(i) + "]";
    const Tensor& x = xs[i];
    check_defined(x, op, name.c_str());
    check_dtype(x, x0.dtype(), op, name.c_str());
    check_same_device(x, x0, op, name.c_str(), "xs[0]");
    OODKIT_CHECK(x.ndim() == ndim, op, ": ", name, " has ", x.ndim(), " dims but xs[0] has ", ndim, ": ",
                 x.describe(), " vs ", x0.describe());
    const Dims d = dims_of(x);
    OODKIT_CHECK(d.N == d0.N && d.H == d0.H && d.W == d0.W, op, ": ", name, " ", shape_str(x.shape()),
                 " and xs[0] ", shape_str(x0.shape()), " differ outside dim 1 (N, H, W must match)");
    channels.push_back(d.C);
    offsets.push_back(total_c);
    wants_grad.push_back(x.requires_grad());
    total_c += d.C;
  }

  Dims od = d0;
  od.C = total_c;
  Tensor y = Tensor::empty(shape_of(od, ndim), x0.dtype(), x0.device());
  const int64_t hw = d0.hw();
  for (size_t i = 0; i < xs.size(); ++i) {
    const int64_t row = channels[i] * hw;
    if (row == 0 || d0.N == 0) continue;
    if (y.is_cuda()) {
      OODKIT_CUDA_CALL(cuda::copy_rows(xs[i].data<float>(), row, y.data<float>() + offsets[i] * hw, total_c * hw,
                                       d0.N, row));
    } else {
      dispatch_float(y.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        cpu_copy_rows(xs[i].data<T>(), row, y.data<T>() + offsets[i] * hw, total_c * hw, d0.N, row);
      });
    }
  }
  autograd::record(y, op, xs, [channels, offsets, wants_grad](const Tensor& g) {
    std::vector<Tensor> grads(channels.size());
    for (size_t i = 0; i < channels.size(); ++i)
      if (wants_grad[i]) grads[i] = take_channels(g, offsets[i], channels[i]);
    return grads;
  });
  return y;
}

Tensor subsample_pad_channels(const Tensor& x, int stride, int64_t out_channels) {
  const char* op = "subsample_pad_channels";
  check_float(x, op, "x");
  check_ndim(x, 4, op, "x");
  OODKIT_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride, " for x ", x.describe());
  const Dims xd = dims_of(x);
  OODKIT_CHECK(out_channels >= xd.C, op, ": out_channels (", out_channels, ") must be >= the ", xd.C,
               " channels of x ", x.describe());
  const int64_t pad_before = (out_channels - xd.C) / 2;
  Dims od;
  od.N = xd.N;
  od.C = out_channels;
  od.H = (xd.H + stride - 1) / stride;
  od.W = (xd.W + stride - 1) / stride;
  Tensor y = gather(x, od, 4, stride, pad_before);
  autograd::record(y, op, {x}, [xd, stride, pad_before](const Tensor& g) {
    return std::vector<Tensor>{scatter_subsample(g, xd, stride, pad_before)};
  });
  return y;
}

Tensor slice_channels(const Tensor& x, int64_t start, int64_t count) {
  const char* op = "slice_channels";
  check_float(x, op, "x");
  check_nc_or_nchw(x, op, "x");
  const Dims xd = dims_of(x);
  OODKIT_CHECK(start >= 0 && count >= 0 && start + count <= xd.C, op, ": channels [", start, ", ", start + count,
               ") out of range for x ", x.describe());
  Tensor y = take_channels(x, start, count);
  const int ndim = x.ndim();
  autograd::record(y, op, {x}, [xd, ndim, start](const Tensor& g) {
    // g has count channels; place them at [start, start + count) of a zero tensor of x's shape.
    return std::vector<Tensor>{gather(g, xd, ndim, 1, start)};
  });
  return y;
}

Tensor one_hot(const Tensor& labels, int64_t num_classes) {
  const char* op = "one_hot";
  check_defined(labels, op, "labels");
  check_dtype(labels, DType::I64, op, "labels");
  check_ndim(labels, 1, op, "labels");
  OODKIT_CHECK(num_classes >= 1, op, ": num_classes must be >= 1, got ", num_classes);
  const int64_t n = labels.numel();
  const Tensor host = labels.cpu();
  const int64_t* pl = host.data<int64_t>();
  int64_t bad = 0;
  std::string list;
  for (int64_t i = 0; i < n; ++i) {
    if (pl[i] >= 0 && pl[i] < num_classes) continue;
    if (bad < 5) list += (bad ? ", labels[" : "labels[") + std::to_string(i) + "] = " + std::to_string(pl[i]);
    ++bad;
  }
  OODKIT_CHECK(bad == 0, op, ": ", bad, " label(s) outside [0, ", num_classes, "): ", list,
               bad > 5 ? ", ..." : "");
  Tensor y = Tensor::empty({n, num_classes}, DType::F32, labels.device());
  if (labels.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::one_hot(labels.data<int64_t>(), y.data<float>(), n, num_classes));
    return y;
  }
  float* py = y.data<float>();
  std::fill_n(py, n * num_classes, 0.0f);
  for (int64_t i = 0; i < n; ++i) py[i * num_classes + pl[i]] = 1.0f;
  return y;
}

}  // namespace oodkit::ops
