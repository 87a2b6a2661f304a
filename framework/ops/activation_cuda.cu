// CUDA instantiations of the activation maps of activation.cpp (framework/ops/map.h); their
// formulas are in activation_functors.h.
#include "framework/cuda/map.cuh"
#include "framework/ops/activation_functors.h"

namespace oodkit::cuda {

template void map_n(const ops::Relu<float>&, int64_t, float*, const float*);
template void map_n(const ops::ReluBackward<float>&, int64_t, float*, const float*, const float*);
template void map_n(const ops::Tanh<float>&, int64_t, float*, const float*);
template void map_n(const ops::TanhBackward<float>&, int64_t, float*, const float*, const float*);
template void map_n(const ops::Sigmoid<float>&, int64_t, float*, const float*);
template void map_n(const ops::SigmoidBackward<float>&, int64_t, float*, const float*, const float*);
template void map_n(const ops::Clamp<float>&, int64_t, float*, const float*);
template void map_n(const ops::ClampBackward<float>&, int64_t, float*, const float*, const float*);
template void for_n(int64_t, const ops::DropoutApply<float>&);

}  // namespace oodkit::cuda
