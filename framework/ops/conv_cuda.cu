// cuDNN-backed convolutions (legacy API) and the small kernels around them.
//
// Algorithms come from cudnnGet*Algorithm_v7 (heuristics, no benchmarking), in cuDNN's order,
// filtered by the math mode (FP32: no tensor-op algorithm, descriptor run with CUDNN_FMA_MATH,
// so no TF32 kernel can be used; TF32: never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, which would
// convert float32 data to FP16), by oodkit::deterministic() and by a 1 GiB workspace cap; the
// list is cached per (pass, device, geometry, math mode, determinism) and a run falls through it
// to the first algorithm that works (see run_pass).
#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <string>
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
    OODKIT_ASSERT(g.ho > 0 && g.wo > 0 && g.ho <= ho_nat && g.wo <= wo_nat, op, ": output ", g.ho, "x",
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

std::string describe(const ConvGeometry& g) {
  return detail::str_cat("input [", g.n, ", ", g.c, ", ", g.h, ", ", g.w, "], filter [", g.k, ", ", g.c, ", ", g.kh,
                         ", ", g.kw, "], pad ", g.pad_h, "x", g.pad_w, ", stride ", g.stride_h, "x", g.stride_w,
                         ", dilation ", g.dil_h, "x", g.dil_w);
}

// The output size is not part of the key: the descriptors always use the natural one.
using Key = std::array<int, 17>;
Key make_key(Pass pass, const ConvGeometry& g) {
  return {int(pass), current_device(), int(math_mode()), int(deterministic()), g.n, g.c, g.h, g.w, g.k,
          g.kh,      g.kw,             g.pad_h,          g.pad_w,              g.stride_h, g.stride_w, g.dil_h, g.dil_w};
}

struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;  // math type the descriptor is run with
  size_t workspace = 0;
  bool operator==(const Choice& o) const { return algo == o.algo && math == o.math; }
};

std::mutex g_cache_mutex;
std::map<Key, std::vector<Choice>>& cache() {
  static auto* m = new std::map<Key, std::vector<Choice>>();  // never destroyed (used until exit)
  return *m;
}

bool is_tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// Whether a heuristic result may run under the current settings, and with which math type:
//   FP32: only algorithms that need no tensor ops, run with CUDNN_FMA_MATH (no TF32 anywhere);
//   TF32: any, with the math type cuDNN reports, except CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
//         (it would convert the float32 data to FP16);
//   deterministic(): only CUDNN_DETERMINISTIC algorithms.
template <class Perf>
bool allowed(const Perf& p, cudnnMathType_t* run_math) {
  if (p.status != CUDNN_STATUS_SUCCESS) return false;
  if (deterministic() && p.determinism != CUDNN_DETERMINISTIC) return false;
  if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  if (math_mode() == MathMode::FP32) {
    if (is_tensor_op(p.mathType)) return false;
    *run_math = CUDNN_FMA_MATH;
  } else {
    *run_math = p.mathType;
  }
  return true;
}

