#include "framework/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "framework/cuda_api.h"

// AddressSanitizer builds (OODKIT_SANITIZE): the bytes past `bytes` up to the 64-byte rounding
// are marked unaddressable, so an access past the end of a CPU tensor is reported even when it
// stays inside the rounded allocation. Without ASan these macros expand to nothing.
#if defined(__SANITIZE_ADDRESS__)
#define OODKIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OODKIT_ASAN 1
#endif
#endif
#ifdef OODKIT_ASAN
#include <sanitizer/asan_interface.h>
#define OODKIT_POISON_TAIL(p, used, total) \
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + (used), (total) - (used))
#define OODKIT_UNPOISON(p, total) ASAN_UNPOISON_MEMORY_REGION(p, total)
#else
#define OODKIT_POISON_TAIL(p, used, total) ((void)0)
#define OODKIT_UNPOISON(p, total) ((void)0)
#endif

namespace oodkit {

namespace {
std::atomic<bool> g_poison{false};
// Bytes actually allocated for `bytes`: aligned_alloc needs a multiple of the 64-byte alignment.
size_t rounded_bytes(size_t bytes) { return bytes == 0 ? 64 : (bytes + 63) / 64 * 64; }
}

void set_poison_allocations(bool on) { g_poison = on; }
bool poison_allocations() { return g_poison; }

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  const size_t n = rounded_bytes(bytes);
  if (device.is_cpu()) {
    data_ = std::aligned_alloc(64, n);
    if (!data_)
      throw OutOfMemoryError(detail::str_cat("out of host memory allocating ", bytes, " bytes"));
    if (g_poison) std::memset(data_, 0xFF, n);
    OODKIT_POISON_TAIL(data_, bytes, n);
  } else {
    data_ = cuda::alloc(n, device.index);
    if (g_poison) cuda::memset_bytes(data_, 0xFF, n, device.index);
  }
}

Storage::Storage(void* data, size_t bytes, Device device, std::shared_ptr<void> owner)
    : data_(data), bytes_(bytes), device_(device), owner_(std::move(owner)) {
  OODKIT_CHECK(owner_ != nullptr, "Storage: borrowed memory needs an owner to keep it alive");
  OODKIT_CHECK(data_ != nullptr || bytes == 0, "Storage: borrowed memory at a null address");
}

Storage::~Storage() {
  if (!data_ || owner_) return;  // borrowed: owner_ is released after this body
  if (device_.is_cpu()) {
    OODKIT_UNPOISON(data_, rounded_bytes(bytes_));
    std::free(data_);
  } else {
    cuda::release(data_, device_.index);
  }
}

}  // namespace oodkit
