// The CUDA interface of a CPU-only build (OODKIT_CUDA=OFF or no toolkit found): nothing is
// available, and anything that would touch a device says so.
#include <cstdlib>
#include <string>

#include "framework/cuda_api.h"
#include "framework/error.h"

namespace oodkit {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  OODKIT_FAIL(what, ": oodkit was built without CUDA (configure with OODKIT_CUDA=ON or AUTO on a "
              "machine with nvcc, cuDNN and cuBLAS)");
}
}  // namespace

namespace detail {
// `what` is a call expression: kept in where(), not in the message.
void throw_no_cuda(const char* what) {
  throw Error("a CUDA operation was reached, but oodkit was built without CUDA (use --device cpu, or configure "
              "with OODKIT_CUDA=ON or AUTO on a machine with nvcc, cuDNN and cuBLAS)",
              str_cat("`", what, "`"));
}
}  // namespace detail

bool cuda_built() { return false; }
std::string cuda_build_versions() { return "CPU only"; }
bool cuda_available() { return false; }
int cuda_device_count() { return 0; }
void cuda_synchronize() {}
std::string cuda_device_name(int) { no_cuda("cuda_device_name"); }
void cuda_memory_info(size_t*, size_t*, int) { no_cuda("cuda_memory_info"); }

namespace {
MathMode g_math_mode = MathMode::FP32;
bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "1";
}
bool g_deterministic = env_flag("OODKIT_DETERMINISTIC");
bool g_sync_debug = env_flag("OODKIT_CUDA_SYNC");
}
void set_math_mode(MathMode mode) { g_math_mode = mode; }
MathMode math_mode() { return g_math_mode; }

void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }
void set_cuda_sync_debug(bool on) { g_sync_debug = on; }
bool cuda_sync_debug() { return g_sync_debug; }

namespace cuda {
void* alloc(size_t, int) { no_cuda("CUDA allocation"); }
void release(void*, int) {}
void empty_cache() {}
AllocatorStats allocator_stats(int) { return {}; }
void copy_host_to_device(void*, const void*, size_t, int) { no_cuda("copy to CUDA"); }
void copy_device_to_host(void*, const void*, size_t, int) { no_cuda("copy from CUDA"); }
void copy_device_to_device(void*, const void*, size_t, int) { no_cuda("CUDA copy"); }
void memset_bytes(void*, int, size_t, int) { no_cuda("CUDA memset"); }
}  // namespace cuda
}  // namespace oodkit
