#include "framework/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "framework/cuda_api.h"
#include "framework/tensor.h"

namespace oodkit {

namespace {
std::atomic<bool> g_poison{false};
}

void set_poison_allocations(bool on) { g_poison = on; }
bool poison_allocations() { return g_poison; }

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  const size_t n = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  if (device.is_cpu()) {
    data_ = std::aligned_alloc(64, n);
    if (!data_)
      throw OutOfMemoryError(detail::str_cat("out of host memory allocating ", bytes, " bytes"));
    if (g_poison) std::memset(data_, 0xFF, n);
  } else {
    data_ = cuda::alloc(n, device.index);
    if (g_poison) cuda::memset_bytes(data_, 0xFF, n, device.index);
  }
}

Storage::~Storage() {
  if (!data_) return;
  if (device_.is_cpu()) std::free(data_);
  else cuda::release(data_, device_.index);
}

}  // namespace oodkit
