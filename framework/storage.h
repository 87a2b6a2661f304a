// Storage: one owned allocation on one device. CPU memory is 64-byte aligned; CUDA memory
// comes from the caching allocator (framework/cuda_api.h).
#pragma once
#include <cstddef>
#include <memory>

#include "framework/dtype.h"

namespace oodkit {

class Storage {
 public:
  // Allocates `bytes` on `device` (throws OutOfMemoryError / Error naming the size and device).
  Storage(size_t bytes, Device device);
  // Borrows `bytes` at `data` on `device`, memory owned elsewhere (a NumPy array, a DLPack tensor):
  // nothing is allocated or freed here; `owner` (non-null) is held as long as this storage and
  // released after it, so the memory outlives every tensor that views it.
  Storage(void* data, size_t bytes, Device device, std::shared_ptr<void> owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  std::shared_ptr<void> owner_;  // set for borrowed memory
};

}  // namespace oodkit
