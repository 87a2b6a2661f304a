// CUDA events for the bench harness. bench/common/*.cpp is compiled into every bench program
// in every build, so this file is plain C++ guarded by OODKIT_WITH_CUDA (a PUBLIC compile
// definition of oodkit_framework, which also brings the CUDA runtime's include directories
// and library to the bench programs in a CUDA build). In a CPU-only build the functions throw.
#include "bench/common/bench.h"
#include "framework/error.h"

#if OODKIT_WITH_CUDA
#include "framework/cuda/context.h"
#endif

namespace oodkit::bench::detail {

#if OODKIT_WITH_CUDA

struct CudaEventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  CudaEventPair() {
    OODKIT_CUDA_CHECK(cudaEventCreate(&start));
    const cudaError_t err = cudaEventCreate(&stop);
    if (err != cudaSuccess) cudaEventDestroy(start);
    OODKIT_CUDA_CHECK(err);
  }
  ~CudaEventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  CudaEventPair(const CudaEventPair&) = delete;
  CudaEventPair& operator=(const CudaEventPair&) = delete;
};

std::shared_ptr<CudaEventPair> make_event_pair() { return std::make_shared<CudaEventPair>(); }
void record_start(CudaEventPair& e) { OODKIT_CUDA_CHECK(cudaEventRecord(e.start, cuda::stream())); }
void record_stop(CudaEventPair& e) { OODKIT_CUDA_CHECK(cudaEventRecord(e.stop, cuda::stream())); }
double elapsed_ms(CudaEventPair& e) {
  OODKIT_CUDA_CHECK(cudaEventSynchronize(e.stop));
  float ms = 0;
  OODKIT_CUDA_CHECK(cudaEventElapsedTime(&ms, e.start, e.stop));
  return double(ms);
}
int64_t cuda_l2_bytes() {
  if (!cuda_available()) return 0;
  int bytes = 0;
  OODKIT_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, cuda::current_device()));
  return bytes;
}

#else  // CPU-only build

struct CudaEventPair {};
std::shared_ptr<CudaEventPair> make_event_pair() { OODKIT_FAIL("CUDA events: oodkit was built without CUDA"); }
void record_start(CudaEventPair&) { OODKIT_FAIL("CUDA events: oodkit was built without CUDA"); }
void record_stop(CudaEventPair&) { OODKIT_FAIL("CUDA events: oodkit was built without CUDA"); }
double elapsed_ms(CudaEventPair&) { OODKIT_FAIL("CUDA events: oodkit was built without CUDA"); }
int64_t cuda_l2_bytes() { return 0; }

#endif

}  // namespace oodkit::bench::detail
