// cuDNN-backed convolutions (legacy API) and the small kernels around them.
//
// Algorithms come from cudnnGet*Algorithm_v7 (heuristics, no benchmarking): the first result
// with status success, the requested math type and a workspace of at most kWorkspaceCap is
// taken, and the choice is cached per (pass, device, geometry, math type). In FP32 mode the
// convolution descriptor is always run with CUDNN_FMA_MATH, so no TF32 tensor-core kernel
// can be used.
#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <vector>

#include "framework/cuda/context.h"
#include "framework/cuda_api.h"
#include "framework/ops/conv_cuda.h"

namespace oodkit::cuda {

namespace {

constexpr size_t kWorkspaceCap = size_t(1) << 30;  // 1 GiB

// ---------------------------------------------------------------- RAII wrappers

template <class H, cudnnStatus_t (*Destroy)(H)>
struct Owned {
  H h = nullptr;
  Owned() = default;
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() {
    if (h) Destroy(h);  // no throw from a destructor
  }
};

struct TensorDesc {
  Owned<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor> d;
  TensorDesc(int n, int c, int h, int w) {
    OODKIT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d.h));
    OODKIT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.h, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
  cudnnTensorDescriptor_t get() const { return d.h; }
};

struct FilterDesc {
  Owned<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor> d;
  FilterDesc(int k, int c, int h, int w) {
    OODKIT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d.h));
    OODKIT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d.h, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, h, w));
  }
  cudnnFilterDescriptor_t get() const { return d.h; }
};

struct ConvDesc {
  Owned<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor> d;
  ConvDesc(const ConvGeometry& g, cudnnMathType_t math) {
    OODKIT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d.h));
    OODKIT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d.h, g.pad_h, g.pad_w, g.stride_h, g.stride_w,
                                                       g.dil_h, g.dil_w, CUDNN_CROSS_CORRELATION,
                                                       CUDNN_DATA_FLOAT));
    set_math(math);
  }
  void set_math(cudnnMathType_t math) { OODKIT_CUDNN_CHECK(cudnnSetConvolutionMathType(d.h, math)); }
  cudnnConvolutionDescriptor_t get() const { return d.h; }
};

// A temporary device buffer from oodkit's caching allocator. Releasing it right after the
// kernels using it were enqueued is safe: all work is ordered on one stream per device.
struct DeviceBuffer {
  float* ptr = nullptr;
  int device = 0;
  explicit DeviceBuffer(int64_t floats) {
    if (floats <= 0) return;
    device = current_device();
    ptr = static_cast<float*>(alloc(size_t(floats) * sizeof(float), device));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr) release(ptr, device);
  }
};

// ---------------------------------------------------------------- geometry

int natural_out(int in, int k, int pad, int stride, int dil) {
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

// The descriptors of one geometry. cuDNN requires the output descriptor to have the natural
// output size; g.ho/g.wo may be smaller (transposed conv with output_pad >= stride), in which
// case the callers crop (forward) or zero-pad (gradients) the output-side tensor.
struct Descs {
  int ho_nat, wo_nat;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  Descs(const ConvGeometry& g, const char* op)
      : ho_nat(natural_out(g.h, g.kh, g.pad_h, g.stride_h, g.dil_h)),
        wo_nat(natural_out(g.w, g.kw, g.pad_w, g.stride_w, g.dil_w)),
        x(g.n, g.c, g.h, g.w),
        y(g.n, g.k, ho_nat, wo_nat),
        w(g.k, g.c, g.kh, g.kw),
        conv(g, cudnn_math_type()) {
    OODKIT_CHECK(g.ho > 0 && g.wo > 0 && g.ho <= ho_nat && g.wo <= wo_nat, op, ": output ", g.ho, "x",
                 g.wo, " does not fit the natural output ", ho_nat, "x", wo_nat, " of input ", g.h, "x",
                 g.w);
  }
  bool cropped(const ConvGeometry& g) const { return g.ho != ho_nat || g.wo != wo_nat; }
};

// ---------------------------------------------------------------- kernels

// dst[p, i, j] = src[p, i, j] where (i, j) lies inside src's [sh, sw] plane, else 0; dst is
// [planes, dh, dw]. Crops (dh <= sh) or zero-pads (dh >= sh) each plane at the bottom/right.
__global__ void copy_window_kernel(const float* src, int sh, int sw, float* dst, int dh, int dw,
                                   int64_t total) {
  OODKIT_GRID_STRIDE(t, total) {
    const int j = int(t % dw);
    const int64_t r = t / dw;
    const int i = int(r % dh);
    const int64_t p = r / dh;
    dst[t] = (i < sh && j < sw) ? src[(p * sh + i) * sw + j] : 0.0f;
  }
}

void copy_window(const float* src, int sh, int sw, float* dst, int dh, int dw, int64_t planes) {
  const int64_t total = planes * dh * dw;
  if (total == 0) return;
  copy_window_kernel<<<grid_for(total), 256, 0, stream()>>>(src, sh, sw, dst, dh, dw, total);
  OODKIT_CUDA_CHECK_LAUNCH();
}

__global__ void add_bias_kernel(float* y, const float* bias, int channels, int64_t hw, int64_t total) {
  OODKIT_GRID_STRIDE(i, total) y[i] += bias[(i / hw) % channels];
}

constexpr int kBiasThreads = 256;

// One block per channel; fixed-order double reduction (deterministic).
__global__ void bias_grad_kernel(const float* dy, int n, int channels, int64_t hw, float* db) {
  __shared__ double sh[kBiasThreads];
  const int ch = blockIdx.x;
  const int64_t count = int64_t(n) * hw;
  double acc = 0.0;
  for (int64_t t = threadIdx.x; t < count; t += kBiasThreads) {
    const int64_t img = t / hw, j = t - img * hw;
    acc += double(dy[(img * channels + ch) * hw + j]);
  }
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kBiasThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[ch] = float(sh[0]);
}

// ---------------------------------------------------------------- algorithm choice

enum class Pass : int { Forward = 0, BackwardData = 1, BackwardFilter = 2 };
const char* pass_name(Pass p) {
  switch (p) {
    case Pass::Forward: return "forward";
    case Pass::BackwardData: return "backward-data";
    default: return "backward-filter";
  }
}

// The output size is not part of the key: the descriptors always use the natural one.
using Key = std::array<int, 16>;
Key make_key(Pass pass, const ConvGeometry& g, cudnnMathType_t math) {
  return {int(pass), current_device(), int(math), g.n,       g.c,        g.h,        g.w,     g.k,
          g.kh,      g.kw,             g.pad_h,   g.pad_w,   g.stride_h, g.stride_w, g.dil_h, g.dil_w};
}

struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;  // math type the descriptor is run with
  size_t workspace = 0;
};

