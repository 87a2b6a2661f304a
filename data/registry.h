// Datasets by name, so tools can say `--id cifar10 --ood isun,tinyimagenet,synthetic-ood-noise`.
//
// name                   default root (under $OODKIT_SHARED_DIR/datasets, else ../shared/datasets)
// cifar10                cifar10/       data_batch_1..5.bin (train) or test_batch.bin (test)
// cifar100               cifar100/      train.bin / test.bin (CIFAR-100 binary, fine labels)
// mnist                  mnist/         *images-idx3-ubyte[.gz] + *labels-idx1-ubyte[.gz] (the split
//                                       picks files starting with "train" or "t10k"; test by default)
// fashion-mnist          fashion-mnist/ as mnist
// isun                   isun/          a flat image folder (unlabelled)
// tinyimagenet           tinyimagenet/  split "test" (test/, unlabelled) or "val" (labelled by
//                                       val_annotations.txt, wnids.txt order)
// svhn, lsun, lsun-resize, places365, textures: <name>/[<split>/]  image folders (sub-folders give
//                                       labels when present)
// folder:<path>          <path>         any image folder (labels from sub-folders when present)
// synthetic-id           -              data/synthetic.h shapes (split train / test: disjoint streams)
// synthetic-ood-<kind>   -              kind = unseen-shapes | strokes | textures | noise
//
// Images keep their stored size unless LoadOptions::image_size is set; MNIST-like sets are
// replicated to 3 channels. OOD test sets are usually loaded with image_size = the ID size (32).
// Non-square folder images reach the square size by LoadOptions::fit (default: torchvision's
// Resize + CenterCrop); square ones give the same pixels with either fit.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_folder.h"

namespace oodkit::data {

struct LoadOptions {
  std::string split;        // "" = the dataset's default: "test" (cifar, mnist, tinyimagenet, synthetic)
  int64_t image_size = 0;   // > 0: resize to image_size x image_size (ResizeMode below); 0: keep
  ResizeMode resize = ResizeMode::Auto;
  // Image folders (isun, tinyimagenet, the folder sets, folder:): how a non-square image reaches
  // image_size x image_size (data/image_folder.h). The array sets (CIFAR, MNIST-like, synthetic)
  // are square and ignore it.
  ImageFit fit = ImageFit::ShortSideCrop;
  int64_t limit = -1;       // >= 0: only the first `limit` samples (files in sorted order)
  // Image folders only: leave out files that cannot be read or decoded (listed in
  // Dataset::skipped) instead of failing (ImageFolderOptions::skip_unreadable).
  bool skip_unreadable = false;
  // Synthetic sets only: the generator seed and the number of images (<= 0: 10,000 for the
  // train split, 2,000 otherwise).
  uint64_t seed = 0;
  int64_t count = 0;
};

// Loads `name` (see the table above). `root` overrides the default folder ("" = default).
// Errors name the dataset, the folder and, for unknown names, the known ones.
Dataset load_dataset(const std::string& name, const std::string& root = "", const LoadOptions& options = {});

// The folder a name reads by default.
std::string default_root(const std::string& name);

// The names load_dataset knows ("folder:<path>" shown as such; synthetic kinds expanded).
std::vector<std::string> known_datasets();

// The input normalisation a model trained on `name` expects; OOD sets must be normalised with
// the in-distribution set's preset, not their own.
//  cifar10, cifar100, isun, tinyimagenet, svhn, lsun*, places365, textures, folder:*: ImageNet
//    statistics (those of the shared pretrained ResNet-20; see docs/data.md)
//  mnist: mean 0.1307, std 0.3081 per channel; fashion-mnist: 0.2860 / 0.3530
//  synthetic-*: mean 0.5, std 0.29 per channel (measured on 10,000 generated shapes)
Normalization normalization_for(const std::string& name);

// The measured per-channel statistics of CIFAR-10's training set (mean 0.4914, 0.4822, 0.4465;
// std 0.2470, 0.2435, 0.2616), for models that prefer them to the ImageNet preset.
Normalization cifar10_statistics();

}  // namespace oodkit::data