// The allowed results in cuDNN's order (best first), each with its workspace queried again with
// the descriptor set to the candidate's math type; candidates whose query fails or whose
// workspace exceeds kWorkspaceCap are dropped. WsQuery: (int algo, size_t* bytes) -> cudnnStatus_t.
template <class Perf, class WsQuery>
std::vector<Choice> candidates(const std::vector<Perf>& perf, int returned, ConvDesc& conv, WsQuery ws_query) {
  std::vector<Choice> out;
  for (int i = 0; i < returned; ++i) {
    Choice c;
    if (!allowed(perf[size_t(i)], &c.math)) continue;
    c.algo = int(perf[size_t(i)].algo);
    if (std::find(out.begin(), out.end(), c) != out.end()) continue;
    conv.set_math(c.math);
    size_t bytes = 0;
    if (ws_query(c.algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > kWorkspaceCap) continue;
    c.workspace = bytes;
    out.push_back(c);
  }
  return out;
}

bool is_allocation_failure(cudnnStatus_t st) {
  return st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
         st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
}

// Runs one convolution pass with the first candidate that works. The candidate list (Build:
// () -> std::vector<Choice>) is computed once per key and cached. A candidate whose workspace
// cannot be allocated is skipped for this call; one that cuDNN refuses with a NOT_SUPPORTED
// status is skipped and evicted from the cache; when cuDNN reports an allocation failure,
// oodkit's cached device blocks are released and the same candidate is retried once. Any other
// status throws, naming the pass, the algorithm and the geometry. Run: (const Choice&, void*
// workspace) -> cudnnStatus_t, with d.conv already set to the choice's math type.
template <class Build, class Run>
void run_pass(Pass pass, const ConvGeometry& g, Descs& d, Build build, Run run) {
  const Key key = make_key(pass, g);
  std::vector<Choice> cands;
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = cache().find(key);
    if (it != cache().end()) cands = it->second;
  }
  if (cands.empty()) {
    cands = build();
    OODKIT_CHECK(!cands.empty(), "conv ", pass_name(pass), ": cuDNN offers no algorithm allowed in ",
                 math_mode() == MathMode::TF32 ? "TF32" : "FP32", " mode", deterministic() ? " (deterministic)" : "",
                 " with a workspace of at most ", kWorkspaceCap, " bytes for ", describe(g));
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    cache()[key] = cands;
  }
  std::vector<Choice> unsupported;
  std::string skipped;
  bool done = false;
  for (const Choice& c : cands) {
    d.conv.set_math(c.math);
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    try {
      void* ws = c.workspace ? workspace(c.workspace) : nullptr;
      st = run(c, ws);
      if (is_allocation_failure(st)) {
        empty_cache();
        st = run(c, ws);
      }
    } catch (const OutOfMemoryError&) {
      skipped += detail::str_cat("; algorithm ", c.algo, ": no memory for its ", c.workspace, "-byte workspace");
      continue;
    }
    if (st == CUDNN_STATUS_SUCCESS) {
      OODKIT_CUDA_SYNC_DEBUG_CHECK(pass_name(pass));
      done = true;
      break;
    }
    OODKIT_CHECK(CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED, "conv ", pass_name(pass), ": cuDNN error ",
                 cudnnGetErrorString(st), " running algorithm ", c.algo, " (math type ", int(c.math), ") for ",
                 describe(g));
    skipped += detail::str_cat("; algorithm ", c.algo, ": ", cudnnGetErrorString(st));
    unsupported.push_back(c);
  }
  if (!unsupported.empty()) {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    std::vector<Choice>& list = cache()[key];
    for (const Choice& u : unsupported) list.erase(std::remove(list.begin(), list.end(), u), list.end());
    if (list.empty()) cache().erase(key);
  }
  if (!done) {
    const std::string msg = detail::str_cat("conv ", pass_name(pass), ": none of the ", cands.size(),
                                            " cuDNN algorithms allowed for ", describe(g), " ran", skipped);
    if (unsupported.empty()) throw OutOfMemoryError(msg);  // every candidate lacked memory
    OODKIT_FAIL(msg);
  }
}

// Heuristic results of one pass (cudnnGet*Algorithm_v7, best first). Query: (int capacity,
// int* returned, Perf* results) -> cudnnStatus_t.
template <class Perf, class Query>
std::vector<Perf> heuristics(int max_count, Query query, int* returned) {
  std::vector<Perf> perf(size_t(std::max(max_count, 1)));
  OODKIT_CUDNN_CHECK(query(int(perf.size()), returned, perf.data()));
  return perf;
}

}  // namespace

