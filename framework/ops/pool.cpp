#include "framework/ops/pool.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/pool_cuda.h"

namespace oodkit::ops {

namespace {

using cuda::PoolGeometry;

// Checks x and the options (PyTorch's rules) and returns the window geometry.
PoolGeometry pool_geometry(const Tensor& x, const Pool2dOptions& o, const char* op) {
  check_float(x, op, "x");
  check_ndim(x, 4, op, "x");
  const int64_t H = x.size(2), W = x.size(3);
  OODKIT_CHECK(H > 0 && W > 0, op, ": argument 'x' has an empty spatial size: ", x.describe());
  OODKIT_CHECK(H * W <= INT_MAX, op, ": spatial size too large: ", x.describe());
  OODKIT_CHECK(o.kernel_h > 0 && o.kernel_w > 0, op, ": kernel must be positive, got ", o.kernel_h, "x",
               o.kernel_w);
  OODKIT_CHECK(o.stride_h > 0 && o.stride_w > 0, op, ": stride must be positive, got ", o.stride_h, "x",
               o.stride_w);
  OODKIT_CHECK(o.pad_h >= 0 && o.pad_w >= 0, op, ": padding must be >= 0, got ", o.pad_h, "x", o.pad_w);
  OODKIT_CHECK(o.pad_h <= o.kernel_h / 2 && o.pad_w <= o.kernel_w / 2, op, ": padding ", o.pad_h, "x", o.pad_w,
               " must be at most half the kernel ", o.kernel_h, "x", o.kernel_w);
  OODKIT_CHECK(H + 2 * int64_t(o.pad_h) >= o.kernel_h && W + 2 * int64_t(o.pad_w) >= o.kernel_w, op, ": kernel ",
               o.kernel_h, "x", o.kernel_w, " is larger than the padded input ", H + 2 * int64_t(o.pad_h), "x",
               W + 2 * int64_t(o.pad_w), " (x ", shape_str(x.shape()), ", padding ", o.pad_h, "x", o.pad_w, ")");
  PoolGeometry g;
  g.planes = x.size(0) * x.size(1);
  g.h = int(H);
  g.w = int(W);
  g.kh = o.kernel_h;
  g.kw = o.kernel_w;
  g.sh = o.stride_h;
  g.sw = o.stride_w;
  g.ph = o.pad_h;
  g.pw = o.pad_w;
  g.oh = int((H + 2 * int64_t(o.pad_h) - o.kernel_h) / o.stride_h + 1);
  g.ow = int((W + 2 * int64_t(o.pad_w) - o.kernel_w) / o.stride_w + 1);
  return g;
}

Shape out_shape(const Tensor& x, const PoolGeometry& g) { return {x.size(0), x.size(1), g.oh, g.ow}; }

// Work size above which the CPU loops go parallel.
constexpr int64_t kParallelWork = 16384;

// ---------------------------------------------------------------- max pool, CPU

template <class T>
void max_forward_cpu(const T* x, T* y, int32_t* arg, const PoolGeometry& g) {
  const int64_t in_plane = int64_t(g.h) * g.w, out_plane = int64_t(g.oh) * g.ow;
#pragma omp parallel for schedule(static) if (g.planes * out_plane * g.kh * g.kw > kParallelWork)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * in_plane;
    T* yp = y + p * out_plane;
    int32_t* ap = arg + p * out_plane;
    for (int oh = 0; oh < g.oh; ++oh) {
      const int hs = oh * g.sh - g.ph, h0 = std::max(hs, 0), h1 = std::min(hs + g.kh, g.h);
      for (int ow = 0; ow < g.ow; ++ow) {
        const int ws = ow * g.sw - g.pw, w0 = std::max(ws, 0), w1 = std::min(ws + g.kw, g.w);
        int best_i = -1;
        T best = T(0);
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) {
            const T v = xp[ih * g.w + iw];
            // Same rule as the CUDA kernel: first maximum wins; NaN propagates.
            if (best_i < 0 || v > best || std::isnan(v)) {
              best = v;
              best_i = ih * g.w + iw;
            }
          }
        yp[oh * g.ow + ow] = best;
        ap[oh * g.ow + ow] = best_i;
      }
    }
  }
}

