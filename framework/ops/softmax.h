// Row-wise softmax family over dim 1 of a [N, K] tensor, with a temperature T > 0 (the logits
// are divided by T). Numerically stable (the row maximum is subtracted before exponentiating).
// float32 on CPU/CUDA, float64 on the CPU.
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
