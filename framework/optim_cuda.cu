// CUDA instantiations of the optimiser updates of optim.cpp (framework/ops/map.h): a fused
// in-place update of one float32 parameter; the element rules are in framework/optim_update.h.
#include "framework/cuda/map.cuh"
#include "framework/optim_update.h"

namespace oodkit::cuda {

template void for_n(int64_t, const optim::detail::SGDStep<float>&);
template void for_n(int64_t, const optim::detail::AdamStep<float>&);

}  // namespace oodkit::cuda
