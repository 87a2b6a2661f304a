// How a fusion's map is made from its members' maps (`oodkit explain`, docs/methods.md,
// "Explanations"): the fused score S = F(s_1, ..., s_K) of the members' scores; its map is
// m = sum_i c_i m_i with c_i = dF/ds_i at the image's member scores, the first-order weight with
// which member i's score moves the fused one. For the fusions here:
//   Fusion, linear (fsta_*)           S = s_a + lambda s_b                  c = (1, lambda)
//   Fusion, standardized (heatmap_*)  S = (1-w)(s_a-m_a)/sd_a + w(s_b-m_b)/sd_b
//                                                                          c = ((1-w)/sd_a, w/sd_b)
//   Fusion, geometric (nap_e/a/r)     S = max(s_a,f)^w max(s_b,f)^(1-w)     c = (w S / s_a [s_a > f],
//                                                                               (1-w) S / s_b [s_b > f])
//   MultiFusion z (--fuse z..., fused) S = sum_i K w_i (s_i - m_i)/sd_i     c_i = K w_i / sd_i
// (f = 1e-6, geometric_fusion's floor). The p-value combinations (fuse_p, fuse_pmean) are step
// functions of the members' scores (dF/ds_i = 0 almost everywhere): they have no map, and asking for
// one is an Error naming the fusion.
#pragma once
#include <string>
#include <vector>

#include "ood/detector.h"

namespace oodkit::ood {

// c[i][r] for member i and image r, from the members' scores parts[i] [N] (the fusion's component
// order). `fusion` is a Fusion or a MultiFusion, configured (loaded); anything else is an Error.
std::vector<std::vector<double>> fusion_map_weights(const Detector& fusion, const Detector::ScoreList& parts);

// Whether `fusion` (a Fusion or MultiFusion) has a map; when not, why (for the refusal).
bool fusion_has_map(const Detector& fusion, std::string* why = nullptr);

}  // namespace oodkit::ood
