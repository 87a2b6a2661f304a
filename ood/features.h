// Per-image quantities that the post-hoc detectors read, computed from one forward pass
// per batch (plus the Threshold Activation tail passes), under no-grad.
#pragma once
#include <vector>

#include "models/classifier.h"

namespace oodkit::ood {

// Feature columns a detector reads besides logits and z (extract_features computes only
// these; the registry, ood/detectors.h, declares them per method).
struct FeatureNeeds {
  bool nap = false;    // Features::nap, nap_unsquared
  bool fs = false;     // Features::fs
  bool fs_ta = false;  // Features::fs_ta (one TA tail pass per threshold)
  FeatureNeeds& operator|=(const FeatureNeeds& o) {
    nap |= o.nap;
    fs |= o.fs;
    fs_ta |= o.fs_ta;
    return *this;
  }
};

struct FeatureOptions {
  double nap_eps = 1.0;                   // NAP's epsilon in max / (mean + eps)
  int ta_stage = -1;                      // TA after this stage; -1: the stage before the last
  std::vector<double> ta_thresholds{0.15};  // one TA tail pass per k: ReLU(g - k)
  // The optional columns to compute: all by default; a run sets feature_needs(its methods), so
  // e.g. no TA tail pass runs when no method reads fs_ta.
  FeatureNeeds needs{true, true, true};
};

// All tensors on the extraction device; N rows each. logits and z are always computed; nap,
// nap_unsquared, fs and fs_ta only when FeatureOptions::needs asks (undefined / empty otherwise).
struct Features {
  Tensor logits;                // [N, K]
  Tensor z;                     // [N, D] penultimate vector
  Tensor nap, nap_unsquared;    // [N] Neural Activation Prior, squared (default) and plain mean form
  Tensor fs;                    // [N] Feature Sim on the unmodified F
  std::vector<Tensor> fs_ta;    // [N] Feature Sim on the TA path, one per TA threshold
  std::vector<double> ta_thresholds;  // the k of each fs_ta entry
  int64_t size() const { return logits.defined() ? logits.size(0) : 0; }
};

// One batch of normalised images [B, 3, H, W] (on the model's device).
Features extract_features(models::Classifier& model, const Tensor& images, const FeatureOptions& options);
// Rows of all parts, in order (all on one device).
Features concat_features(const std::vector<Features>& parts);
// Rows [start, start + length) (views where possible).
Features slice_features(const Features& f, int64_t start, int64_t length);

}  // namespace oodkit::ood
