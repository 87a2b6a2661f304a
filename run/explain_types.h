// The contract between per-method explanations (run/explain.h) and the consumers of their maps
// (`oodkit explain`, the pasted-patch localisation benchmark): one method's explanation of a batch
// of images is a score per image and a spatial map per image at the input resolution.
#pragma once
#include <functional>
#include <vector>

#include "data/dataset.h"
#include "framework/tensor.h"

namespace oodkit::run {
// One method's explanation of a batch of images: scores [N] (the detector's score, higher = more ID,
// as every oodkit detector) and maps float32 [N, H, W] on the CPU at the input resolution (higher = more
// OOD-looking; the same formula for every image, so maps are comparable across images).
struct Explanation { std::vector<double> scores; Tensor maps; };
// Explains rows of a uint8 dataset (data::Dataset, images [N,3,H,W]); fitted state lives in the closure.
using Explainer = std::function<Explanation(const data::Dataset& ds)>;
}
