// Row-wise softmax family over dim 1 of a [N, K] tensor, with a temperature T > 0 (the logits
// are divided by T). Numerically stable (the row maximum is subtracted before exponentiating).
// float32 on CPU/CUDA, float64 on the CPU.
// Non-finite inputs, as in PyTorch: a -inf logit (a masked class) gets probability 0 and log
// probability -inf while the rest of its row stays finite; a row of only -inf gives softmax and
// log_softmax NaN and logsumexp -inf; a NaN anywhere in a row makes that row's outputs NaN.
// Other rows are never affected.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ops {

// y [N, K] = softmax(x / T) along dim 1. Backward: grad_x = y * (G - sum_k G_k y_k) / T.
Tensor softmax(const Tensor& x, double temperature = 1.0);

// y [N, K] = log softmax(x / T) along dim 1. Backward: grad_x = (G - softmax(x/T) sum_k G_k) / T.
Tensor log_softmax(const Tensor& x, double temperature = 1.0);

// y [N] = T * log sum_k exp(x_k / T) (the negative free energy, used by the Energy OOD score).
// Backward: grad_x [N, K] = G_n * softmax(x / T).
Tensor logsumexp(const Tensor& x, double temperature = 1.0);

}  // namespace oodkit::ops
