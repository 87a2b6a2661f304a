// Device side of the argument checks declared in framework/cuda/context.h.
#pragma once
#include "framework/cuda/context.h"

namespace oodkit::cuda {

// Records (what, index, value, bound) in `slot` unless an earlier failure is already recorded.
__device__ inline void report_bad_value(DeviceCheckSlot* slot, DeviceCheck what, long long index, long long value,
                                        long long bound) {
  if (atomicCAS(&slot->what, 0ull, (unsigned long long)what) == 0ull) {
    slot->index = index;
    slot->value = value;
    slot->bound = bound;
  }
}

}  // namespace oodkit::cuda
