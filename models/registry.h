// Builds a classifier by name. Known names:
//   resnet20, resnet32, resnet44, resnet56  CIFAR ResNets with option-A shortcuts (ResNetCifar)
//   resnet18, resnet34, resnet50            kuangliu-style ResNets (ResNet); input_size picks the stem
//   resnet18_imagenet, resnet34_imagenet,   the same with torchvision's ImageNet stem (7x7 conv,
//   resnet50_imagenet                       stride 2, + 3x3 max-pool), any input size
//   wrn40_2                                 WideResNet-40-2, dropout 0.3
//   densenet100                             DenseNet-BC-100, growth 12
// input_size must be 32 or 64. Only the ResNet-18/34/50 CIFAR stem depends on it (64 adds the 2x2
// max-pool); the other networks end in global average pooling and take either size as they are.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/classifier.h"

namespace oodkit::models {

// Unknown names throw oodkit::Error listing the known ones.
std::shared_ptr<Classifier> make_classifier(const std::string& arch, int64_t num_classes, int input_size,
                                            Generator& gen = default_generator());
std::vector<std::string> classifier_names();

}  // namespace oodkit::models
