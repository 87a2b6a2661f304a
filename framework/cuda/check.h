// Check macros for CUDA runtime, cuDNN and cuBLAS calls (CUDA translation units only).
// Each throws oodkit::Error with the library's message, the expression, file and line.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "framework/error.h"

namespace oodkit::detail {
const char* cublas_status_name(cublasStatus_t s);
}

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
  } while (0)

#define OODKIT_CUBLAS_CHECK(expr)                                                       \
  do {                                                                                  \
    const cublasStatus_t oodkit_st_ = (expr);                                           \
    if (oodkit_st_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::oodkit::detail::throw_error(                                                    \
          __FILE__, __LINE__, #expr,                                                    \
          ::oodkit::detail::str_cat("cuBLAS error: ",                                   \
                                    ::oodkit::detail::cublas_status_name(oodkit_st_))); \
  } while (0)

// After every kernel launch: reports launch-configuration errors at the launch site.
#define OODKIT_CUDA_CHECK_LAUNCH() OODKIT_CUDA_CHECK(cudaGetLastError())
