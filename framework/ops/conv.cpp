#include "framework/ops/conv.h"

#include <algorithm>
#include <climits>
#include <vector>

#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "framework/autograd.h"
#include "framework/cuda_api.h"
#include "framework/ops/conv_cuda.h"

namespace oodkit::ops {

Conv2dOptions Conv2dOptions::square(int stride, int pad, int dilation) {
  Conv2dOptions o;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = pad;
  o.dilation_h = o.dilation_w = dilation;
  return o;
}

ConvTranspose2dOptions ConvTranspose2dOptions::square(int stride, int pad, int output_pad, int dilation) {
  ConvTranspose2dOptions o;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = pad;
  o.output_pad_h = o.output_pad_w = output_pad;
  o.dilation_h = o.dilation_w = dilation;
  return o;
}

namespace {

using cuda::ConvGeometry;

// ============================================================== CPU kernels
//
// Every kernel works on one cross-correlation geometry g: input [n, c, h, w], filter
// [k, c, kh, kw], output [n, k, ho, wo]. Per image, im2col builds col [c*kh*kw, ho*wo] so that
// output = W [k, c*kh*kw] * col; the gradients are W^T * dy (then col2im) and dy * col^T. Small
// maps put several images side by side in one product ("chunks of images" below).
// Images are processed in parallel with OpenMP. The region is opened even for one image: inside
// it Eigen's GEMM runs single-threaded (it checks omp_get_num_threads()), which is faster for
// these small per-image products than Eigen's own threading. Measured on 2 cores, x [128,16,32,32]
// w [16,16,3,3] pad 1: forward 14.6 ms, forward+backward 39 ms (1 thread: 25 ms / 74 ms; serial
// batch with Eigen-threaded GEMM: 32-36 ms / ~105 ms).

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MapMat = Eigen::Map<RowMat<T>>;
template <class T>
using MapConstMat = Eigen::Map<const RowMat<T>>;

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// 1x1 filter, stride 1, no padding, output = input size: col is the image itself.
bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0 &&
         g.ho == g.h && g.wo == g.w;
}

// Output indices o in [lo, hi) with 0 <= o*stride + off < size, clipped to [0, out).
void valid_range(int size, int stride, int off, int out, int& lo, int& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  const int top = size - 1 - off;  // o*stride <= top
  hi = top < 0 ? 0 : top / stride + 1;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

// col [c*kh*kw, ho*wo] from one image x [c, h, w]; zero where the filter tap falls in padding.
// Row r of col starts at col + r * ld (ld >= ho*wo: the image's block of a wider chunk matrix).
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col, int64_t ld) {
  for (int c = 0; c < g.c; ++c) {
    const T* xc = x + int64_t(c) * g.h * g.w;
    for (int ki = 0; ki < g.kh; ++ki) {
      const int offh = ki * g.dil_h - g.pad_h;
      int oh_lo, oh_hi;
      valid_range(g.h, g.stride_h, offh, g.ho, oh_lo, oh_hi);
      for (int kj = 0; kj < g.kw; ++kj) {
        const int offw = kj * g.dil_w - g.pad_w;
        int ow_lo, ow_hi;
        valid_range(g.w, g.stride_w, offw, g.wo, ow_lo, ow_hi);
        T* row = col + ((int64_t(c) * g.kh + ki) * g.kw + kj) * ld;
        for (int oh = 0; oh < g.ho; ++oh) {
          T* r = row + int64_t(oh) * g.wo;
          if (oh < oh_lo || oh >= oh_hi) {
            std::fill(r, r + g.wo, T(0));
            continue;
          }
          const T* xr = xc + int64_t(oh * g.stride_h + offh) * g.w;
          std::fill(r, r + ow_lo, T(0));
          if (g.stride_w == 1) {
            for (int ow = ow_lo; ow < ow_hi; ++ow) r[ow] = xr[ow + offw];
          } else {
            for (int ow = ow_lo; ow < ow_hi; ++ow) r[ow] = xr[ow * g.stride_w + offw];
          }
          std::fill(r + ow_hi, r + g.wo, T(0));
        }
      }
    }
  }
}

// x [c, h, w] = sum of col's entries at the positions im2col read them from (overwrites x);
// col's rows start ld apart as in im2col.
template <class T>
void col2im(const ConvGeometry& g, const T* col, T* x, int64_t ld) {
  std::fill(x, x + int64_t(g.c) * g.h * g.w, T(0));
  for (int c = 0; c < g.c; ++c) {
    T* xc = x + int64_t(c) * g.h * g.w;
    for (int ki = 0; ki < g.kh; ++ki) {
      const int offh = ki * g.dil_h - g.pad_h;
      int oh_lo, oh_hi;
      valid_range(g.h, g.stride_h, offh, g.ho, oh_lo, oh_hi);
      for (int kj = 0; kj < g.kw; ++kj) {
        const int offw = kj * g.dil_w - g.pad_w;
        int ow_lo, ow_hi;
        valid_range(g.w, g.stride_w, offw, g.wo, ow_lo, ow_hi);
        const T* row = col + ((int64_t(c) * g.kh + ki) * g.kw + kj) * ld;
        for (int oh = oh_lo; oh < oh_hi; ++oh) {
          const T* r = row + int64_t(oh) * g.wo;
          T* xr = xc + int64_t(oh * g.stride_h + offh) * g.w;
          if (g.stride_w == 1) {
            for (int ow = ow_lo; ow < ow_hi; ++ow) xr[ow + offw] += r[ow];
          } else {
            for (int ow = ow_lo; ow < ow_hi; ++ow) xr[ow * g.stride_w + offw] += r[ow];
          }
        }
      }
    }
  }
}

// ---- chunks of images
// One GEMM per image is inefficient when ho*wo is small (8x8 or 4x4 maps: the decoder's
// transposed convolutions, the last ResNet stages): every product then re-packs the whole weight
// matrix (forward, backward data) or reads and writes the whole filter gradient (backward filter,
// whose inner dimension is ho*wo) for little arithmetic. The kernels therefore put m consecutive
// images side by side as the columns of one matrix [rows, ld] (image j in columns
// [j*ho*wo, (j+1)*ho*wo)), m*ho*wo >= kChunkColumns, one GEMM per chunk. Each thread takes a
// static, contiguous range of images.
//
// Batch invariance (forward, backward data): an image's result must not depend on the other
// images of the call (ODIN, Mahalanobis and heatmap scores are reproducible bit for bit whatever
// the batching). Eigen evaluates these products transposed, one matrix column per GEMM row, and
// rounds rows differently depending on the micro-kernel that gets them: full panels of
// gebp_traits::mr rows use one kernel, the remainder others (with split accumulators). So ld is
// m*ho*wo rounded up to a multiple of mr (the padding columns are computed and dropped), and every
// column of every image, alone or in any batch, goes through the full-panel kernel with the same
// k order. Larger maps (below), and products with one output row (a GEMV: one output
// channel forward, c*kh*kw = 1 backward), keep one unpadded product per image: the same product
// for an image whatever the batch. The choice depends on the geometry only, never on the batch
// size. The filter gradient sums over the batch anyway and is not padded.
//
// Which maps: only those of at most kChunkMaxPositions positions (4x4 and smaller: the decoder's
// 1x1 and 4x4 inputs, ResNet-18's last stage). Measured on 2 cores at batch 8 (bench_ops, A/B
// against one product per image, docs/results.md): 4x4 maps gain 16-20%, while 16x16 maps at 128
// channels lose up to 1.49x and 8x8 maps at 256 channels 1.2x (their per-image products are
// already large enough for Eigen's blocking; the chunk copies and the wider panels cost more).
constexpr int64_t kChunkColumns = 512;
constexpr int64_t kChunkMaxPositions = 16;

bool chunked_geometry(const ConvGeometry& g) { return int64_t(g.ho) * g.wo <= kChunkMaxPositions; }

// Images per chunk (1: one product per image).
int64_t chunk_images(const ConvGeometry& g) {
  if (!chunked_geometry(g)) return 1;
  const int64_t howo = int64_t(g.ho) * g.wo;
  return std::max<int64_t>(1, std::min<int64_t>(g.n, (kChunkColumns + howo - 1) / howo));
}

// Columns of a chunk of `cols` real columns, rounded up to Eigen's GEMM row panel for T.
template <class T>
int64_t panel_columns(int64_t cols) {
  const int64_t mr = Eigen::internal::gebp_traits<T, T>::mr;
  return (cols + mr - 1) / mr * mr;
}

// [lo, hi): the calling thread's share of n images inside an OpenMP parallel region.
void thread_range(int64_t n, int64_t& lo, int64_t& hi) {
#ifdef _OPENMP
  const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
  const int64_t t = 0, nt = 1;
#endif
  lo = n * t / nt;
  hi = n * (t + 1) / nt;
}

// Copies m image slabs base + j*stride ([rows, cols] each) into dst [rows, ld] (image j at
// column j*cols), and back.
template <class T>
void to_chunk(const T* base, int64_t stride, int64_t m, int64_t rows, int64_t cols, T* dst, int64_t ld) {
  for (int64_t j = 0; j < m; ++j)
    for (int64_t r = 0; r < rows; ++r)
      std::copy(base + j * stride + r * cols, base + j * stride + (r + 1) * cols, dst + r * ld + j * cols);
}
template <class T>
void from_chunk(const T* src, int64_t ld, int64_t m, int64_t rows, int64_t cols, T* base, int64_t stride) {
  for (int64_t j = 0; j < m; ++j)
    for (int64_t r = 0; r < rows; ++r)
      std::copy(src + r * ld + j * cols, src + r * ld + (j + 1) * cols, base + j * stride + r * cols);
}

// y [n, k, ho, wo] = conv(x [n, c, h, w], w [k, c, kh, kw]) (no bias); batch invariant.
template <class T>
void cpu_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  const int64_t ckk = int64_t(g.c) * g.kh * g.kw, howo = int64_t(g.ho) * g.wo, chw = int64_t(g.c) * g.h * g.w;
  const int64_t khw = int64_t(g.k) * howo;
  const bool pointwise = is_pointwise(g), chunked = g.k > 1 && chunked_geometry(g);
  const int64_t cb = chunked ? chunk_images(g) : 1, width = chunked ? panel_columns<T>(cb * howo) : howo;
  const MapConstMat<T> W(w, g.k, ckk);
#pragma omp parallel
  {
    int64_t lo, hi;
    thread_range(g.n, lo, hi);
    std::vector<T> col(!chunked && pointwise ? 0 : size_t(ckk * width));
    std::vector<T> out(chunked ? size_t(g.k * width) : 0);
    for (int64_t n0 = lo; n0 < hi; n0 += cb) {
      const T* xn = x + n0 * chw;
      if (!chunked) {
        if (!pointwise) im2col(g, xn, col.data(), howo);
        const MapConstMat<T> C(pointwise ? xn : col.data(), ckk, howo);
        MapMat<T> Y(y + n0 * khw, g.k, howo);
        Y.noalias() = W * C;
        continue;
      }
      const int64_t m = std::min(cb, hi - n0), ld = panel_columns<T>(m * howo);
      if (pointwise) {
        to_chunk(xn, chw, m, ckk, howo, col.data(), ld);
      } else {
        for (int64_t j = 0; j < m; ++j) im2col(g, xn + j * chw, col.data() + j * howo, ld);
      }
      MapMat<T> Y(out.data(), g.k, ld);
      Y.noalias() = W * MapConstMat<T>(col.data(), ckk, ld);
      from_chunk(out.data(), ld, m, g.k, howo, y + n0 * khw, khw);
    }
  }
}