std::mutex g_cache_mutex;
std::map<Key, Choice>& cache() {
  static auto* m = new std::map<Key, Choice>();  // never destroyed (used until exit)
  return *m;
}

bool is_tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// Index of the chosen perf result, or -1. First pass: exact math type; second pass: in FP32
// mode any non-tensor-op result (it is then run with CUDNN_FMA_MATH), in TF32 mode any result.
template <class Perf>
int pick(const std::vector<Perf>& perf, int returned, cudnnMathType_t want) {
  for (int i = 0; i < returned; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceCap && perf[i].mathType == want)
      return i;
  for (int i = 0; i < returned; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceCap &&
        (want != CUDNN_FMA_MATH || !is_tensor_op(perf[i].mathType)))
      return i;
  return -1;
}

// Returns the cached choice for (pass, g, math mode) or computes it; leaves d.conv set to the
// choice's math type either way.
template <class Query, class WsSize>
Choice choose(Pass pass, const ConvGeometry& g, Descs& d, Query query, WsSize ws_size) {
  const cudnnMathType_t want = cudnn_math_type();
  const Key key = make_key(pass, g, want);
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = cache().find(key);
    if (it != cache().end()) {
      d.conv.set_math(it->second.math);
      return it->second;
    }
  }
  Choice c;
  int algo = -1;
  cudnnMathType_t perf_math = want;
  query(algo, perf_math);
  OODKIT_CHECK(algo >= 0, "conv ", pass_name(pass), ": cuDNN offers no algorithm with math type ", int(want),
               " and a workspace of at most ", kWorkspaceCap, " bytes for input [", g.n, ", ", g.c, ", ",
               g.h, ", ", g.w, "], filter [", g.k, ", ", g.c, ", ", g.kh, ", ", g.kw, "], pad ", g.pad_h,
               "x", g.pad_w, ", stride ", g.stride_h, "x", g.stride_w, ", dilation ", g.dil_h, "x", g.dil_w);
  c.algo = algo;
  c.math = want == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : perf_math;
  d.conv.set_math(c.math);
  c.workspace = ws_size(algo);
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  cache()[key] = c;
  return c;
}

Choice forward_choice(const ConvGeometry& g, Descs& d) {
  cudnnHandle_t h = cudnn();
  return choose(
      Pass::Forward, g, d,
      [&](int& algo, cudnnMathType_t& math) {
        int count = 0, returned = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count));
        std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(size_t(std::max(count, 1)));
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                                  int(perf.size()), &returned, perf.data()));
        const int i = pick(perf, returned, cudnn_math_type());
        if (i >= 0) {
          algo = int(perf[size_t(i)].algo);
          math = perf[size_t(i)].mathType;
        }
      },
      [&](int algo) {
        size_t bytes = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
            h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), cudnnConvolutionFwdAlgo_t(algo), &bytes));
        return bytes;
      });
}

