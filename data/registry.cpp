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
const std::vector<std::string> kFolderSets = {"svhn", "lsun", "lsun-resize", "places365", "textures"};
// The test share of an image folder without split sub-folders (per class, seed 0).
constexpr double kFolderTestFraction = 0.2;

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string shared_datasets_dir() {
  const char* env = std::getenv("OODKIT_SHARED_DIR");
  return (env && *env) ? std::string(env) + "/datasets" : std::string("../shared/datasets");
}

std::string split_or(const LoadOptions& o, const std::string& dflt) { return o.split.empty() ? dflt : o.split; }

void check_split(const std::string& name, const std::string& split, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (split == a) return;
    list += list.empty() ? a : std::string(", ") + a;
  }
  OODKIT_FAIL("dataset '", name, "' has no split '", split, "' (splits: ", list, ")");
}

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

Dataset load_mnist_folder(const std::string& name, const std::string& root, const LoadOptions& o) {
  const std::string split = split_or(o, "test");
  check_split(name, split, {"train", "test"});
  const std::string prefix = split == "train" ? "train" : "t10k";
  Dataset ds = load_mnist_like(find_idx_file(root, prefix, "images-idx3-ubyte"),
                               find_idx_file(root, prefix, "labels-idx1-ubyte"), name);
  return finish(std::move(ds), o);
}

Dataset load_synthetic(const std::string& name, SyntheticKind kind, const LoadOptions& o) {
  const std::string split = split_or(o, "test");
  check_split(name, split, {"train", "val", "test"});
  const uint64_t stream = split == "train" ? 0 : split == "val" ? 1 : 2;
  int64_t count = o.count > 0 ? o.count : (split == "train" ? 10000 : 2000);
  if (o.limit >= 0) count = std::min(count, o.limit);
  Dataset ds = make_synthetic(kind, count, counter_hash(o.seed, stream));
  ds.name = name;
  LoadOptions rest = o;
  rest.limit = -1;
  return finish(std::move(ds), rest);
}

}  // namespace

std::string default_root(const std::string& name) {
  if (starts_with(name, kFolderPrefix)) return name.substr(std::string(kFolderPrefix).size());
  if (starts_with(name, "synthetic")) return "";
  return shared_datasets_dir() + "/" + name;
}

std::vector<std::string> known_datasets() {
  std::vector<std::string> names = {"cifar10", "cifar100", "mnist", "fashion-mnist", "isun", "tinyimagenet"};
  names.insert(names.end(), kFolderSets.begin(), kFolderSets.end());
  names.push_back("folder:<path>");
  names.push_back("synthetic-id");
  for (SyntheticKind k :
       {SyntheticKind::UnseenShapes, SyntheticKind::Strokes, SyntheticKind::Textures, SyntheticKind::Noise})
    names.push_back(kSyntheticPrefix + synthetic_kind_name(k));
  return names;
}

Dataset load_dataset(const std::string& name, const std::string& root_in, const LoadOptions& o) {
  OODKIT_CHECK(o.image_size >= 0, "load_dataset('", name, "'): image_size must be >= 0, got ", o.image_size);
  if (name == "synthetic-id") return load_synthetic(name, SyntheticKind::Shapes, o);
  if (starts_with(name, kSyntheticPrefix)) {
    const std::string kind = name.substr(std::string(kSyntheticPrefix).size());
    OODKIT_CHECK(kind != "shapes" && kind != "id", "'", name, "' is the in-distribution set: use synthetic-id");
    return load_synthetic(name, parse_synthetic_kind(kind), o);
  }
  const std::string root = root_in.empty() ? default_root(name) : root_in;
  if (root_in.empty() && !starts_with(name, kFolderPrefix)) {
    const std::vector<std::string> known = known_datasets();
    std::error_code ec;
    OODKIT_CHECK(std::find(known.begin(), known.end(), name) == known.end() || fs::is_directory(root, ec), "dataset '",
                 name, "' is not installed: folder '", root, "' does not exist (set OODKIT_SHARED_DIR to the folder "
                 "holding datasets/", name, "/; docs/data.md says where each set comes from)");
  }

  if (name == "cifar10" || name == "cifar100") {
    const std::string split = split_or(o, "test");
    check_split(name, split, {"train", "test"});
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
  if (name == "mnist" || name == "fashion-mnist") return load_mnist_folder(name, root, o);
  if (name == "isun") {
    Dataset ds = load_image_folder(root, folder_options(o, FolderLabels::None), name);
    return ds;
  }
  if (name == "tinyimagenet") {
    const std::string split = split_or(o, "test");
    check_split(name, split, {"test", "val"});
    if (split == "val") {
      Dataset ds = load_tiny_imagenet_val(root, folder_options(o, FolderLabels::None));
      ds.name = "tinyimagenet-val";
      return ds;
    }
    return load_image_folder(root + "/test", folder_options(o, FolderLabels::None), name);
  }
  const bool folder_set = std::find(kFolderSets.begin(), kFolderSets.end(), name) != kFolderSets.end();
  if (folder_set || starts_with(name, kFolderPrefix)) {
    std::string dir = root;
    std::error_code ec;
    OODKIT_CHECK(fs::is_directory(root, ec), "dataset '", name, "': image folder '", root,
                 "' does not exist or is not a folder");
    // One layout for every command (docs/data.md, "One layout"): <root>/<split>/[<class>/]... or,
    // without split sub-folders, <root>/[<class>/]... whose train and test splits are a fixed
    // per-class 80/20 partition (kFolderTestFraction, seed 0), the same for train, eval and score.
    // Without a split, a folder holding both train/ and test/ reads test/ (the default split, as
    // for CIFAR-10); any other folder is read whole.
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
  std::string known;
  for (const std::string& k : known_datasets()) known += (known.empty() ? "" : ", ") + k;
  OODKIT_FAIL("unknown dataset '", name, "' (known: ", known, ")");
}

Normalization normalization_for(const std::string& name) {
  if (name == "mnist") return {{0.1307f, 0.1307f, 0.1307f}, {0.3081f, 0.3081f, 0.3081f}};
  if (name == "fashion-mnist") return {{0.2860f, 0.2860f, 0.2860f}, {0.3530f, 0.3530f, 0.3530f}};
  if (starts_with(name, "synthetic")) return {{0.5f, 0.5f, 0.5f}, {0.29f, 0.29f, 0.29f}};
  const std::vector<std::string> known = known_datasets();
  OODKIT_CHECK(std::find(known.begin(), known.end(), name) != known.end() || starts_with(name, kFolderPrefix),
               "normalization_for: unknown dataset '", name, "'");
  return imagenet_normalization();
}

Normalization cifar10_statistics() { return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}}; }

}  // namespace oodkit::data
