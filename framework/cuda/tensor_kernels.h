// Launchers for tensor-level CUDA kernels (fill, cast). Plain C++ declarations.
#pragma once
#include <cstdint>

#include "framework/dtype.h"

namespace oodkit::cuda {
// dst[0..n) = value converted to `dtype`.
void fill(void* dst, DType dtype, int64_t n, double value, int device);
// dst[i] = static_cast<ddt>(src[i]) for i < n.
void cast(const void* src, DType sdt, void* dst, DType ddt, int64_t n, int device);
}  // namespace oodkit::cuda
