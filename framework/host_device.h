// OODKIT_HD marks a function compiled for both the CPU and CUDA devices: `__host__ __device__`
// when nvcc compiles the file, nothing for the C++ compiler. Functions marked with it hold the
// formulas that the CPU loops and the CUDA kernels share (framework/ops/map.h).
#pragma once

#if defined(__CUDACC__)
#define OODKIT_HD __host__ __device__
#else
#define OODKIT_HD
#endif
