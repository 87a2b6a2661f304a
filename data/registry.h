// Datasets by name, so tools can say `--id cifar10 --ood isun,tinyimagenet,synthetic-ood-noise`.
// The names are one table (data/registry.cpp, dataset_registry()): a row per set with its kind,
// the layout it needs under its folder, its splits and class count, how it loads, how `oodkit data`
// counts it, its normalisation and a line of help. Adding a set means adding one row; the
// known-name list, `oodkit data`, the install check and the split check all derive from it.
//
// name                   default root (under $OODKIT_SHARED_DIR/datasets, else ../shared/datasets)
// cifar10, cifar100      <name>/        CIFAR binary files (splits train, test)
// mnist, fashion-mnist   <name>/        IDX files (splits train, test)
// isun                   isun/          a flat image folder (unlabelled), read whole whatever the split
// tinyimagenet           tinyimagenet/  test/ (unlabelled) or val/ (labelled by val_annotations.txt)
// svhn, lsun, lsun-resize, places365, textures: <name>/[<split>/]  image folders (sub-folders give
//                                       labels when present)
// folder:<path>          <path>         any image folder (labels from sub-folders when present)
// synthetic-id           -              data/synthetic.h shapes (splits train / val / test: disjoint streams)
// synthetic-ood-<kind>   -              kind = unseen-shapes | strokes | textures | noise
//
// Images keep their stored size unless LoadOptions::image_size is set; MNIST-like sets are
// replicated to 3 channels. OOD test sets are usually loaded with image_size = the ID size (32).
// Non-square folder images reach the square size by LoadOptions::fit (default: torchvision's
// Resize + CenterCrop); square ones give the same pixels with either fit.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_folder.h"
#include "data/set_counts.h"

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

// How a set is stored: arrays in files (CIFAR, IDX), an image folder under the shared datasets
// folder, any image folder given by path (folder:<path>), or generated in memory.
enum class DatasetKind { Arrays, ImageFolder, AnyFolder, Generated };
const char* dataset_kind_name(DatasetKind kind);  // "arrays", "image folder", "any folder", "generated"

// The layout line of the image-folder sets (svhn, lsun, ...).
extern const char* const kImageFolderLayout;

// A split a set has, and whether its images carry labels.
struct SplitInfo {
  std::string name;
  bool labelled = false;
};

// A set's class count when it is labelled by its sub-folders (one class per class folder).
constexpr int64_t kClassesFromFolder = -1;

// One row of the table. `load` gets the name as given (folder:<path> rows: the whole name), the
// folder to read (the default root or --root) and the options with the split already checked
// against `splits` (empty: the default, resolved by the loader).
struct DatasetInfo {
  std::string name;                // as on the command line; "folder:<path>" stands for any path
  DatasetKind kind = DatasetKind::ImageFolder;
  std::string layout;              // what it needs under its folder, one line (`oodkit data`)
  // The splits, in the order error messages list them; a set with several refuses any other.
  // Empty: an image folder's (a <split>/ sub-folder, or train / test as a fixed 80/20 partition).
  // isun has the one split "all" and reads the whole folder whatever split is asked.
  std::vector<SplitInfo> splits;
  std::string default_split;       // "" for image folders and isun
  int64_t classes = 0;             // of the labelled splits; 0: unlabelled; kClassesFromFolder
  std::function<Dataset(const std::string& name, const std::string& root, const LoadOptions&)> load;
  // Images per split of an installed copy, reading no image (throws what is wrong with the folder);
  // empty for generated sets and folder:<path>.
  std::function<SplitCounts(const std::string& root)> count;
  Normalization normalization;     // what a model trained on it expects (normalization_for)
  std::string help;                // what the set is, one line (`oodkit data --help`)
};
const std::vector<DatasetInfo>& dataset_registry();
// The row of `name` ("folder:<anything>" is the folder:<path> row); an unknown name is an error
// listing the known ones.
const DatasetInfo& dataset_info(const std::string& name);
const DatasetInfo* find_dataset(const std::string& name);  // the same, nullptr when unknown

// Loads `name` (see the table above). `root` overrides the default folder ("" = default).
// Errors name the dataset, the folder and, for unknown names, the known ones.
Dataset load_dataset(const std::string& name, const std::string& root = "", const LoadOptions& options = {});

// The folder a name reads by default.
std::string default_root(const std::string& name);

// The names load_dataset knows ("folder:<path>" shown as such; synthetic kinds expanded).
std::vector<std::string> known_datasets();

// The input normalisation a model trained on `name` expects; OOD sets must be normalised with
// the in-distribution set's preset, not their own.
// (its row's normalization; any other synthetic-* name: the synthetic sets'):
//  cifar10, cifar100, isun, tinyimagenet, svhn, lsun*, places365, textures, folder:*: ImageNet
//    statistics (those of the shared pretrained ResNet-20; see docs/data.md)
//  mnist: mean 0.1307, std 0.3081 per channel; fashion-mnist: 0.2860 / 0.3530
//  synthetic-*: mean 0.5, std 0.29 per channel (measured on 10,000 generated shapes)
Normalization normalization_for(const std::string& name);

// The measured per-channel statistics of CIFAR-10's training set (mean 0.4914, 0.4822, 0.4465;
// std 0.2470, 0.2435, 0.2616), for models that prefer them to the ImageNet preset.
Normalization cifar10_statistics();

}  // namespace oodkit::data
