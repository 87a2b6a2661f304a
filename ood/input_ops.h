// Small kernels the detectors need beyond the framework's ops (CPU + CUDA, no autograd).
#pragma once
#include <array>

#include "framework/tensor.h"

namespace oodkit::ood {

// ODIN-style input perturbation of normalised images x [N, 3, H, W] against the gradient g of
// a loss (same shape): x - eps * s / std[c] with s = +1 where g >= 0, else -1 (the official
// code's `(ge(grad, 0) - 0.5) * 2`, so g = 0 counts as +1). `std` is the per-channel
// normalisation std, as the official code divides the signed gradient by it.
Tensor perturb_against_gradient(const Tensor& x, const Tensor& g, double eps, const std::array<float, 3>& std);

// Rows scaled to unit L2 norm: x / (||x|| + 1e-10) (the KNN detector's normaliser). x [N, D].
Tensor normalize_rows(const Tensor& x);

}  // namespace oodkit::ood
