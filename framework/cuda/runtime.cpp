// CUDA runtime glue: device queries, the caching allocator, streams and library handles.
#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/cuda/context.h"
#include "framework/cuda_api.h"

namespace oodkit {

namespace detail {
const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}
void sync_check(const char* file, int line, const char* what) {
  cudaError_t err = cudaStreamSynchronize(cuda::stream());
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err != cudaSuccess)
    throw_error(file, line, what, str_cat("CUDA error (found by OODKIT_CUDA_SYNC right after ", what, "): ",
                                          cudaGetErrorString(err)));
  cuda::raise_device_checks();
}
void throw_no_cuda(const char* what) {
  OODKIT_UNREACHABLE("CUDA call `", what, "` reached in a build without CUDA");
}
}  // namespace detail

namespace {

MathMode g_math_mode = MathMode::FP32;
bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "1";
}
bool g_deterministic = env_flag("OODKIT_DETERMINISTIC");
bool g_sync_debug = env_flag("OODKIT_CUDA_SYNC");

struct DeviceState {
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  cublasMath_t cublas_math = CUBLAS_DEFAULT_MATH;  // the handle's math mode, once set
  bool cublas_math_set = false;
  cuda::DeviceCheckSlot* check_slot = nullptr;  // device memory, zeroed
  bool check_pending = false;
  // Pinned staging buffers for host-to-device copies (see copy_host_to_device), used in turn.
  struct Staging {
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t done = nullptr;  // recorded after the copy out of `host` was enqueued
  };
  std::array<Staging, 4> staging;
  size_t next_staging = 0;
};
std::mutex g_staging_mutex;
constexpr size_t kStagingMaxBytes = size_t(64) << 20;

std::mutex g_state_mutex;
std::unordered_map<int, DeviceState> g_states;

// The current device's state. Called on every launch: after the first call per thread and device
// it is a cudaGetDevice and an array read (no lock; map nodes never move).
DeviceState& state() {
  const int dev = cuda::current_device();
  thread_local std::array<DeviceState*, 16> known{};
  if (dev >= 0 && dev < int(known.size()) && known[size_t(dev)]) return *known[size_t(dev)];
  std::lock_guard<std::mutex> lock(g_state_mutex);
  DeviceState& s = g_states[dev];
  if (!s.stream) OODKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  if (dev >= 0 && dev < int(known.size())) known[size_t(dev)] = &s;
  return s;
}

// ---- caching allocator -------------------------------------------------------------
// Blocks are rounded up to 512 bytes. A freed block goes to its device's free list; a
// request takes the smallest cached block of at least its size and at most twice it.
// When cudaMalloc fails, the cache is released and the call retried once. All work is on
// one stream per device, so a block freed by the host may be reused by later kernels.
struct Allocator {
  std::mutex mu;
  struct PerDevice {
    std::multimap<size_t, void*> free_blocks;
    std::unordered_map<void*, size_t> live;
    cuda::AllocatorStats stats;
  };
  std::unordered_map<int, PerDevice> devices;

  void release_cached(int dev, PerDevice& d) {
    if (d.free_blocks.empty()) return;
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(dev);
    cudaStreamSynchronize(state().stream);
    for (auto& [sz, p] : d.free_blocks) {
      cudaFree(p);
      d.stats.bytes_cached -= sz;
    }
    d.free_blocks.clear();
    cudaSetDevice(prev);
  }
};
Allocator& allocator() {
  static Allocator* a = new Allocator();  // never destroyed: storages may outlive statics
  return *a;
}

}  // namespace

bool cuda_built() { return true; }

std::string cuda_build_versions() {
  return "CUDA " + std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) +
         ", cuDNN " + std::to_string(CUDNN_MAJOR) + "." + std::to_string(CUDNN_MINOR) + "." +
         std::to_string(CUDNN_PATCHLEVEL) + ", cuBLAS " + std::to_string(CUBLAS_VER_MAJOR) + "." +
         std::to_string(CUBLAS_VER_MINOR) + "." + std::to_string(CUBLAS_VER_PATCH);
}

int cuda_device_count() {
  static const int count = [] {  // asked once: allocations check it
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver" error
      return 0;
    }
    return n;
  }();
  return count;
}

bool cuda_available() {
  static const bool available = cuda_device_count() > 0;
  return available;
}

void cuda_synchronize() {
  if (!cuda_available()) return;
  OODKIT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  cuda::raise_device_checks();
}