template <class T>
void max_backward_cpu(const T* dy, const int32_t* arg, T* dx, const PoolGeometry& g) {
  const int64_t in_plane = int64_t(g.h) * g.w, out_plane = int64_t(g.oh) * g.ow;
#pragma omp parallel for schedule(static) if (g.planes * (in_plane + out_plane) > kParallelWork)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* dp = dx + p * in_plane;
    std::fill(dp, dp + in_plane, T(0));
    const T* gp = dy + p * out_plane;
    const int32_t* ap = arg + p * out_plane;
    for (int64_t o = 0; o < out_plane; ++o) dp[ap[o]] += gp[o];
  }
}

// ---------------------------------------------------------------- avg pool, CPU

// Divisor of the window starting at (hs, ws) (may be negative: padding).
inline int avg_divisor(int hs, int ws, const PoolGeometry& g, bool include_pad) {
  if (include_pad) {
    const int he = std::min(hs + g.kh, g.h + g.ph), we = std::min(ws + g.kw, g.w + g.pw);
    return (he - hs) * (we - ws);
  }
  const int h0 = std::max(hs, 0), h1 = std::min(hs + g.kh, g.h);
  const int w0 = std::max(ws, 0), w1 = std::min(ws + g.kw, g.w);
  return (h1 - h0) * (w1 - w0);
}

template <class T>
void avg_forward_cpu(const T* x, T* y, const PoolGeometry& g, bool include_pad) {
  const int64_t in_plane = int64_t(g.h) * g.w, out_plane = int64_t(g.oh) * g.ow;
#pragma omp parallel for schedule(static) if (g.planes * out_plane * g.kh * g.kw > kParallelWork)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * in_plane;
    T* yp = y + p * out_plane;
    for (int oh = 0; oh < g.oh; ++oh) {
      const int hs = oh * g.sh - g.ph, h0 = std::max(hs, 0), h1 = std::min(hs + g.kh, g.h);
      for (int ow = 0; ow < g.ow; ++ow) {
        const int ws = ow * g.sw - g.pw, w0 = std::max(ws, 0), w1 = std::min(ws + g.kw, g.w);
        double s = 0.0;
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) s += double(xp[ih * g.w + iw]);
        yp[oh * g.ow + ow] = T(s / avg_divisor(hs, ws, g, include_pad));
      }
    }
  }
}

// Scatter in (oh, ow) order, so each dx element sums its contributions in the same order as
// the CUDA gather kernel.
template <class T>
void avg_backward_cpu(const T* dy, T* dx, const PoolGeometry& g, bool include_pad) {
  const int64_t in_plane = int64_t(g.h) * g.w, out_plane = int64_t(g.oh) * g.ow;
#pragma omp parallel for schedule(static) if (g.planes * out_plane * g.kh * g.kw > kParallelWork)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* dp = dx + p * in_plane;
    std::fill(dp, dp + in_plane, T(0));
    const T* gp = dy + p * out_plane;
    for (int oh = 0; oh < g.oh; ++oh) {
      const int hs = oh * g.sh - g.ph, h0 = std::max(hs, 0), h1 = std::min(hs + g.kh, g.h);
      for (int ow = 0; ow < g.ow; ++ow) {
        const int ws = ow * g.sw - g.pw, w0 = std::max(ws, 0), w1 = std::min(ws + g.kw, g.w);
        const T v = gp[oh * g.ow + ow] / T(avg_divisor(hs, ws, g, include_pad));
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) dp[ih * g.w + iw] += v;
      }
    }
  }
}

// ---------------------------------------------------------------- global avg pool, CPU

// y[r] = mean of the hw values of row r, summed in double. Four interleaved partial sums
// (element j goes to sum j % 4, then (s0 + s1) + (s2 + s3), then the tail): a fixed order, and
// independent lanes the compiler turns into one vector accumulator. A single running sum is an
// in-order reduction that x86-64-v3 code ran 1.2-1.6x slower than the SSE2 build (docs/results.md).
template <class T>
void gap_forward_cpu(const T* x, T* y, int64_t rows, int64_t hw) {
  const int64_t hw4 = hw / 4 * 4;
#pragma omp parallel for schedule(static) if (rows * hw > kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * hw;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int64_t j = 0; j < hw4; j += 4) {
      s0 += double(xr[j]);
      s1 += double(xr[j + 1]);
      s2 += double(xr[j + 2]);
      s3 += double(xr[j + 3]);
    }
    double s = (s0 + s1) + (s2 + s3);
    for (int64_t j = hw4; j < hw; ++j) s += double(xr[j]);
    y[r] = T(s / double(hw));
  }
}

