// Everything a command needs of the detectors: the interface (ood/detector.h), the registry
// (ood/registry.h) and the fusions (ood/fusion.h). The concrete detectors live in detectors.cpp.
#pragma once
#include "ood/detector.h"
#include "ood/fusion.h"
#include "ood/mahalanobis.h"
#include "ood/registry.h"

namespace oodkit::ood {
// The images the input-perturbation detectors score (docs/methods.md, "Input perturbation"), from
// normalised images [B, 3, H, W] on the model's device: moved by eps against the gradient of the
// loss (ODIN: cross-entropy of logits / T with the predicted class; Mahalanobis+noise: the distance
// to the nearest class mean), eps = 0 the images themselves. Exposed so that `oodkit explain` maps
// the very forward pass that the score reads. Enables gradients internally.
Tensor odin_input(const ImageContext& ctx, const Tensor& images, double temperature, double eps);
Tensor mahalanobis_noise_input(const ImageContext& ctx, const Mahalanobis& model, const Tensor& images, double eps);
}  // namespace oodkit::ood
