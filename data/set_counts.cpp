#include "data/set_counts.h"

#include <filesystem>

#include "data/idx.h"
#include "data/image_folder.h"
#include "framework/error.h"

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

}  // namespace

SplitCounts cifar10_counts(const std::string& root) {
  std::vector<std::string> train;
  for (int i = 1; i <= 5; ++i) train.push_back(root + "/data_batch_" + std::to_string(i) + ".bin");
  return {{"train", cifar_records(train, 3073)}, {"test", cifar_records({root + "/test_batch.bin"}, 3073)}};
}

SplitCounts cifar100_counts(const std::string& root) {
  return {{"train", cifar_records({root + "/train.bin"}, 3074)}, {"test", cifar_records({root + "/test.bin"}, 3074)}};
}

SplitCounts idx_split_counts(const std::string& root) {
  SplitCounts rows;
  for (const auto& [split, prefix] : {std::pair{"train", "train"}, std::pair{"test", "t10k"}})
    if (const std::string f = idx_labels(root, prefix); !f.empty()) rows.emplace_back(split, read_idx(f, 1).dims[0]);
  OODKIT_CHECK(!rows.empty(), "no train* or t10k* labels-idx1-ubyte file");
  return rows;
}

SplitCounts tinyimagenet_counts(const std::string& root) {
  SplitCounts rows;
  if (is_dir(root + "/test")) rows.emplace_back("test", int64_t(list_image_files(root + "/test").size()));
  if (is_dir(root + "/val"))
    rows.emplace_back("val", int64_t(list_image_files(is_dir(root + "/val/images") ? root + "/val/images" : root + "/val").size()));
  OODKIT_CHECK(!rows.empty(), "neither test/ nor val/");
  return rows;
}

SplitCounts flat_folder_counts(const std::string& root) { return {{"all", int64_t(list_image_files(root).size())}}; }

SplitCounts folder_split_counts(const std::string& root) {
  SplitCounts rows;
  for (const char* split : {"train", "test"})
    if (is_dir(root + "/" + split)) rows.emplace_back(split, folder_images(root + "/" + split));
  if (rows.empty()) rows.emplace_back("all", folder_images(root));
  return rows;
}

}  // namespace oodkit::data