// dx [n, c, h, w] = gradient of conv w.r.t. its input for dy [n, k, ho, wo] (overwrites dx);
// batch invariant.
template <class T>
void cpu_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  const int64_t ckk = int64_t(g.c) * g.kh * g.kw, howo = int64_t(g.ho) * g.wo, chw = int64_t(g.c) * g.h * g.w;
  const int64_t khw = int64_t(g.k) * howo;
  const bool pointwise = is_pointwise(g), chunked = ckk > 1 && chunked_geometry(g);
  const int64_t cb = chunked ? chunk_images(g) : 1, width = chunked ? panel_columns<T>(cb * howo) : howo;
  const MapConstMat<T> W(w, g.k, ckk);
#pragma omp parallel
  {
    int64_t lo, hi;
    thread_range(g.n, lo, hi);
    std::vector<T> col(!chunked && pointwise ? 0 : size_t(ckk * width));
    std::vector<T> dyc(chunked ? size_t(g.k * width) : 0);
    for (int64_t n0 = lo; n0 < hi; n0 += cb) {
      T* dxn = dx + n0 * chw;
      if (!chunked) {
        const MapConstMat<T> DY(dy + n0 * khw, g.k, howo);
        MapMat<T> C(pointwise ? dxn : col.data(), ckk, howo);
        C.noalias() = W.transpose() * DY;
        if (!pointwise) col2im(g, col.data(), dxn, howo);
        continue;
      }
      const int64_t m = std::min(cb, hi - n0), ld = panel_columns<T>(m * howo);
      to_chunk(dy + n0 * khw, khw, m, g.k, howo, dyc.data(), ld);
      MapMat<T> C(col.data(), ckk, ld);
      C.noalias() = W.transpose() * MapConstMat<T>(dyc.data(), g.k, ld);
      if (pointwise) {
        from_chunk(col.data(), ld, m, ckk, howo, dxn, chw);
      } else {
        for (int64_t j = 0; j < m; ++j) col2im(g, col.data() + j * howo, dxn + j * chw, ld);
      }
    }
  }
}