// ---------------------------------------------------------------- launchers

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  if (g.n == 0) return;
  Descs d(g, "conv2d_forward");
  cudnnHandle_t h = cudnn();
  const bool crop = d.cropped(g);
  DeviceBuffer full(crop ? int64_t(g.n) * g.k * d.ho_nat * d.wo_nat : 0);
  float* out = crop ? full.ptr : y;
  const float one = 1.0f, zero = 0.0f;
  run_pass(
      Pass::Forward, g, d,
      [&] {
        int count = 0, returned = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count));
        const auto perf = heuristics<cudnnConvolutionFwdAlgoPerf_t>(
            count,
            [&](int cap, int* ret, cudnnConvolutionFwdAlgoPerf_t* r) {
              return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), cap,
                                                            ret, r);
            },
            &returned);
        return candidates(perf, returned, d.conv, [&](int algo, size_t* bytes) {
          return cudnnGetConvolutionForwardWorkspaceSize(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                         cudnnConvolutionFwdAlgo_t(algo), bytes);
        });
      },
      [&](const Choice& c, void* ws) {
        return cudnnConvolutionForward(h, &one, d.x.get(), x, d.w.get(), w, d.conv.get(),
                                       cudnnConvolutionFwdAlgo_t(c.algo), ws, c.workspace, &zero, d.y.get(), out);
      });
  if (crop) copy_window(out, d.ho_nat, d.wo_nat, y, g.ho, g.wo, int64_t(g.n) * g.k);
  if (bias) add_channel_bias(y, bias, g.n, g.k, int64_t(g.ho) * g.wo);
}

void conv2d_backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  if (g.n == 0) return;
  Descs d(g, "conv2d_backward_data");
  cudnnHandle_t h = cudnn();
  const bool pad = d.cropped(g);
  DeviceBuffer full(pad ? int64_t(g.n) * g.k * d.ho_nat * d.wo_nat : 0);
  if (pad) copy_window(dy, g.ho, g.wo, full.ptr, d.ho_nat, d.wo_nat, int64_t(g.n) * g.k);
  const float* dy_nat = pad ? full.ptr : dy;
  const float one = 1.0f, zero = 0.0f;
  run_pass(
      Pass::BackwardData, g, d,
      [&] {
        int count = 0, returned = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count));
        const auto perf = heuristics<cudnnConvolutionBwdDataAlgoPerf_t>(
            count,
            [&](int cap, int* ret, cudnnConvolutionBwdDataAlgoPerf_t* r) {
              return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(),
                                                                 cap, ret, r);
            },
            &returned);
        return candidates(perf, returned, d.conv, [&](int algo, size_t* bytes) {
          return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(),
                                                              cudnnConvolutionBwdDataAlgo_t(algo), bytes);
        });
      },
      [&](const Choice& c, void* ws) {
        return cudnnConvolutionBackwardData(h, &one, d.w.get(), w, d.y.get(), dy_nat, d.conv.get(),
                                            cudnnConvolutionBwdDataAlgo_t(c.algo), ws, c.workspace, &zero,
                                            d.x.get(), dx);
      });
}

void conv2d_backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  if (g.n == 0) {
    OODKIT_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(float) * size_t(g.k) * g.c * g.kh * g.kw, stream()));
    return;
  }
  Descs d(g, "conv2d_backward_filter");
  cudnnHandle_t h = cudnn();
  const bool pad = d.cropped(g);
  DeviceBuffer full(pad ? int64_t(g.n) * g.k * d.ho_nat * d.wo_nat : 0);
  if (pad) copy_window(dy, g.ho, g.wo, full.ptr, d.ho_nat, d.wo_nat, int64_t(g.n) * g.k);
  const float* dy_nat = pad ? full.ptr : dy;
  const float one = 1.0f, zero = 0.0f;
  run_pass(
      Pass::BackwardFilter, g, d,
      [&] {
        int count = 0, returned = 0;
        OODKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count));
        const auto perf = heuristics<cudnnConvolutionBwdFilterAlgoPerf_t>(
            count,
            [&](int cap, int* ret, cudnnConvolutionBwdFilterAlgoPerf_t* r) {
              return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(),
                                                                   cap, ret, r);
            },
            &returned);
        return candidates(perf, returned, d.conv, [&](int algo, size_t* bytes) {
          return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(),
                                                                cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
        });
      },
      [&](const Choice& c, void* ws) {
        return cudnnConvolutionBackwardFilter(h, &one, d.x.get(), x, d.y.get(), dy_nat, d.conv.get(),
                                              cudnnConvolutionBwdFilterAlgo_t(c.algo), ws, c.workspace, &zero,
                                              d.w.get(), dw);
      });
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
