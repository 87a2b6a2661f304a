// Per-method explanations (run/explain_types.h) from detectors saved by `oodkit eval --out`: no
// second fitting path. Each method's score comes from its saved detector through ood::score_method
// on run::extract's features (the path of `oodkit score`, so the scores are those `score` prints);
// its map from one more forward pass (docs/methods.md, "Explanations"):
//   heatmap                    max_c |h| of the saved decoder's output (ood::heatmap_map)
//   nap, nap_mean, fs, fs_ta   tau - each feature-map position's share of the score (ood/spatial_maps.h),
//                              tau the method's decision threshold (protocol.json "thresholds")
//   msp, maxlogit, energy, odin, react, ash_p, ash_s, dice, gradnorm, knn, mahalanobis,
//   mahalanobis_noise, vim     Grad-CAM on the last stage's activations with dS/dz (ood/score_gradients.h);
//                              odin and mahalanobis_noise on the forward pass of the perturbed images
//                              their score reads
//   fusions (registered, fused, --fuse z:...)
//                              sum_i c_i m_i of the members' maps, c_i = dS/ds_i (ood/fusion_maps.h);
//                              p-value fusions and ash_b have no map (refused, docs/methods.md)
// then resized to the input's H x W with ood::upsample_bilinear (align_corners = false).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/classifier.h"
#include "ood/features.h"
#include "run/explain_types.h"

namespace oodkit::run {

enum class MapKind { Heatmap, Contribution, GradCam, Fusion };
const char* map_kind_name(MapKind k);  // "heatmap", "contribution", "grad-cam", "fusion"

// The registered methods that have a map, in reporting order, with their kind (also "fused" and the
// z fusions of --fuse, not listed: map_kind knows them).
const std::vector<std::pair<std::string, MapKind>>& explainable_methods();
std::string explainable_list();  // "heatmap, nap, ..."
// The kind of `method`; an Error naming `option` and listing explainable_list() when it has no map.
MapKind map_kind(const std::string& method, const char* option);

struct ExplainSetup {
  models::Classifier* model = nullptr;  // eval mode, on `device`; must outlive the explainers
  data::Normalization norm;             // the one the detectors were fitted with (protocol.json)
  std::string detectors;                // the detectors/ folder of `oodkit eval --out`
  std::string fingerprint;              // ood::module_fingerprint(*model): the heatmap decoder must match
  double nap_eps = 1.0;                 // as eval extracted (protocol.json)
  std::vector<double> ta_thresholds;    // as eval extracted (protocol.json)
  // Each method's decision threshold tau (score >= tau: ID; protocol.json "thresholds"): the offset
  // of the contribution maps (docs/methods.md, "Explanations"); required for nap, nap_mean, fs, fs_ta.
  std::map<std::string, double> thresholds;
  Device device = Device::cpu();
  int64_t batch = 256;
};

// One explainer per method, in order. Every method is checked (has a map, is saved in
// setup.detectors, its state loads; the heatmap decoder belongs to setup.model) and its fitted state
// loaded here, before any image is read: an Error naming --methods otherwise.
std::vector<std::pair<std::string, Explainer>> make_explainers(const ExplainSetup& setup,
                                                               const std::vector<std::string>& methods);

}  // namespace oodkit::run
