#include "data/inventory.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/idx.h"
#include "data/image_folder.h"
#include "data/registry.h"
#include "framework/error.h"
#include "framework/hash.h"

namespace fs = std::filesystem;

namespace oodkit::data {

namespace {

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}


// Images the loader would read from an image folder with labels Auto: those of the class
// sub-folders when some hold images, else those directly in it.
int64_t folder_images(const std::string& dir) {
  int64_t in_classes = 0;
  std::vector<std::string> subs;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && it->path().filename().string().rfind('.', 0) != 0) subs.push_back(it->path().string());
  for (const std::string& s : subs) in_classes += int64_t(list_image_files(s).size());
  return in_classes > 0 ? in_classes : int64_t(list_image_files(dir).size());
}

// Whole records of `record` bytes in `files` (all must exist).
int64_t cifar_records(const std::vector<std::string>& files, int64_t record) {
  int64_t total = 0;
  for (const std::string& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    OODKIT_CHECK(!ec, "missing ", fs::path(f).filename().string());
    OODKIT_CHECK(size % uint64_t(record) == 0, fs::path(f).filename().string(), " is not a whole number of ", record,
                 "-byte records");
    total += int64_t(size / uint64_t(record));
  }
  return total;
}

// The labels file of an IDX split (name starting with `prefix`), or "" when there is none.
std::string idx_labels(const std::string& dir, const std::string& prefix) {
  std::error_code ec;
  std::vector<std::string> hits;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.rfind(prefix, 0) == 0 && n.find("labels-idx1-ubyte") != std::string::npos) hits.push_back(it->path().string());
  }
  OODKIT_CHECK(hits.size() <= 1, "more than one ", prefix, "*labels-idx1-ubyte* file");
  return hits.empty() ? "" : hits[0];
}

// The splits of an installed set and their image counts; throws what is wrong with the folder.
std::vector<std::pair<std::string, int64_t>> count_rows(const std::string& name, const std::string& root) {
  std::vector<std::pair<std::string, int64_t>> rows;
  if (name == "cifar10") {
    std::vector<std::string> train;
    for (int i = 1; i <= 5; ++i) train.push_back(root + "/data_batch_" + std::to_string(i) + ".bin");
    rows.emplace_back("train", cifar_records(train, 3073));
    rows.emplace_back("test", cifar_records({root + "/test_batch.bin"}, 3073));
  } else if (name == "cifar100") {
    rows.emplace_back("train", cifar_records({root + "/train.bin"}, 3074));
    rows.emplace_back("test", cifar_records({root + "/test.bin"}, 3074));
  } else if (name == "mnist" || name == "fashion-mnist") {
    for (const auto& [split, prefix] : {std::pair{"train", "train"}, std::pair{"test", "t10k"}})
      if (const std::string f = idx_labels(root, prefix); !f.empty()) rows.emplace_back(split, read_idx(f, 1).dims[0]);
    OODKIT_CHECK(!rows.empty(), "no train* or t10k* labels-idx1-ubyte file");
  } else if (name == "isun") {
    rows.emplace_back("all", int64_t(list_image_files(root).size()));
  } else if (name == "tinyimagenet") {
    if (is_dir(root + "/test")) rows.emplace_back("test", int64_t(list_image_files(root + "/test").size()));
    if (is_dir(root + "/val"))
      rows.emplace_back("val", int64_t(list_image_files(is_dir(root + "/val/images") ? root + "/val/images" : root + "/val").size()));
    OODKIT_CHECK(!rows.empty(), "neither test/ nor val/");
  } else {  // the image-folder sets
    for (const char* split : {"train", "test"})
      if (is_dir(root + "/" + split)) rows.emplace_back(split, folder_images(root + "/" + split));
    if (rows.empty()) rows.emplace_back("all", folder_images(root));
  }
  for (const auto& [split, n] : rows) OODKIT_CHECK(n > 0, "no images in split ", split);
  return rows;
}

}  // namespace

std::string folder_digest(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(it->path());
  OODKIT_CHECK(!ec, "cannot list '", dir, "': ", ec.message());
  std::vector<std::string> rel;
  for (const fs::path& f : files) rel.push_back(fs::relative(f, dir).generic_string());
  std::sort(rel.begin(), rel.end());
  uint64_t h = kDigestStart;
  std::vector<char> buf(1 << 20);
  for (const std::string& r : rel) {
    h = fnv1a(h, r.c_str(), r.size() + 1);
    const uint64_t size = fs::file_size(dir + "/" + r, ec);
    OODKIT_CHECK(!ec, "cannot read '", dir, "/", r, "'");
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(size >> (8 * i));
    h = fnv1a(h, le, 8);
    std::ifstream in(dir + "/" + r, std::ios::binary);
    OODKIT_CHECK(in.good(), "cannot read '", dir, "/", r, "'");
    while (in) {
      in.read(buf.data(), std::streamsize(buf.size()));
      h = fnv1a(h, buf.data(), size_t(in.gcount()));
    }
  }
  char out[32];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a64:") + out;
}

std::string expected_layout(const std::string& name) {
  if (name == "cifar10") return "data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin (test): the CIFAR-10 binary version";
  if (name == "cifar100") return "train.bin, test.bin: the CIFAR-100 binary version (fine labels)";
  if (name == "mnist" || name == "fashion-mnist")
    return "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or not)";
  if (name == "isun") return "the image files directly in the folder (unlabelled)";
  if (name == "tinyimagenet")
    return "test/ (image files, unlabelled), val/images/ or val/ with val_annotations.txt, and wnids.txt";
  if (name == "folder:<path>") return "<path>/{train,test}/<class>/<image>, or <path>/<class>/<image> (80/20 split), or flat";
  if (name.rfind("synthetic", 0) == 0) return "generated (data/synthetic.h): splits train, val, test";
  return "an image folder: train/ and test/ each <class>/<image> or flat; without split folders, an 80/20 split of <class>/<image> or flat";
}

std::vector<DatasetStatus> dataset_inventory(bool with_digest) {
  std::vector<DatasetStatus> out;
  for (const std::string& name : known_datasets()) {
    DatasetStatus s;
    s.name = name;
    s.layout = expected_layout(name);
    if (name.rfind("folder:", 0) == 0) {
      s.state = "any folder";
    } else if (name.rfind("synthetic", 0) == 0) {
      s.state = "built in";
    } else {
      s.root = default_root(name);
      if (!is_dir(s.root)) {
        s.state = "not installed";
      } else {
        try {
          s.rows = count_rows(name, s.root);
          s.state = "installed";
          if (with_digest) s.digest = folder_digest(s.root);
        } catch (const Error& e) {
          s.rows.clear();
          s.state = std::string("incomplete: ") + e.what();
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace oodkit::data