// dw [k, c, kh, kw] = gradient of conv w.r.t. its filter (overwrites dw). Each thread sums its
// images into its own buffer; the buffers are then added in thread order.
template <class T>
void cpu_backward_filter(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  const int64_t ckk = int64_t(g.c) * g.kh * g.kw, howo = int64_t(g.ho) * g.wo, chw = int64_t(g.c) * g.h * g.w;
  const int64_t khw = int64_t(g.k) * howo, cb = chunk_images(g);
  const bool pointwise = is_pointwise(g);
  std::vector<std::vector<T>> partial(static_cast<size_t>(max_threads()));
#pragma omp parallel
  {
    std::vector<T>& acc = partial[size_t(thread_id())];
    acc.assign(size_t(g.k * ckk), T(0));
    MapMat<T> DW(acc.data(), g.k, ckk);
    int64_t lo, hi;
    thread_range(g.n, lo, hi);
    std::vector<T> col(pointwise && cb == 1 ? 0 : size_t(ckk * cb * howo));
    std::vector<T> dyc(cb == 1 ? 0 : size_t(khw * cb));
    for (int64_t n0 = lo; n0 < hi; n0 += cb) {
      const int64_t m = std::min(cb, hi - n0), ld = m * howo;
      const T* xn = x + n0 * chw;
      if (pointwise && cb == 1) {
        // col is the image itself
      } else if (pointwise) {
        to_chunk(xn, chw, m, ckk, howo, col.data(), ld);
      } else {
        for (int64_t j = 0; j < m; ++j) im2col(g, xn + j * chw, col.data() + j * howo, ld);
      }
      if (cb > 1) to_chunk(dy + n0 * khw, khw, m, g.k, howo, dyc.data(), ld);
      const MapConstMat<T> C(pointwise && cb == 1 ? xn : col.data(), ckk, ld);
      const MapConstMat<T> DY(cb == 1 ? dy + n0 * khw : dyc.data(), g.k, ld);
      DW.noalias() += DY * C.transpose();
    }
  }
  std::fill(dw, dw + g.k * ckk, T(0));
  for (const std::vector<T>& acc : partial)
    for (size_t i = 0; i < acc.size(); ++i) dw[i] += acc[i];
}

