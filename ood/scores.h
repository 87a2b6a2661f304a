// Per-sample OOD scores (docs/methods.md): logit scores (MSP, MaxLogit, Energy, GradNorm), feature-map
// scores (NAP, FS, fused with global average pooling), ASH activation shaping and score fusions.
//
// Conventions shared by every function here:
// - A score is higher for in-distribution samples.
// - Inputs are float32 (CPU or CUDA) or float64 (CPU only); the result has the input's dtype and
//   device. On CUDA everything runs on oodkit's stream; CPU sums are accumulated in double.
// - Not differentiable: scores are computed under no-grad. The results never carry autograd
//   history (inputs that require grad are accepted; nothing is recorded). GradNorm needs no
//   autograd either: its gradient norm has a closed form (below).
// - NaN is never hidden: a NaN anywhere in a sample's input makes that sample's score NaN (the
//   maxima used here propagate NaN, unlike fmax). ±inf inputs follow IEEE arithmetic (e.g. a +inf
//   logit gives a NaN MSP/Energy, as x - max = inf - inf); they are not special-cased.
// - Argument errors throw oodkit::Error naming the function, the argument and the shapes.
// - An empty batch (N = 0) gives empty results; every other dimension must be at least 1.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ood {

// ---- logit scores: logits f [N, K] -> [N] -----------------------------------------------------

// MSP: max_k softmax(f / T)_k = 1 / sum_k exp((f_k - max f) / T). T > 0 (ODIN uses T = 1000).
Tensor msp_score(const Tensor& logits, double temperature = 1.0);

// Predicted classes: int64 [N], argmax_k f_k (the first maximum on ties, the first NaN in a row
// with one: ops::argmax), on the logits' device.
Tensor predicted_classes(const Tensor& logits);

// MaxLogit: max_k f_k.
Tensor max_logit_score(const Tensor& logits);

// Energy: T * logsumexp(f / T) = max f + T log sum_k exp((f_k - max f) / T) (the negative free
// energy; stable for huge logits).
Tensor energy_score(const Tensor& logits, double temperature = 1.0);

// GradNorm (Huang et al. 2021): || d KL(u || softmax(f/T)) / dW ||_1 for the last linear layer
// W [K, D] whose input is z [N, D] (f = W z + b), u the uniform distribution over the K classes.
// dKL/df = (softmax(f/T) - u) / T and dKL/dW = outer(p - u, z) / T, so the L1 norm is the closed form
//   (sum_k |p_k - 1/K|) * (sum_d |z_d|) / T,   p = softmax(f / T).
// The official code uses the loss sum_k -log p_k (targets of ones, not 1/K), which multiplies every
// score by the constant K; rankings and all metrics are the same.
// logits [N, K] and z [N, D]: same N, dtype and device.
Tensor gradnorm_score(const Tensor& logits, const Tensor& z, double temperature = 1.0);

// ---- feature-map scores: F [N, C, H, W] (non-negative, after the last ReLU) -> [N] ---------------

// NAP: r_j = max_hw(F_j) / (mean_hw(F_j) + eps) per channel j; squared: (1/C) sum_j r_j^2,
// otherwise (1/C) sum_j r_j. eps > 0 (docs/methods.md: eps = 1). Negative inputs are not rejected (the
// formula is applied as is).
Tensor nap_score(const Tensor& F, double eps = 1.0, bool squared = true);

// FS: (1/CHW) sum_{c,h,w} |F_chw - mean_hw(F_c)| (mean absolute deviation from the channel means).
Tensor fs_score(const Tensor& F);

// Everything one read of F gives: z = global average pool [N, C] (the penultimate vector, equal to
// ops::global_avg_pool(F) up to rounding), NAP squared and unsquared, FS (each [N]).
// On CUDA one kernel reads F once: G lanes per (n, c) row (float4 loads when hw % 4 == 0 and F is
// 16-byte aligned); rows of up to 128 loads per group (hw <= 512, or 128 unvectorised) stay in
// registers for the deviation pass, longer rows are re-read from L1/L2. Per-sample sums are
// fixed-order (with channel chunks when N is too small to fill the GPU): deterministic, no atomics.
struct FeatureMapScores {
  Tensor z, nap, nap_unsquared, fs;
};
FeatureMapScores feature_map_scores(const Tensor& F, double eps = 1.0);

// ---- ASH (Djurisic et al. 2023) on z [N, D] -> [N, D] ------------------------------------------
//
// Keeps, per sample, exactly k = D - round(D * percentile / 100) entries (round half to even:
// numpy's np.round, as the official code), percentile in [0, 100); k must be at least 1 (a
// percentile so high that nothing is kept throws). Kept entries are the k largest by value, as
// torch.topk; ties at the threshold keep the lower indices (torch.topk leaves that choice to the
// implementation); -0 and +0 are equal; NaN ranks above every number (as torch.topk), so it is kept.
//   Prune:    kept entries unchanged, the rest 0.
//   Binarize: kept entries set to s1 / k, the rest 0 (s1 = sum of the row before pruning).
//   Scale:    kept entries multiplied by exp(s1 / s2) (s2 = sum of the kept entries), the rest 0.
//             When s1 = s2 = 0 (an all-zero row) the factor is 1, so the row stays 0; the official
//             code would give 0/0 = NaN there. Any other s2 = 0 follows IEEE (inf/NaN).
// Returns the shaped z: feed it to the linear head, then energy_score.
enum class AshMode { Prune, Binarize, Scale };
Tensor ash(const Tensor& z, double percentile, AshMode mode);
// The k that ash keeps for d entries and a percentile (the rule above, validated likewise).
int64_t ash_keep_count(int64_t d, double percentile);

// ---- fusions of two [N] scores (same shape, dtype and device) -> [N] ------------------------------

// NAP-style weighted geometric mean: max(s_cls, floor)^w * max(s_nap, floor)^(1 - w), w in [0, 1],
// floor > 0 (makes both factors positive). A NaN in either input gives NaN, also at w = 0 or 1.
Tensor geometric_fusion(const Tensor& s_cls, const Tensor& s_nap, double w, double floor = 1e-6);

// FS+TA linear fusion: s_fs + lambda * s_cls (lambda finite).
Tensor linear_fusion(const Tensor& s_fs, const Tensor& s_cls, double lambda);

// Fusion on one scale: (1 - w) (a - a_mean) / a_std + w (b - b_mean) / b_std, w in [0, 1], means
// finite, stds positive and finite (the heatmap fusions standardise each score by its held-out ID
// statistics first).
struct ScoreScale {
  double mean = 0, std = 1;
};
Tensor standardized_fusion(const Tensor& a, const Tensor& b, double w, ScoreScale a_scale, ScoreScale b_scale);

// ---- heatmap score ----------------------------------------------------------------------------------

// Heatmap-based detection: h [N, C, H, W] float -> [N], S = -(1/(H W)) sum_{y,x} max_c |h[n, c, y, x]|
// (higher = more in-distribution; 0 for an all-zero heatmap). Sums in double on the CPU; on CUDA a
// fixed-order float reduction per image (deterministic). A NaN in h gives NaN for its image.
Tensor heatmap_score(const Tensor& h);

}  // namespace oodkit::ood
