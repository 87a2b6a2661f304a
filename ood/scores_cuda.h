// CUDA launchers behind ood/scores.h (float32, current device, oodkit stream). Plain C++: pointers
// and sizes only. Arguments are validated by the callers in scores.cpp.
#pragma once
#include <cstdint>

namespace oodkit::cuda {

enum class LogitScoreKind : int { Msp = 0, MaxLogit = 1, Energy = 2, GradNorm = 3 };

// out [n] from logits x [n, k] (row-major). GradNorm also reads z [n, d]; z is ignored (may be
// null) for the other kinds. temperature > 0.
void score_logits(const float* x, int64_t n, int64_t k, float temperature, LogitScoreKind kind,
                  const float* z, int64_t d, float* out);

// F [n, c, hw] -> z [n, c] (mean over hw; may be null: not written), nap [n] ((1/c) sum r^2),
// nap_unsquared [n] ((1/c) sum r), fs [n] ((1/(c hw)) sum |F - mean|), r = max / (mean + eps).
void score_feature_maps(const float* f, int64_t n, int64_t c, int64_t hw, float eps, float* z, float* nap,
                        float* nap_unsquared, float* fs);

// ASH on z [n, d] -> y [n, d], keeping exactly k (1 <= k <= d) entries per row; mode 0 Prune,
// 1 Binarize, 2 Scale (ood::AshMode's order). y must not alias z.
void score_ash(const float* z, float* y, int64_t n, int64_t d, int64_t k, int mode);

// out[i] = max(a, floor)^w * max(b, floor)^(1 - w)  (NaN if a or b is NaN).
void score_geometric_fusion(const float* a, const float* b, float* out, int64_t n, float w, float floor);
// out[i] = a[i] + lambda * b[i]
void score_linear_fusion(const float* a, const float* b, float* out, int64_t n, float lambda);
// out[i] = ca * a[i] + cb * b[i] + c0
void score_affine_fusion(const float* a, const float* b, float* out, int64_t n, float ca, float cb, float c0);

// h [n, c, hw] -> out [n] = -(1/hw) sum_p max_c |h[., c, p]| (NaN propagates); n >= 1.
void score_heatmap(const float* h, int64_t n, int64_t c, int64_t hw, float* out);

}  // namespace oodkit::cuda
