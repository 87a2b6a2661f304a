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
#include "ood/dice.h"
#include "ood/mahalanobis.h"
#include "ood/scores.h"
#include "ood/vim.h"

namespace oodkit::ood {

// dS/df [N, K] at logits f [N, K] for the logit scores, p = softmax(f / T), m = argmax f:
//   "msp":      p_m (e_m - p) / T    (S = p_m; T = ODIN's temperature, 1 for MSP itself)
//   "maxlogit": e_m                  (S = f_m; T must be 1)
//   "energy":   p                    (S = logsumexp f; T must be 1)
// Any other name is an Error listing these.
Tensor logit_score_gradient(const std::string& method, const Tensor& logits, double temperature = 1.0);

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

// ASH (ood/scores.h: ash), S = logsumexp(W y + b), y = ash(z), g = W^T softmax(W y + b), K the kept
// entries (the k largest, the lowest indices first among equals, as ash keeps them):
//   Prune     dS/dz_j = [j in K] g_j
//   Binarize  dS/dz_j = (1/k) sum_{d in K} g_d                        (y_d = [d in K] sum(z) / k)
//   Scale     dS/dz_j = E [j in K] g_j + E (sum_{d in K} g_d z_d) (1/s2 - [j in K] s1/s2^2),
//             E = exp(s1/s2), s1 = sum z, s2 = sum_{K} z   (s1 = s2 = 0: E = 1, the first term only)
Tensor ash_score_gradient(const Tensor& z, const Tensor& weight, const Tensor& bias, double percentile, AshMode mode);

// DICE, S = logsumexp(W' z + b), W' the masked weight: dS/dz = W'^T softmax(W' z + b).
Tensor dice_score_gradient(const Dice& model, const Tensor& z);

// GradNorm (T = 1), S = a(f) b(z), a = sum_k |p_k - 1/K|, b = sum_d |z_d|, f = W z + bias:
// dS/dz = b W^T (p * (sigma - <sigma, p>)) + a sign(z), sigma = sign(p - 1/K) (sign(0) = 0).
Tensor gradnorm_score_gradient(const Tensor& z, const Tensor& weight, const Tensor& bias);

}  // namespace oodkit::ood
