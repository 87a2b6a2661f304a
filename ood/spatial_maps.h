// Per-position maps behind `oodkit explain` (docs/methods.md, "Explanations"): where in an image a
// detector's score comes from. Every map here is "higher = more OOD-looking" (run/explain.h adds to
// the contribution maps the method's decision threshold) and uses one formula for every image, so maps of one method are comparable across images. CPU only (float32 or float64 in,
// float32 out, sums in double); maps are small (a few thousand positions per image). A NaN in an
// image's input makes that image's map NaN where the formula reads it.
#pragma once
#include "framework/tensor.h"

namespace oodkit::ood {

// Bilinear resize of maps [N, h, w] to [N, H, W] (float32), align_corners = false: the convention
// of PyTorch's F.interpolate(mode="bilinear", align_corners=False) (no antialiasing). Output pixel
// (y, x) reads the input at sy = max(0, (y + 0.5) h / H - 0.5), sx likewise: between rows
// floor(sy) and min(floor(sy) + 1, h - 1) with weights 1 - (sy - floor sy) and sy - floor sy.
Tensor upsample_bilinear(const Tensor& maps, int64_t height, int64_t width);

// Heatmap decoder output h [N, C, S, S] -> [N, S, S]: max_c |h[n, c, y, x]|, the quantity whose
// negated mean is heatmap_score (ood/scores.h).
Tensor heatmap_map(const Tensor& h);

// FS on a feature map F [N, C, h, w]: m[n, p] = -(1/C) sum_c |F[n, c, p] - mean_q F[n, c, q]|, so that
// fs_score = -mean_p m[n, p]. Highest (0) where no channel deviates from its mean: the flat
// positions that FS reads as OOD.
Tensor fs_contribution_map(const Tensor& F);

// NAP on F [N, C, h, w]: r_j = max_p F[n, j, p] / (mean_p F[n, j, p] + eps); each r_j (r_j^2 when
// squared) is credited to the position p_j holding channel j's maximum (the first in row-major order
// on ties), m[n, p] = -(h w / C) sum_{j : p_j = p} r_j^(2 or 1), so that nap_score = -mean_p m[n, p].
// Highest (0) where no channel peaks.
Tensor nap_contribution_map(const Tensor& F, double eps = 1.0, bool squared = true);

// Grad-CAM for a score of the penultimate vector z = global_avg_pool(A): A [N, C, h, w] the last
// stage's activations, grad [N, C] = dS/dz at z. alpha_c = grad_c / (h w) (= dS/dA[c, p] for every p),
// m[n, p] = max(0, -sum_c alpha_c A[n, c, p]): the positions whose activations pull the score towards
// OOD (scores are higher for ID), zero where they push it towards ID.
Tensor gradcam_map(const Tensor& A, const Tensor& grad);

}  // namespace oodkit::ood
