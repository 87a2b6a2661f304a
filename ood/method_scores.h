// One method's scores on one set, the same path for the evaluation protocol (ood/protocol.h) and
// `oodkit score`: a detector scores the set's features, or its images in batches (input
// perturbation); a composite (a fusion) combines its components' scores on the same set, which
// the caller provides (and caches). Any detector, fusion or the heatmap goes through the Detector
// interface alone.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "ood/detector.h"

namespace oodkit::ood {

// A set of images as the detectors see it.
struct ScoredSet {
  std::string name;
  Features features;  // on the scoring device
  Tensor images;      // normalised float [N, 3, H, W] (CPU); needed only by input-perturbation detectors
};

struct ScoreContext {
  models::Classifier* model = nullptr;            // eval mode, on `device` (input perturbation)
  std::array<float, 3> input_std{1.f, 1.f, 1.f};  // the images' normalisation std per channel
  Device device = Device::cpu();                  // where image batches are scored
  int64_t batch = 256;                            // images per input-perturbation batch
};

// Scores of component `name` on the set being scored ([N] host doubles; the reference must stay
// valid during the call).
using ComponentScores = std::function<const std::vector<double>&(const std::string&)>;

// [N] host scores of `d` (configured) on `set`, higher = more ID. A detector with components()
// gets them from `component`, in components() order, and combines them; an input-perturbation
// detector needs set.images (an error naming the set otherwise).
std::vector<double> score_method(const Detector& d, const ScoredSet& set, const ScoreContext& ctx,
                                 const ComponentScores& component);

std::vector<double> to_doubles(const Tensor& scores);  // [N] any device -> host doubles

}  // namespace oodkit::ood