// y [n, ch, hw] += bias[ch].
template <class T>
void cpu_add_bias(T* y, const T* bias, int n, int channels, int64_t hw) {
#pragma omp parallel for schedule(static) if (int64_t(n) * channels * hw > 32768)
  for (int64_t p = 0; p < int64_t(n) * channels; ++p) {
    const T b = bias[p % channels];
    T* yp = y + p * hw;
    for (int64_t i = 0; i < hw; ++i) yp[i] += b;
  }
}

// db[ch] = sum over n and hw of dy[n, ch, hw], accumulated in double.
template <class T>
void cpu_bias_grad(const T* dy, int n, int channels, int64_t hw, T* db) {
#pragma omp parallel for schedule(static) if (int64_t(n) * channels * hw > 32768)
  for (int ch = 0; ch < channels; ++ch) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) {
      const T* p = dy + (int64_t(i) * channels + ch) * hw;
      for (int64_t j = 0; j < hw; ++j) acc += double(p[j]);
    }
    db[ch] = T(acc);
  }
}

// ============================================================== device dispatch

// y [n, k, ho, wo] = conv(x, w) + bias (bias may be undefined).
Tensor run_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor y = Tensor::empty({g.n, g.k, g.ho, g.wo}, x.dtype(), x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::conv2d_forward(g, x.data<float>(), w.data<float>(),
                                          bias.defined() ? bias.data<float>() : nullptr, y.data<float>()));
    return y;
  }
  dispatch_float(x.dtype(), "conv forward", [&](auto tag) {
    using T = decltype(tag);
    cpu_forward(g, x.data<T>(), w.data<T>(), y.data<T>());
    if (bias.defined()) cpu_add_bias(y.data<T>(), bias.data<T>(), g.n, g.k, int64_t(g.ho) * g.wo);
  });
  return y;
}

