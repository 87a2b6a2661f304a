// Training losses. Each returns a 0-d tensor (the mean over the batch); CUDA reductions to the
// 0-d result are deterministic (fixed-order, no floating-point atomics).
// float32 on CPU/CUDA, float64 on the CPU.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ops {

// logits [N, K] float, labels [N] int64 in [0, K) (checked on the host: an Error names the bad
// label, its index and K). Returns mean_n -sum_k q_nk log softmax(logits)_nk with the smoothed
// target q = (1 - s) onehot(label) + s / K (PyTorch's label_smoothing semantics), s in [0, 1].
// Backward: grad_logits = G / N * (softmax(logits) - q); labels get none.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);

// pred, target [N, ...] (same shape), weight the same shape or undefined (= all ones).
// Returns mean over n of sum over the other dims of weight * (pred - target)^2.
// Backward: grad_pred = 2 G / N * weight * (pred - target); grad_target = -grad_pred (when
// target requires grad); weight gets none.
Tensor weighted_mse(const Tensor& pred, const Tensor& target, const Tensor& weight);

}  // namespace oodkit::ops
