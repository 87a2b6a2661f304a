// In-memory image datasets: uint8 pixels [N, 3, H, W] (NCHW, RGB) and int64 labels [N]
// (undefined for unlabelled sets such as OOD test folders).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace oodkit::data {

struct Dataset {
  std::string name;
  Tensor images;   // uint8 [N, 3, H, W]
  Tensor labels;   // int64 [N], or undefined
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  // Image files an image-folder load left out as unreadable (ImageFolderOptions::skip_unreadable),
  // in file order, with the reason each could not be read or decoded; empty otherwise.
  struct Skipped {
    std::string path, reason;
  };
  std::vector<Skipped> skipped;
  // The file each row was read from (image-folder loads: one per row, in row order); empty for
  // datasets held in arrays (CIFAR, IDX, synthetic), whose rows are named "<name>:<row>".
  std::vector<std::string> files;
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

// Per-channel normalisation of images scaled to [0, 1]: (x/255 - mean[c]) / std[c].
struct Normalization {
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
};
// The statistics the shipped ResNet-20 weights expect (ImageNet's; docs/data.md).
Normalization imagenet_normalization();

// uint8 [N, 3, H, W] -> float32 [N, 3, H, W] on the CPU.
Tensor normalize(const Tensor& images_u8, const Normalization& norm);

}  // namespace oodkit::data
