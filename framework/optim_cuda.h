// CUDA launchers behind framework/optim.h: fused in-place update of one float32 parameter
// (current device, oodkit stream). The element rules are in framework/optim_update.h.
#pragma once
#include <cstdint>

#include "framework/optim_update.h"

namespace oodkit::cuda {
// p, buf updated in place from grad (n elements); buf unused (may be null) when momentum == 0.
void sgd_step(float* p, const float* grad, float* buf, int64_t n, const optim::detail::SGDParams<float>& h);
// p, exp_avg, exp_avg_sq updated in place from grad (n elements).
void adam_step(float* p, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const optim::detail::AdamParams<float>& h);
}  // namespace oodkit::cuda
