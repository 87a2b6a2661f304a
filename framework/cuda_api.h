// Host-side interface to the CUDA runtime, usable from plain C++ in every build.
// In a CPU-only build (OODKIT_CUDA=OFF) cuda_available() is false and the rest throw.
#pragma once
#include <cstddef>
#include <string>

namespace oodkit {

bool cuda_built();         // compiled with CUDA support
// The libraries this build was compiled against, e.g. "CUDA 13.0, cuDNN 9.10.2, cuBLAS 13.0.0",
// or "CPU only" for a build without the CUDA backend.
std::string cuda_build_versions();
bool cuda_available();     // built with CUDA and at least one device is usable
int cuda_device_count();   // 0 when none or no driver
void cuda_synchronize();   // waits for oodkit's stream on the current device
// Free and total memory of a device as the driver reports them (cudaMemGetInfo).
void cuda_memory_info(size_t* free_bytes, size_t* total_bytes, int device = 0);
std::string cuda_device_name(int device = 0);

// Precision of cuDNN convolutions and cuBLAS matrix products on CUDA. FP32 (the default)
// is strict IEEE float32 FMA math; TF32 lets tensor cores round inputs to 10-bit mantissas
// (~1e-3 relative error, several times faster on Ampere/Hopper).
enum class MathMode { FP32, TF32 };
void set_math_mode(MathMode mode);
MathMode math_mode();
// Sets the math mode for a scope and restores the previous one on exit, exceptions included.
class MathModeGuard {
 public:
  explicit MathModeGuard(MathMode mode) : saved_(math_mode()) { set_math_mode(mode); }
  ~MathModeGuard() { set_math_mode(saved_); }
  MathModeGuard(const MathModeGuard&) = delete;
  MathModeGuard& operator=(const MathModeGuard&) = delete;

 private:
  MathMode saved_;
};

// Deterministic cuDNN convolution algorithms only (off by default; on when the environment
// variable OODKIT_DETERMINISTIC is 1 at start). With it a training run on one GPU is bit-identical
// run to run; oodkit's own kernels always are (fixed-order reductions, no float atomics).
void set_deterministic(bool on);
bool deterministic();

// Debug mode (environment variable OODKIT_CUDA_SYNC=1 at start, or set_cuda_sync_debug): every
// kernel launch and every cuDNN/cuBLAS call is followed by a stream synchronisation and an error
// check, so an asynchronous fault (illegal address, misaligned access) is reported at the launch
// or library call that caused it, with its file and line, instead of at a later unrelated call.
void set_cuda_sync_debug(bool on);
bool cuda_sync_debug();

namespace cuda {
// Caching device allocator: freed blocks are kept per device and reused for requests of up
// to twice their size... see runtime.cpp. Ordered on oodkit's single stream per device.
void* alloc(size_t bytes, int device);
void release(void* ptr, int device);
void empty_cache();  // returns cached, unused blocks to the driver
struct AllocatorStats {
  size_t bytes_in_use = 0, bytes_cached = 0, peak_bytes_in_use = 0, num_device_mallocs = 0;
};
AllocatorStats allocator_stats(int device = 0);

// Copies and fills on oodkit's stream. Device-to-host synchronises before returning (and then
// raises any failed device-side check); host-to-device returns at once for up to 64 MiB (pinned
// staging; `src` may be reused immediately) and synchronises for larger copies.
void copy_host_to_device(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_device(void* dst, const void* src, size_t bytes, int device);
void memset_bytes(void* dst, int byte, size_t bytes, int device);
}  // namespace cuda

namespace detail {
[[noreturn]] void throw_no_cuda(const char* what);
}

}  // namespace oodkit

// Wraps a call into CUDA launcher code so that a CPU-only build compiles without it.
#if OODKIT_WITH_CUDA
#define OODKIT_CUDA_CALL(...) __VA_ARGS__
#else
// CPU-only build: the call sits in an unevaluated sizeof (type-checked, never linked or run)
// and the line throws.
#define OODKIT_CUDA_CALL(...) \
  ((void)sizeof(((__VA_ARGS__), 0)), ::oodkit::detail::throw_no_cuda(#__VA_ARGS__))
#endif