Choice backward_data_choice(const ConvGeometry& g, Descs& d) {
  cudnnHandle_t h = cudnn();
  return choose(
      Pass::BackwardData, g, d,
      [&](int& algo, cudnnMathType_t& math) {
        int count = 0, returned = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count));
        std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(size_t(std::max(count, 1)));
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
            h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), int(perf.size()), &returned, perf.data()));
        const int i = pick(perf, returned, cudnn_math_type());
        if (i >= 0) {
          algo = int(perf[size_t(i)].algo);
          math = perf[size_t(i)].mathType;
        }
      },
      [&](int algo) {
        size_t bytes = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
            h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), cudnnConvolutionBwdDataAlgo_t(algo), &bytes));
        return bytes;
      });
}

Choice backward_filter_choice(const ConvGeometry& g, Descs& d) {
  cudnnHandle_t h = cudnn();
  return choose(
      Pass::BackwardFilter, g, d,
      [&](int& algo, cudnnMathType_t& math) {
        int count = 0, returned = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count));
        std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(size_t(std::max(count, 1)));
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), int(perf.size()), &returned, perf.data()));
        const int i = pick(perf, returned, cudnn_math_type());
        if (i >= 0) {
          algo = int(perf[size_t(i)].algo);
          math = perf[size_t(i)].mathType;
        }
      },
      [&](int algo) {
        size_t bytes = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
            h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), cudnnConvolutionBwdFilterAlgo_t(algo), &bytes));
        return bytes;
      });
}

void* workspace_or_null(size_t bytes) { return bytes ? workspace(bytes) : nullptr; }

}  // namespace

// ---------------------------------------------------------------- launchers

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  if (g.n == 0) return;
  Descs d(g, "conv2d_forward");
  const Choice c = forward_choice(g, d);
  const bool crop = d.cropped(g);
  DeviceBuffer full(crop ? int64_t(g.n) * g.k * d.ho_nat * d.wo_nat : 0);
  float* out = crop ? full.ptr : y;
  const float one = 1.0f, zero = 0.0f;
  OODKIT_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, d.x.get(), x, d.w.get(), w, d.conv.get(),
                                             cudnnConvolutionFwdAlgo_t(c.algo), workspace_or_null(c.workspace),
                                             c.workspace, &zero, d.y.get(), out));
  if (crop) copy_window(out, d.ho_nat, d.wo_nat, y, g.ho, g.wo, int64_t(g.n) * g.k);
  if (bias) add_channel_bias(y, bias, g.n, g.k, int64_t(g.ho) * g.wo);
}

void conv2d_backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  if (g.n == 0) return;
  Descs d(g, "conv2d_backward_data");
  const Choice c = backward_data_choice(g, d);
  const bool pad = d.cropped(g);
  DeviceBuffer full(pad ? int64_t(g.n) * g.k * d.ho_nat * d.wo_nat : 0);
  if (pad) copy_window(dy, g.ho, g.wo, full.ptr, d.ho_nat, d.wo_nat, int64_t(g.n) * g.k);
  const float one = 1.0f, zero = 0.0f;
  OODKIT_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, d.w.get(), w, d.y.get(), pad ? full.ptr : dy,
                                                  d.conv.get(), cudnnConvolutionBwdDataAlgo_t(c.algo),
                                                  workspace_or_null(c.workspace), c.workspace, &zero, d.x.get(),
                                                  dx));
}

void conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  if (g.n == 0) {
    OODKIT_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(float) * size_t(g.k) * g.c * g.kh * g.kw, stream()));
    return;
  }
  Descs d(g, "conv2d_backward_filter");
  const Choice c = backward_filter_choice(g, d);
  const bool pad = d.cropped(g);
  DeviceBuffer full(pad ? int64_t(g.n) * g.k * d.ho_nat * d.wo_nat : 0);
  if (pad) copy_window(dy, g.ho, g.wo, full.ptr, d.ho_nat, d.wo_nat, int64_t(g.n) * g.k);
  const float one = 1.0f, zero = 0.0f;
  OODKIT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, d.x.get(), x, d.y.get(), pad ? full.ptr : dy,
                                                    d.conv.get(), cudnnConvolutionBwdFilterAlgo_t(c.algo),
                                                    workspace_or_null(c.workspace), c.workspace, &zero,
                                                    d.w.get(), dw));
}

void add_channel_bias(float* y, const float* bias, int n, int channels, int64_t hw) {
  const int64_t total = int64_t(n) * channels * hw;
  if (total == 0) return;
  add_bias_kernel<<<grid_for(total), 256, 0, stream()>>>(y, bias, channels, hw, total);
  OODKIT_CUDA_CHECK_LAUNCH();
}

void channel_bias_grad(const float* dy, int n, int channels, int64_t hw, float* db) {
  if (channels == 0) return;
  bias_grad_kernel<<<channels, kBiasThreads, 0, stream()>>>(dy, n, channels, hw, db);
  OODKIT_CUDA_CHECK_LAUNCH();
}

}  // namespace oodkit::cuda