// dx [n, c, h, w] from dy [n, k, ho, wo]; plus bias [c] when defined (transposed conv forward).
Tensor run_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w, const Tensor& bias) {
  Tensor dx = Tensor::empty({g.n, g.c, g.h, g.w}, dy.dtype(), dy.device());
  if (dy.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::conv2d_backward_data(g, dy.data<float>(), w.data<float>(), dx.data<float>()));
    if (bias.defined())
      OODKIT_CUDA_CALL(cuda::add_channel_bias(dx.data<float>(), bias.data<float>(), g.n, g.c, int64_t(g.h) * g.w));
    return dx;
  }
  dispatch_float(dy.dtype(), "conv backward-data", [&](auto tag) {
    using T = decltype(tag);
    cpu_backward_data(g, dy.data<T>(), w.data<T>(), dx.data<T>());
    if (bias.defined()) cpu_add_bias(dx.data<T>(), bias.data<T>(), g.n, g.c, int64_t(g.h) * g.w);
  });
  return dx;
}

// dw [k, c, kh, kw] from the conv input x [n, c, h, w] and dy [n, k, ho, wo].
Tensor run_backward_filter(const ConvGeometry& g, const Tensor& x, const Tensor& dy) {
  Tensor dw = Tensor::empty({g.k, g.c, g.kh, g.kw}, x.dtype(), x.device());
  if (x.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::conv2d_backward_filter(g, x.data<float>(), dy.data<float>(), dw.data<float>()));
    return dw;
  }
  dispatch_float(x.dtype(), "conv backward-filter", [&](auto tag) {
    using T = decltype(tag);
    cpu_backward_filter(g, x.data<T>(), dy.data<T>(), dw.data<T>());
  });
  return dw;
}

// [C] per-channel sums of g [N, C, H, W].
Tensor run_bias_grad(const Tensor& g) {
  const int n = int(g.size(0)), c = int(g.size(1));
  const int64_t hw = g.size(2) * g.size(3);
  Tensor db = Tensor::empty({c}, g.dtype(), g.device());
  if (g.is_cuda()) {
    OODKIT_CUDA_CALL(cuda::channel_bias_grad(g.data<float>(), n, c, hw, db.data<float>()));
    return db;
  }
  dispatch_float(g.dtype(), "conv bias grad", [&](auto tag) {
    using T = decltype(tag);
    cpu_bias_grad(g.data<T>(), n, c, hw, db.data<T>());
  });
  return db;
}

