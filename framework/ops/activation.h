// Pointwise activations and dropout. Output has the input's shape, dtype and device;
// float32 on CPU/CUDA, float64 on the CPU. Every op is differentiable with respect to x,
// and its backward works in eval mode too.
#pragma once
#include "framework/random.h"
#include "framework/tensor.h"

namespace oodkit::ops {

// y = max(x, 0) (NaN propagates). Backward: dx = g where y > 0, else 0 (0 at the kink x = 0).
Tensor relu(const Tensor& x);
// y = tanh(x). Backward: dx = g * (1 - y^2).
Tensor tanh(const Tensor& x);
// y = 1 / (1 + exp(-x)). Backward: dx = g * y * (1 - y).
Tensor sigmoid(const Tensor& x);
// y = min(max(x, lo), hi) with lo <= hi (lo may be -inf, hi +inf; NaN bounds are an error).
// Backward: dx = g where lo < x < hi, else 0 (ReAct-style clipping passes no gradient
// through clipped elements, nor at the bounds themselves).
Tensor clamp(const Tensor& x, double lo, double hi);
// Inverted dropout. In training with p > 0: y_i = x_i * keep_i / (1 - p), where
// keep_i = (counter_uniform(seed, i) >= p) for the flat element index i and a fresh
// seed = gen.next_u64(), so the CPU and CUDA draw identical masks for the same generator
// state (and the generator advances by exactly one draw). In eval (training == false) or
// when p == 0 it returns x itself (same tensor, no graph node) and does not touch gen.
// p must lie in [0, 1), else oodkit::Error (checked in eval too).
// Backward: dx = g * keep / (1 - p); no mask tensor is stored — the node keeps only the
// seed and recomputes the mask from it.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace oodkit::ops
