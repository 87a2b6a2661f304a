// State dicts as PyTorch users have them, renamed to oodkit's names for one architecture
// (models/registry.h), and a short account of what still differs when they do not fit.
//
// map_checkpoint_names(state, arch) applies, in this order:
//  1. prefixes: while every name starts with "module." (nn.DataParallel / DistributedDataParallel)
//     or every name starts with "model." (a wrapper module or a Lightning module), that prefix is
//     removed. A prefix that only some names carry is left alone.
//  2. for the ResNets resnet18/34/50 and their _imagenet variants, torchvision's names:
//       layer{s}.{b}.downsample.{0,1}.<t>  ->  layer{s}.{b}.shortcut.{0,1}.<t>
//       fc.<t>                            ->  linear.<t>
//     (conv1, bn1 and the blocks' conv/bn names are the same in torchvision and kuangliu's code).
//     A name whose target is already in the state dict is left as it is.
//  3. the stem: for resnet18/34/50 (not for an explicit _imagenet variant), a conv1.weight of shape
//     [64, 3, 7, 7] picks the architecture <arch>_imagenet (torchvision's 7x7 stride-2 stem and 3x3
//     max-pool); a torchvision ResNet whose conv1 was replaced by a 3x3 stride-1 conv and whose
//     maxpool by nn.Identity (the usual CIFAR variant) keeps <arch>.
// Every other architecture gets step 1 only. Tensors are shared, not copied; the order is kept.
#pragma once
#include <string>
#include <vector>

#include "framework/safetensors.h"

namespace oodkit::models {

struct MappedCheckpoint {
  NamedTensors state;               // the renamed state dict, in the checkpoint's order
  std::string arch;                 // the architecture to build: `arch`, or its _imagenet variant
  std::vector<std::string> notes;   // one phrase per step that changed something, e.g.
                                    // "prefix 'module.' removed", "torchvision names (downsample ->
                                    // shortcut, fc -> linear)", "7x7 stem: resnet18_imagenet"
};

MappedCheckpoint map_checkpoint_names(const NamedTensors& state, const std::string& arch);

// How `state` (already mapped) differs from `model_state` (the model's state_dict(): names and
// shapes), in one line for an error message; "" when every name is present on both sides with the
// same shape (a missing BatchNorm num_batches_tracked counts as present). Names are grouped by module ("layer2.0.shortcut.0.{weight}", "linear.{weight,bias}"),
// at most 4 groups per kind and 6 names per group, then a count of the rest:
//   "118 of 122 names fit; missing 2: linear.{weight,bias}; unexpected 2: head.{weight,bias};
//    wrong shape 1: conv1.weight (checkpoint [64, 3, 7, 7], model [64, 3, 3, 3])"
// followed, when the checkpoint's names look like a ResNet (layer{s}.{b}. blocks), by what it looks
// like: "; it looks like resnet50 (blocks 3,4,6,3, bottleneck, 7x7 stem: --arch resnet50)".
std::string describe_mismatch(const NamedTensors& state, const NamedTensors& model_state);

// The --arch choices with the naming schemes they understand, for error messages: "resnet20, ...,
// resnet50_imagenet, ... (torchvision ResNet names and 'module.'/'model.' prefixes are mapped;
// docs/data.md)".
std::string architecture_hint();

}  // namespace oodkit::models
