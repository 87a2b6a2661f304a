#include "data/registry.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "data/cifar.h"
#include "data/idx.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "framework/random.h"

namespace fs = std::filesystem;

namespace oodkit::data {

namespace {

const char* const kSyntheticPrefix = "synthetic-ood-";
const char* const kFolderPrefix = "folder:";
// The test share of an image folder without split sub-folders (per class, seed 0).
constexpr double kFolderTestFraction = 0.2;

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string shared_datasets_dir() {
  const char* env = std::getenv("OODKIT_SHARED_DIR");
  return (env && *env) ? std::string(env) + "/datasets" : std::string("../shared/datasets");
}

std::string split_or(const LoadOptions& o, const std::string& dflt) { return o.split.empty() ? dflt : o.split; }

// Resizes to options.image_size (square) when set and different; trims to options.limit.
Dataset finish(Dataset ds, const LoadOptions& o) {
  if (o.limit >= 0 && o.limit < ds.size()) {
    std::vector<int64_t> rows(static_cast<size_t>(o.limit));
    for (int64_t i = 0; i < o.limit; ++i) rows[size_t(i)] = i;
    ds = take_rows(ds, rows);
  }
  if (o.image_size > 0 && (ds.images.size(2) != o.image_size || ds.images.size(3) != o.image_size))
    ds.images = resize_images(ds.images, o.image_size, o.image_size, o.resize);
  return ds;
}

ImageFolderOptions folder_options(const LoadOptions& o, FolderLabels labels) {
  ImageFolderOptions f;
  f.labels = labels;
  set_square_size(f, o.image_size, o.fit);
  f.resize = o.resize;
  f.limit = o.limit;
  f.skip_unreadable = o.skip_unreadable;
  return f;
}

// The one file in `dir` whose name starts with `prefix` and contains `part`.
std::string find_idx_file(const std::string& dir, const std::string& prefix, const std::string& part) {
  std::error_code ec;
  OODKIT_CHECK(fs::is_directory(dir, ec), "dataset folder '", dir, "' does not exist");
  std::vector<std::string> hits;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (starts_with(n, prefix) && n.find(part) != std::string::npos) hits.push_back(it->path().string());
  }
  std::sort(hits.begin(), hits.end());
  OODKIT_CHECK(hits.size() == 1, "'", dir, "': expected one file named ", prefix, "*", part, "*, found ",
               hits.size());
  return hits[0];
}

// ---- The loaders: (name, root, options with a checked split) -> the set, one per layout.

Dataset load_cifar_files(const std::string& name, const std::string& root, const LoadOptions& o) {
  const std::string split = split_or(o, "test");
  std::vector<std::string> files;
  if (name == "cifar10" && split == "train")
    for (int i = 1; i <= 5; ++i) files.push_back(root + "/data_batch_" + std::to_string(i) + ".bin");
  else
    files.push_back(root + (name == "cifar10" ? "/test_batch.bin" : "/" + split + ".bin"));
  Dataset ds = load_cifar(files, name == "cifar10" ? CifarLayout::Cifar10 : CifarLayout::Cifar100Fine);
  std::error_code ec;
  const std::string meta = root + (name == "cifar10" ? "/batches.meta.txt" : "/fine_label_names.txt");
  if (fs::exists(meta, ec)) ds.class_names = read_class_names(meta);
  return finish(std::move(ds), o);
}

Dataset load_mnist_folder(const std::string& name, const std::string& root, const LoadOptions& o) {
  const std::string prefix = split_or(o, "test") == "train" ? "train" : "t10k";
  Dataset ds = load_mnist_like(find_idx_file(root, prefix, "images-idx3-ubyte"),
                               find_idx_file(root, prefix, "labels-idx1-ubyte"), name);
  return finish(std::move(ds), o);
}

Dataset load_flat_folder(const std::string& name, const std::string& root, const LoadOptions& o) {
  return load_image_folder(root, folder_options(o, FolderLabels::None), name);
}

Dataset load_tinyimagenet(const std::string& name, const std::string& root, const LoadOptions& o) {
  if (split_or(o, "test") == "val") {
    Dataset ds = load_tiny_imagenet_val(root, folder_options(o, FolderLabels::None));
    ds.name = "tinyimagenet-val";
    return ds;
  }
  return load_image_folder(root + "/test", folder_options(o, FolderLabels::None), name);
}

// One layout for every command (docs/data.md, "One layout"): <root>/<split>/[<class>/]... or,
// without split sub-folders, <root>/[<class>/]... whose train and test splits are a fixed
// per-class 80/20 partition (kFolderTestFraction, seed 0), the same for train, eval and score.
// Without a split, a folder holding both train/ and test/ reads test/ (the default split, as
// for CIFAR-10); any other folder is read whole.
Dataset load_split_folder(const std::string& name, const std::string& root, const LoadOptions& o) {
  std::string dir = root;
  std::error_code ec;
  OODKIT_CHECK(fs::is_directory(root, ec), "dataset '", name, "': image folder '", root,
               "' does not exist or is not a folder");
  const bool has_train = fs::is_directory(root + "/train", ec), has_test = fs::is_directory(root + "/test", ec);
  if (!o.split.empty() && fs::is_directory(root + "/" + o.split, ec)) {
    dir = root + "/" + o.split;
  } else if (!o.split.empty()) {
    OODKIT_CHECK(!has_train && !has_test && (o.split == "train" || o.split == "test"), "dataset '", name,
                 "': split folder '", root + "/" + o.split, "' does not exist (",
                 has_train || has_test ? "the folder has " : "a folder without split sub-folders has only the "
                                                             "splits train and test, an 80/20 partition",
                 has_train ? "train/" : "", has_train && has_test ? " and " : "", has_test ? "test/" : "", ")");
    // The partition is drawn on all files: no limit while loading, applied to the split's rows.
    LoadOptions whole = o;
    whole.limit = -1;
    Dataset all = load_image_folder(root, folder_options(whole, FolderLabels::Auto), name);
    const HoldoutSplit part = all.labels.defined() ? holdout_split(all.labels, kFolderTestFraction, 0, true)
                                                   : holdout_split(all.size(), kFolderTestFraction, 0);
    std::vector<int64_t> rows = o.split == "train" ? part.train : part.val;
    if (o.limit >= 0 && int64_t(rows.size()) > o.limit) rows.resize(size_t(o.limit));
    Dataset ds = take_rows(all, rows);
    ds.skipped = all.skipped;
    return ds;
  } else if (has_train && has_test) {
    dir = root + "/test";
  }
  return load_image_folder(dir, folder_options(o, FolderLabels::Auto), name);
}

Dataset load_synthetic(const std::string& name, SyntheticKind kind, const LoadOptions& o) {
  const std::string split = split_or(o, "test");
  const uint64_t stream = split == "train" ? 0 : split == "val" ? 1 : 2;
  int64_t count = o.count > 0 ? o.count : (split == "train" ? 10000 : 2000);
  if (o.limit >= 0) count = std::min(count, o.limit);
  Dataset ds = make_synthetic(kind, count, counter_hash(o.seed, stream));
  ds.name = name;
  LoadOptions rest = o;
  rest.limit = -1;
  return finish(std::move(ds), rest);
}

// ---- The table.

const Normalization kSyntheticNormalization{{0.5f, 0.5f, 0.5f}, {0.29f, 0.29f, 0.29f}};
const char* const kIdxLayout =
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or not)";

