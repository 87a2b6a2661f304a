// Check macros for CUDA runtime, cuDNN and cuBLAS calls (CUDA translation units only).
// Each throws oodkit::Error whose message names the library and its error (e.g. "cuDNN error:
// CUDNN_STATUS_BAD_PARAM"); the call expression, file and line are in where() (OODKIT_DEBUG=1).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "framework/cuda_api.h"
#include "framework/error.h"

namespace oodkit::detail {
const char* cublas_status_name(cublasStatus_t s);
// With cuda_sync_debug() on: synchronises oodkit's stream on the current device and throws,
// naming `what`, file and line, if the work enqueued so far failed.
void sync_check(const char* file, int line, const char* what);
}  // namespace oodkit::detail

#define OODKIT_CUDA_SYNC_DEBUG_CHECK(what) \
  do {                                     \
    if (::oodkit::cuda_sync_debug()) ::oodkit::detail::sync_check(__FILE__, __LINE__, what); \
  } while (0)

#define OODKIT_CUDA_CHECK(expr)                                                                  \
  do {                                                                                           \
    const cudaError_t oodkit_err_ = (expr);                                                      \
    if (oodkit_err_ != cudaSuccess)                                                              \
      ::oodkit::detail::throw_error(__FILE__, __LINE__, #expr,                                   \
                                    ::oodkit::detail::str_cat("CUDA error: ",                    \
                                                              cudaGetErrorString(oodkit_err_))); \
  } while (0)

#define OODKIT_CUDNN_CHECK(expr)                                                                  \
  do {                                                                                            \
    const cudnnStatus_t oodkit_st_ = (expr);                                                      \
    if (oodkit_st_ != CUDNN_STATUS_SUCCESS)                                                       \
      ::oodkit::detail::throw_error(__FILE__, __LINE__, #expr,                                    \
                                    ::oodkit::detail::str_cat("cuDNN error: ",                    \
                                                              cudnnGetErrorString(oodkit_st_))); \
    OODKIT_CUDA_SYNC_DEBUG_CHECK(#expr);                                                          \
  } while (0)

#define OODKIT_CUBLAS_CHECK(expr)                                                       \
  do {                                                                                  \
    const cublasStatus_t oodkit_st_ = (expr);                                           \
    if (oodkit_st_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::oodkit::detail::throw_error(                                                    \
          __FILE__, __LINE__, #expr,                                                    \
          ::oodkit::detail::str_cat("cuBLAS error: ",                                   \
                                    ::oodkit::detail::cublas_status_name(oodkit_st_))); \
    OODKIT_CUDA_SYNC_DEBUG_CHECK(#expr);                                                \
  } while (0)

// After every kernel launch: reports launch-configuration errors at the launch site (and, in
// the OODKIT_CUDA_SYNC debug mode, any fault of the kernel itself).
#define OODKIT_CUDA_CHECK_LAUNCH()                 \
  do {                                             \
    OODKIT_CUDA_CHECK(cudaGetLastError());         \
    OODKIT_CUDA_SYNC_DEBUG_CHECK("kernel launch"); \
  } while (0)