// ============================================================== argument checks

// x [N, Cin, H, W] and a 4-d weight with positive sizes, same device and dtype; bias, when
// defined, [bias_channels] on the same device with the same dtype. Sizes must fit in int.
void check_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, int weight_in_dim) {
  check_defined(x, op, "x");
  check_defined(weight, op, "weight");
  check_float(x, op, "x");
  check_ndim(x, 4, op, "x");
  check_ndim(weight, 4, op, "weight");
  check_same_device(x, weight, op, "x", "weight");
  check_dtype(weight, x.dtype(), op, "weight");
  for (int d = 0; d < 4; ++d) {
    OODKIT_CHECK(weight.size(d) > 0, op, ": weight ", weight.describe(), " has an empty dimension");
    OODKIT_CHECK(x.size(d) <= INT_MAX && weight.size(d) <= INT_MAX, op, ": sizes of x ", x.describe(),
                 " or weight ", weight.describe(), " exceed the int range");
  }
  OODKIT_CHECK(x.size(1) == weight.size(weight_in_dim), op, ": x ", x.describe(), " has ", x.size(1),
               " channels but weight ", weight.describe(), " expects ", weight.size(weight_in_dim),
               " input channels (dimension ", weight_in_dim, ")");
  OODKIT_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": x ", x.describe(), " has an empty spatial dimension");
  if (bias.defined()) {
    const int out_dim = 1 - weight_in_dim;
    check_ndim(bias, 1, op, "bias");
    check_same_device(x, bias, op, "x", "bias");
    check_dtype(bias, x.dtype(), op, "bias");
    OODKIT_CHECK(bias.size(0) == weight.size(out_dim), op, ": bias ", bias.describe(), " does not match the ",
                 weight.size(out_dim), " output channels of weight ", weight.describe());
  }
}

// The geometry of a convolution [n, c, h, w] -> [n, k, ho, wo] with a kh x kw kernel
// (conv_transpose2d describes its adjoint convolution). Options: Conv2dOptions or
// ConvTranspose2dOptions (same stride, padding and dilation fields).
template <class Options>
ConvGeometry geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t kh, int64_t kw, int64_t ho,
                      int64_t wo, const Options& o) {
  ConvGeometry g;
  g.n = int(n);
  g.c = int(c);
  g.h = int(h);
  g.w = int(w);
  g.k = int(k);
  g.kh = int(kh);
  g.kw = int(kw);
  g.ho = int(ho);
  g.wo = int(wo);
  g.pad_h = o.pad_h;
  g.pad_w = o.pad_w;
  g.stride_h = o.stride_h;
  g.stride_w = o.stride_w;
  g.dil_h = o.dilation_h;
  g.dil_w = o.dilation_w;
  return g;
}

void check_options(const char* op, int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w) {
  OODKIT_CHECK(stride_h >= 1 && stride_w >= 1, op, ": stride must be >= 1, got (", stride_h, ", ", stride_w, ")");
  OODKIT_CHECK(pad_h >= 0 && pad_w >= 0, op, ": padding must be >= 0, got (", pad_h, ", ", pad_w, ")");
  OODKIT_CHECK(dil_h >= 1 && dil_w >= 1, op, ": dilation must be >= 1, got (", dil_h, ", ", dil_w, ")");
}

}  // namespace