std::vector<SplitInfo> labelled(std::initializer_list<const char*> names) {
  std::vector<SplitInfo> out;
  for (const char* n : names) out.push_back({n, true});
  return out;
}

DatasetInfo folder_set(const std::string& name, const std::string& help) {
  return {name, DatasetKind::ImageFolder, kImageFolderLayout, {}, "", kClassesFromFolder, load_split_folder,
          folder_split_counts, imagenet_normalization(), help};
}

DatasetInfo synthetic_set(SyntheticKind kind, const std::string& help) {
  const bool id = kind == SyntheticKind::Shapes;
  const std::string name = id ? std::string("synthetic-id") : kSyntheticPrefix + synthetic_kind_name(kind);
  std::vector<SplitInfo> splits = labelled({"train", "val", "test"});
  for (SplitInfo& s : splits) s.labelled = id;
  return {name,
          DatasetKind::Generated,
          "generated (data/synthetic.h): splits train, val, test",
          splits,
          "test",
          id ? 10 : 0,
          [kind](const std::string& n, const std::string&, const LoadOptions& o) { return load_synthetic(n, kind, o); },
          nullptr,
          kSyntheticNormalization,
          help};
}

std::vector<DatasetInfo> make_table() {
  std::vector<DatasetInfo> t = {
      {"cifar10", DatasetKind::Arrays,
       "data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin (test): the CIFAR-10 binary version",
       labelled({"train", "test"}), "test", 10, load_cifar_files, cifar10_counts,
       imagenet_normalization(), "CIFAR-10: 32x32 colour photographs of 10 classes (50,000 train, 10,000 test)"},
      {"cifar100", DatasetKind::Arrays, "train.bin, test.bin: the CIFAR-100 binary version (fine labels)",
       labelled({"train", "test"}), "test", 100, load_cifar_files, cifar100_counts,
       imagenet_normalization(), "CIFAR-100: 32x32 colour photographs of 100 classes (fine labels)"},
      {"mnist", DatasetKind::Arrays, kIdxLayout, labelled({"train", "test"}), "test", 10, load_mnist_folder,
       idx_split_counts, {{0.1307f, 0.1307f, 0.1307f}, {0.3081f, 0.3081f, 0.3081f}},
       "MNIST: 28x28 handwritten digits, 10 classes (replicated to 3 channels)"},
      {"fashion-mnist", DatasetKind::Arrays, kIdxLayout, labelled({"train", "test"}), "test", 10, load_mnist_folder,
       idx_split_counts, {{0.2860f, 0.2860f, 0.2860f}, {0.3530f, 0.3530f, 0.3530f}},
       "Fashion-MNIST: 28x28 clothing images, 10 classes (replicated to 3 channels)"},
      {"isun", DatasetKind::ImageFolder, "the image files directly in the folder (unlabelled)", {{"all", false}}, "",
       0, load_flat_folder, flat_folder_counts, imagenet_normalization(),
       "iSUN: 32x32 scene patches, the OOD test set of ODIN and Energy (unlabelled)"},
      {"tinyimagenet", DatasetKind::ImageFolder,
       "test/ (image files, unlabelled), val/images/ or val/ with val_annotations.txt, and wnids.txt",
       {{"test", false}, {"val", true}}, "test", 200, load_tinyimagenet, tinyimagenet_counts,
       imagenet_normalization(), "Tiny ImageNet: 64x64, 200 classes; test unlabelled, val labelled (50 per class)"},
      folder_set("svhn", "SVHN: 32x32 house-number digits (class folders 0-9 when labelled)"),
      folder_set("lsun", "LSUN (crop): 32x32 scene crops, an OOD test set"),
      folder_set("lsun-resize", "LSUN (resize): 32x32 resized scenes, an OOD test set"),
      folder_set("places365", "Places365: scene photographs, an OOD test set"),
      folder_set("textures", "Textures (DTD): texture photographs, an OOD test set"),
      {"folder:<path>", DatasetKind::AnyFolder,
       "<path>/{train,test}/<class>/<image>, or <path>/<class>/<image> (80/20 split), or flat", {}, "",
       kClassesFromFolder, load_split_folder, nullptr, imagenet_normalization(),
       "any image folder (labels from class sub-folders when present)"},
      synthetic_set(SyntheticKind::Shapes, "generated 32x32 shapes, 10 classes: the built-in ID set"),
      synthetic_set(SyntheticKind::UnseenShapes, "generated shapes of kinds synthetic-id never shows (near OOD)"),
      synthetic_set(SyntheticKind::Strokes, "generated random strokes (OOD)"),
      synthetic_set(SyntheticKind::Textures, "generated textures (OOD)"),
      synthetic_set(SyntheticKind::Noise, "generated noise images (far OOD)"),
  };
  return t;
}

