// Model construction for the bench programs, by architecture name.
#pragma once
#include <memory>
#include <string>

#include "framework/random.h"
#include "models/classifier.h"

namespace oodkit::bench {

// A CIFAR-sized (32x32 input) classifier. With models/registry.h present this is
// models::make_classifier(arch, num_classes, 32, gen) (resnet18, resnet20, wrn40_2, ...);
// without it only the CIFAR ResNets resnet20/32/44/56/110 (models::ResNetCifar) are known.
std::shared_ptr<models::Classifier> make_model(const std::string& arch, int64_t num_classes, Generator& gen);

// Whether make_model goes through models/registry.h (true) or the ResNetCifar fallback.
bool have_model_registry();

}  // namespace oodkit::bench