// ============================================================== public ops

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  const char* op = "conv2d";
  check_args(op, x, weight, bias, 1);
  check_options(op, o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dilation_h, o.dilation_w);
  const int64_t kh = weight.size(2), kw = weight.size(3);
  const int64_t ho = (x.size(2) + 2 * int64_t(o.pad_h) - int64_t(o.dilation_h) * (kh - 1) - 1);
  const int64_t wo = (x.size(3) + 2 * int64_t(o.pad_w) - int64_t(o.dilation_w) * (kw - 1) - 1);
  OODKIT_CHECK(ho >= 0 && wo >= 0, op, ": x ", x.describe(), " padded by (", o.pad_h, ", ", o.pad_w,
               ") is smaller than weight ", weight.describe(), " dilated by (", o.dilation_h, ", ",
               o.dilation_w, "): the output would be empty");
  const ConvGeometry g = geometry(x.size(0), x.size(1), x.size(2), x.size(3), weight.size(0), kh, kw,
                                  ho / o.stride_h + 1, wo / o.stride_w + 1, o);

  Tensor y = run_forward(g, x, weight, bias);
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  // Keep only what the requested gradients need: dx needs the weight, dweight needs x.
  const Tensor saved_x = gw ? x : Tensor(), saved_w = gx ? weight : Tensor();
  autograd::record(y, "conv2d", {x, weight, bias}, [g, saved_x, saved_w, gx, gw, gb](const Tensor& gy) {
    return std::vector<Tensor>{gx ? run_backward_data(g, gy, saved_w, Tensor()) : Tensor(),
                               gw ? run_backward_filter(g, saved_x, gy) : Tensor(),
                               gb ? run_bias_grad(gy) : Tensor()};
  });
  return y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const ConvTranspose2dOptions& o) {
  const char* op = "conv_transpose2d";
  check_args(op, x, weight, bias, 0);
  check_options(op, o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dilation_h, o.dilation_w);
  OODKIT_CHECK(o.output_pad_h >= 0 && o.output_pad_w >= 0, op, ": output_pad must be >= 0, got (",
               o.output_pad_h, ", ", o.output_pad_w, ")");
  OODKIT_CHECK((o.output_pad_h < o.stride_h || o.output_pad_h < o.dilation_h) &&
                   (o.output_pad_w < o.stride_w || o.output_pad_w < o.dilation_w),
               op, ": output_pad (", o.output_pad_h, ", ", o.output_pad_w,
               ") must be smaller than either stride (", o.stride_h, ", ", o.stride_w, ") or dilation (",
               o.dilation_h, ", ", o.dilation_w, ") on each axis");
  const int64_t kh = weight.size(2), kw = weight.size(3);
  const int64_t ho = (x.size(2) - 1) * o.stride_h - 2 * int64_t(o.pad_h) + int64_t(o.dilation_h) * (kh - 1) +
                     o.output_pad_h + 1;
  const int64_t wo = (x.size(3) - 1) * o.stride_w - 2 * int64_t(o.pad_w) + int64_t(o.dilation_w) * (kw - 1) +
                     o.output_pad_w + 1;
  OODKIT_CHECK(ho > 0 && wo > 0, op, ": x ", x.describe(), " with weight ", weight.describe(), ", stride (",
               o.stride_h, ", ", o.stride_w, "), padding (", o.pad_h, ", ", o.pad_w, ") gives output size ", ho,
               "x", wo, ", which must be positive");
  OODKIT_CHECK(ho <= INT_MAX && wo <= INT_MAX, op, ": output size ", ho, "x", wo, " exceeds the int range");
  // The adjoint conv: its input is this op's output [N, Cout, ho, wo], its output is x.
  const ConvGeometry g = geometry(x.size(0), weight.size(1), ho, wo, weight.size(0), kh, kw, x.size(2), x.size(3), o);

  Tensor y = run_backward_data(g, x, weight, bias);
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  const Tensor saved_x = gw ? x : Tensor(), saved_w = gx ? weight : Tensor();
  // dx = conv(gy, weight), dweight = conv filter gradient with gy as input and x as output grad.
  autograd::record(y, "conv_transpose2d", {x, weight, bias}, [g, saved_x, saved_w, gx, gw, gb](const Tensor& gy) {
    return std::vector<Tensor>{gx ? run_forward(g, gy, saved_w, Tensor()) : Tensor(),
                               gw ? run_backward_filter(g, gy, saved_x) : Tensor(),
                               gb ? run_bias_grad(gy) : Tensor()};
  });
  return y;
}

}  // namespace oodkit::ops