void check_split(const DatasetInfo& row, const std::string& split) {
  std::string list;
  for (const SplitInfo& s : row.splits) {
    if (split == s.name) return;
    list += (list.empty() ? "" : ", ") + s.name;
  }
  OODKIT_FAIL("dataset '", row.name, "' has no split '", split, "' (splits: ", list, ")");
}

}  // namespace

const char* const kImageFolderLayout =
    "an image folder: train/ and test/ each <class>/<image> or flat; without split folders, an 80/20 split of "
    "<class>/<image> or flat";

const char* dataset_kind_name(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::Arrays: return "arrays";
    case DatasetKind::ImageFolder: return "image folder";
    case DatasetKind::AnyFolder: return "any folder";
    case DatasetKind::Generated: return "generated";
  }
  OODKIT_FAIL("unknown dataset kind");
}

const std::vector<DatasetInfo>& dataset_registry() {
  static const std::vector<DatasetInfo> table = make_table();
  return table;
}

std::vector<std::string> known_datasets() {
  std::vector<std::string> names;
  for (const DatasetInfo& row : dataset_registry()) names.push_back(row.name);
  return names;
}

const DatasetInfo* find_dataset(const std::string& name) {
  const std::string key = starts_with(name, kFolderPrefix) ? "folder:<path>" : name;
  for (const DatasetInfo& row : dataset_registry())
    if (row.name == key) return &row;
  return nullptr;
}