void cuda_memory_info(size_t* free_bytes, size_t* total_bytes, int device) {
  OODKIT_CUDA_CHECK(cudaSetDevice(device));
  OODKIT_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

std::string cuda_device_name(int device) {
  cudaDeviceProp p{};
  OODKIT_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  return p.name;
}

void set_math_mode(MathMode mode) { g_math_mode = mode; }
MathMode math_mode() { return g_math_mode; }

void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }
void set_cuda_sync_debug(bool on) { g_sync_debug = on; }
bool cuda_sync_debug() { return g_sync_debug; }

namespace cuda {

int current_device() {
  int d = 0;
  OODKIT_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

cudaStream_t stream() { return state().stream; }

cudnnHandle_t cudnn() {
  DeviceState& s = state();
  if (!s.cudnn) {
    OODKIT_CUDNN_CHECK(cudnnCreate(&s.cudnn));
    OODKIT_CUDNN_CHECK(cudnnSetStream(s.cudnn, s.stream));
  }
  return s.cudnn;
}

cublasHandle_t cublas(MathMode mode) {
  DeviceState& s = state();
  if (!s.cublas) {
    OODKIT_CUBLAS_CHECK(cublasCreate(&s.cublas));
    OODKIT_CUBLAS_CHECK(cublasSetStream(s.cublas, s.stream));
  }
  const cublasMath_t want = mode == MathMode::TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH;
  if (!s.cublas_math_set || s.cublas_math != want) {  // set on a change only, not per GEMM
    OODKIT_CUBLAS_CHECK(cublasSetMathMode(s.cublas, want));
    s.cublas_math = want;
    s.cublas_math_set = true;
  }
  return s.cublas;
}

cublasHandle_t cublas() { return cublas(g_math_mode); }

cudnnMathType_t cudnn_math_type() {
  return g_math_mode == MathMode::TF32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

cublasComputeType_t cublas_compute_type() {
  return g_math_mode == MathMode::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_PEDANTIC;
}

DeviceCheckSlot* device_check_slot() {
  DeviceState& s = state();
  if (!s.check_slot) {
    void* p = nullptr;
    OODKIT_CUDA_CHECK(cudaMalloc(&p, sizeof(DeviceCheckSlot)));
    OODKIT_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(DeviceCheckSlot), s.stream));
    s.check_slot = static_cast<DeviceCheckSlot*>(p);
  }
  s.check_pending = true;
  return s.check_slot;
}

void raise_device_checks() {
  DeviceState& s = state();
  if (!s.check_pending) return;
  s.check_pending = false;
  // Read and reset on oodkit's (non-blocking) stream: the legacy default stream's cudaMemcpy /
  // cudaMemset are not ordered with it, so a reset there could land after the next kernel that
  // writes the slot (and the read could run before the kernel that wrote it).
  DeviceCheckSlot got{};
  OODKIT_CUDA_CHECK(cudaMemcpyAsync(&got, s.check_slot, sizeof got, cudaMemcpyDeviceToHost, s.stream));
  OODKIT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  if (got.what == 0) return;
  OODKIT_CUDA_CHECK(cudaMemsetAsync(s.check_slot, 0, sizeof(DeviceCheckSlot), s.stream));
  switch (got.what) {
    case kCrossEntropyLabel:
      OODKIT_FAIL("cross_entropy: label ", got.value, " at index ", got.index, " is out of range [0, ", got.bound,
                  ") for ", got.bound, " classes (found on the device; reported at the next synchronisation)");
    default:
      OODKIT_UNREACHABLE("unknown device check ", got.what, " failed at index ", got.index, " (value ", got.value, ")");
  }
}

void* workspace(size_t bytes) {
  DeviceState& s = state();
  if (bytes > s.workspace_bytes) {
    if (s.workspace) release(s.workspace, current_device());
    s.workspace = nullptr;  // alloc may throw: never keep a released block
    s.workspace_bytes = 0;
    s.workspace = alloc(bytes, current_device());
    s.workspace_bytes = bytes;
  }
  return s.workspace;
}

void* alloc(size_t bytes, int device) {
  OODKIT_CHECK(cuda_available(), "cannot allocate ", bytes, " bytes on cuda:", device,
               ": no CUDA device is available (", cuda_device_count(), " found)");
  OODKIT_CHECK(device >= 0 && device < cuda_device_count(), "cuda:", device, " does not exist (",
               cuda_device_count(), " devices)");
  // One GPU per process until ops set the device of their tensors at dispatch: work on cuda:1
  // would otherwise run on cuda:0's stream.
  OODKIT_CHECK(device == 0, "cuda:", device, " requested: oodkit uses one GPU per process, cuda:0; choose the GPU "
               "with CUDA_VISIBLE_DEVICES (e.g. CUDA_VISIBLE_DEVICES=", device, ")");
  if (current_device() != device) OODKIT_CUDA_CHECK(cudaSetDevice(device));
  const size_t n = (std::max<size_t>(bytes, 1) + 511) / 512 * 512;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  Allocator::PerDevice& d = a.devices[device];
  void* p = nullptr;
  size_t got = n;
  auto it = d.free_blocks.lower_bound(n);
  if (it != d.free_blocks.end() && it->first <= 2 * n) {
    got = it->first;
    p = it->second;
    d.free_blocks.erase(it);
    d.stats.bytes_cached -= got;
  } else {
    cudaError_t err = cudaMalloc(&p, n);
    if (err != cudaSuccess) {
      cudaGetLastError();
      a.release_cached(device, d);
      err = cudaMalloc(&p, n);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw OutOfMemoryError(detail::str_cat(
          "CUDA out of memory on cuda:", device, ": requested ", n, " bytes; oodkit holds ",
          d.stats.bytes_in_use, " bytes in use; the device has ", free_b, " of ", total_b, " bytes free"));
    }
    ++d.stats.num_device_mallocs;
  }
  d.live[p] = got;
  d.stats.bytes_in_use += got;
  d.stats.peak_bytes_in_use = std::max(d.stats.peak_bytes_in_use, d.stats.bytes_in_use);
  return p;
}

void release(void* ptr, int device) {
  if (!ptr) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  Allocator::PerDevice& d = a.devices[device];
  auto it = d.live.find(ptr);
  if (it == d.live.end()) return;  // not ours; never happens for Storage-owned memory
  d.stats.bytes_in_use -= it->second;
  d.stats.bytes_cached += it->second;
  d.free_blocks.emplace(it->second, ptr);
  d.live.erase(it);
}

void empty_cache() {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  for (auto& [dev, d] : a.devices) a.release_cached(dev, d);
}

AllocatorStats allocator_stats(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return a.devices[device].stats;
}

// Copies of up to 64 MiB go through the device's ring of pinned staging buffers: the data is
// copied into the next buffer on the host (first waiting, by its event, for that buffer's previous
// copy to finish) and the transfer is enqueued on oodkit's stream; the call returns without waiting
// for the GPU, so a training step's batch upload does not drain the queue. `src` may be reused at
// once. Larger copies (weights, datasets) are synchronous.
void copy_host_to_device(void* dst, const void* src, size_t bytes, int device) {
  OODKIT_CUDA_CHECK(cudaSetDevice(device));
  if (bytes == 0) return;
  DeviceState& s = state();
  if (bytes > kStagingMaxBytes) {
    OODKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s.stream));
    OODKIT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    return;
  }
  std::lock_guard<std::mutex> lock(g_staging_mutex);
  DeviceState::Staging& slot = s.staging[s.next_staging];
  s.next_staging = (s.next_staging + 1) % s.staging.size();
  if (slot.done) {
    OODKIT_CUDA_CHECK(cudaEventSynchronize(slot.done));
  } else {
    OODKIT_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
  }
  if (slot.bytes < bytes) {
    if (slot.host) OODKIT_CUDA_CHECK(cudaFreeHost(slot.host));
    slot.host = nullptr;
    slot.bytes = 0;
    OODKIT_CUDA_CHECK(cudaHostAlloc(&slot.host, bytes, cudaHostAllocDefault));
    slot.bytes = bytes;
  }
  std::memcpy(slot.host, src, bytes);
  OODKIT_CUDA_CHECK(cudaMemcpyAsync(dst, slot.host, bytes, cudaMemcpyHostToDevice, s.stream));
  OODKIT_CUDA_CHECK(cudaEventRecord(slot.done, s.stream));
}

void copy_device_to_host(void* dst, const void* src, size_t bytes, int device) {
  OODKIT_CUDA_CHECK(cudaSetDevice(device));
  OODKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  OODKIT_CUDA_CHECK(cudaStreamSynchronize(stream()));
  raise_device_checks();
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, int device) {
  OODKIT_CUDA_CHECK(cudaSetDevice(device));
  OODKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

void memset_bytes(void* dst, int byte, size_t bytes, int device) {
  OODKIT_CUDA_CHECK(cudaSetDevice(device));
  OODKIT_CUDA_CHECK(cudaMemsetAsync(dst, byte, bytes, stream()));
}

}  // namespace cuda
}  // namespace oodkit