template <class T>
void gap_backward_cpu(const T* dy, T* dx, int64_t rows, int64_t hw) {
#pragma omp parallel for schedule(static) if (rows * hw > kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T v = T(double(dy[r]) / double(hw));
    std::fill(dx + r * hw, dx + (r + 1) * hw, v);
  }
}

}  // namespace

// ---------------------------------------------------------------- public ops

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o) {
  const PoolGeometry g = pool_geometry(x, o, "max_pool2d");
  Tensor y = Tensor::empty(out_shape(x, g), x.dtype(), x.device());
  Tensor arg = Tensor::empty(y.shape(), DType::I32, x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::max_pool2d_forward(x.data<float>(), y.data<float>(), arg.data<int32_t>(), g));
  } else {
    dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
      using T = decltype(tag);
      max_forward_cpu<T>(x.data<T>(), y.data<T>(), arg.data<int32_t>(), g);
    });
  }
  const Shape in_shape = x.shape();
  autograd::record(y, "max_pool2d", {x}, [arg, g, in_shape](const Tensor& dy) {
    Tensor dx = Tensor::empty(in_shape, dy.dtype(), dy.device());
    if (dy.is_cuda()) {
      OODKIT_CUDA_CALL(cuda::max_pool2d_backward(dy.data<float>(), arg.data<int32_t>(), dx.data<float>(), g));
    } else {
      dispatch_float(dy.dtype(), "max_pool2d backward", [&](auto tag) {
        using T = decltype(tag);
        max_backward_cpu<T>(dy.data<T>(), arg.data<int32_t>(), dx.data<T>(), g);
      });
    }
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o, bool count_include_pad) {
  const PoolGeometry g = pool_geometry(x, o, "avg_pool2d");
  Tensor y = Tensor::empty(out_shape(x, g), x.dtype(), x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::avg_pool2d_forward(x.data<float>(), y.data<float>(), g, count_include_pad));
  } else {
    dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag) {
      using T = decltype(tag);
      avg_forward_cpu<T>(x.data<T>(), y.data<T>(), g, count_include_pad);
    });
  }
  const Shape in_shape = x.shape();
  autograd::record(y, "avg_pool2d", {x}, [g, in_shape, count_include_pad](const Tensor& dy) {
    Tensor dx = Tensor::empty(in_shape, dy.dtype(), dy.device());
    if (dy.is_cuda()) {
      OODKIT_CUDA_CALL(cuda::avg_pool2d_backward(dy.data<float>(), dx.data<float>(), g, count_include_pad));
    } else {
      dispatch_float(dy.dtype(), "avg_pool2d backward", [&](auto tag) {
        using T = decltype(tag);
        avg_backward_cpu<T>(dy.data<T>(), dx.data<T>(), g, count_include_pad);
      });
    }
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor global_avg_pool(const Tensor& x) {
  check_float(x, "global_avg_pool", "x");
  check_ndim(x, 4, "global_avg_pool", "x");
  const int64_t rows = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  OODKIT_CHECK(hw > 0, "global_avg_pool: argument 'x' has an empty spatial size: ", x.describe());
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, x.dtype(), x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::global_avg_pool_forward(x.data<float>(), y.data<float>(), rows, hw));
  } else {
    dispatch_float(x.dtype(), "global_avg_pool", [&](auto tag) {
      using T = decltype(tag);
      gap_forward_cpu<T>(x.data<T>(), y.data<T>(), rows, hw);
    });
  }
  const Shape in_shape = x.shape();
  autograd::record(y, "global_avg_pool", {x}, [in_shape, rows, hw](const Tensor& dy) {
    Tensor dx = Tensor::empty(in_shape, dy.dtype(), dy.device());
    if (dy.is_cuda()) {
      OODKIT_CUDA_CALL(cuda::global_avg_pool_backward(dy.data<float>(), dx.data<float>(), rows, hw));
    } else {
      dispatch_float(dy.dtype(), "global_avg_pool backward", [&](auto tag) {
        using T = decltype(tag);
        gap_backward_cpu<T>(dy.data<T>(), dx.data<T>(), rows, hw);
      });
    }
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace oodkit::ops