const DatasetInfo& dataset_info(const std::string& name) {
  if (const DatasetInfo* row = find_dataset(name)) return *row;
  std::string known;
  for (const std::string& k : known_datasets()) known += (known.empty() ? "" : ", ") + k;
  OODKIT_FAIL("unknown dataset '", name, "' (known: ", known, ")");
}

std::string default_root(const std::string& name) {
  if (starts_with(name, kFolderPrefix)) return name.substr(std::string(kFolderPrefix).size());
  if (starts_with(name, "synthetic")) return "";
  return shared_datasets_dir() + "/" + name;
}

Dataset load_dataset(const std::string& name, const std::string& root_in, const LoadOptions& o) {
  OODKIT_CHECK(o.image_size >= 0, "load_dataset('", name, "'): image_size must be >= 0, got ", o.image_size);
  if (starts_with(name, kSyntheticPrefix)) {  // an unlisted kind: synthetic.h's message
    const std::string kind = name.substr(std::string(kSyntheticPrefix).size());
    OODKIT_CHECK(kind != "shapes" && kind != "id", "'", name, "' is the in-distribution set: use synthetic-id");
    parse_synthetic_kind(kind);
  }
  const DatasetInfo& row = dataset_info(name);
  const std::string root = root_in.empty() ? default_root(name) : root_in;
  std::error_code ec;
  const bool on_disk = row.kind == DatasetKind::Arrays || row.kind == DatasetKind::ImageFolder;
  OODKIT_CHECK(!root_in.empty() || !on_disk || fs::is_directory(root, ec), "dataset '", name,
               "' is not installed: folder '", root, "' does not exist (set OODKIT_SHARED_DIR to the folder holding "
               "datasets/", name, "/; docs/data.md says where each set comes from)");
  // Sets with several fixed splits refuse any other (isun reads its one folder whatever is asked).
  if (row.splits.size() > 1) check_split(row, split_or(o, row.default_split));
  return row.load(name, root, o);
}

Normalization normalization_for(const std::string& name) {
  if (starts_with(name, "synthetic")) return kSyntheticNormalization;  // every synthetic-* name, listed or not
  const DatasetInfo* row = find_dataset(name);
  OODKIT_CHECK(row, "normalization_for: unknown dataset '", name, "'");
  return row->normalization;
}

Normalization cifar10_statistics() { return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}}; }

}  // namespace oodkit::data
