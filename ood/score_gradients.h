// Analytic gradients of detector scores with respect to the penultimate vector z (the input of the
// classifier head, logits = W z + b), for the Grad-CAM maps of `oodkit explain` (ood/spatial_maps.h:
// gradcam_map). Each returns dS/dz as float64 [N, D] on the CPU; inputs are float32 or float64, any
// device (copied to the CPU). At kinks (the argmax of MSP/MaxLogit, ReAct's clip, KNN's neighbour
// order, Mahalanobis's nearest class) the gradient is the one of the active piece: the first maximum
// for argmax, no gradient through clipped entries (z >= c), the k-th neighbour and the nearest class
// held fixed.
#pragma once
#include <cstdint>
#include <string>

#include "framework/tensor.h"
#include "ood/mahalanobis.h"
#include "ood/vim.h"

namespace oodkit::ood {

// dS/df [N, K] at logits f [N, K] for the logit scores (T = 1), p = softmax(f), m = argmax f:
//   "msp":      p_m (e_m - p)        (S = p_m)
//   "maxlogit": e_m                  (S = f_m)
//   "energy":   p                    (S = logsumexp f)
// Any other name is an Error listing these.
Tensor logit_score_gradient(const std::string& method, const Tensor& logits);

// The chain rule through the head: dS/dz = dS/df W, [N, K] x [K, D] -> [N, D].
Tensor through_head(const Tensor& dlogits, const Tensor& weight);

// ReAct, S = logsumexp(W min(z, c) + b): dS/dz_d = [z_d < c] (p W)_d, p = softmax(W min(z, c) + b).
Tensor react_score_gradient(const Tensor& z, const Tensor& weight, const Tensor& bias, double threshold);

// KNN, S = -|| u - b ||, u = z / |z|, b the k-th nearest row of `bank` (rows of unit norm, as the
// detector keeps them; found with knn_search): dS/dz = (I - u u^T) (b - u) / (|u - b| |z|).
Tensor knn_score_gradient(const Tensor& z, const Tensor& bank, int64_t k);

// Mahalanobis, S = -min_c (z - mu_c)^T P (z - mu_c): through the framework's autograd on
// Mahalanobis::score in float64 (= -2 P (z - mu_c*) for the nearest class c*).
Tensor mahalanobis_score_gradient(const Mahalanobis& model, const Tensor& z);

// ViM, S = logsumexp(W z + b) - alpha ||(z - u) NS||: through the framework's autograd on
// Vim::score(linear(z, W, b), z) in float64.
Tensor vim_score_gradient(const Vim& model, const Tensor& z, const Tensor& weight, const Tensor& bias);

}  // namespace oodkit::ood
