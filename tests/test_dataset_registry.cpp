// The dataset table (data/registry.h) against its loaders: for every row, each split `oodkit
// data` counts loads with that many images, labelled as the row says, with the row's class count;
// a row whose folder is missing refuses with the "not installed" error naming the folder. The
// expected values come from the files (the counts read no image, the loads decode every one) and
// from hand-listed split names, never from the row under test alone.
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "data/image_folder.h"
#include "data/inventory.h"
#include "data/registry.h"
#include "run/plan.h"
#include "testing.h"

using namespace oodkit;
namespace fs = std::filesystem;

namespace {

// Sets OODKIT_SHARED_DIR for the test's life, restoring the old value after.
class SharedDirOverride {
 public:
  explicit SharedDirOverride(const std::string& dir) {
    if (const char* old = std::getenv("OODKIT_SHARED_DIR")) old_ = old, had_ = true;
    setenv("OODKIT_SHARED_DIR", dir.c_str(), 1);
  }
  ~SharedDirOverride() { had_ ? (void)setenv("OODKIT_SHARED_DIR", old_.c_str(), 1) : (void)unsetenv("OODKIT_SHARED_DIR"); }

 private:
  std::string old_;
  bool had_ = false;
};

void write_images(const std::string& dir, int n, int shade) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i)
    data::write_png(dir + "/" + std::to_string(i) + ".png", Tensor::full({3, 5, 5}, double(shade + 7 * i), DType::U8));
}

// A shared folder: the development copies (symlinked), svhn laid out as train/ and test/ with
// class folders (3 and 2 classes), textures flat (no split, no class); the others missing.
// One folder per test and process: ctest runs the tests of this file in parallel processes.
std::string make_shared_dir() {
  const std::string root = ::testing::TempDir() + "oodkit_dataset_table_" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
                           std::to_string(::getpid());
  fs::remove_all(root);
  fs::create_directories(root + "/datasets");
  for (const char* set : {"cifar10", "mnist", "fashion-mnist", "isun", "tinyimagenet"})
    fs::create_directory_symlink(oodkit::testing::shared_path(std::string("datasets/") + set),
                                 root + "/datasets/" + set);
  for (const char* cls : {"0", "1", "2"}) write_images(root + "/datasets/svhn/train/" + cls, 2, 10 * (cls[0] - '0'));
  for (const char* cls : {"0", "1"}) write_images(root + "/datasets/svhn/test/" + cls, 3, 50 + (cls[0] - '0'));
  write_images(root + "/datasets/textures", 5, 90);
  return root;
}

// make_shared_dir()'s folder, removed at the end of the test (the symlinks, not their targets).
struct SharedTree {
  const std::string root = make_shared_dir();
  ~SharedTree() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

// "" when the set's labels are exactly the classes 0..want-1 (want: the row's class count, or the
// class folders). Dataset::num_classes is not compared: Tiny ImageNet's wnids.txt may list more
// wnids than its val split uses (the development copy lists 202 for 200).
std::string label_problems(const data::Dataset& ds, int64_t classes, int64_t class_folders) {
  std::set<int64_t> distinct;
  for (int64_t y : ds.labels.to_vector<int64_t>()) distinct.insert(y);
  const int64_t want = classes == data::kClassesFromFolder ? class_folders : classes;
  if (int64_t(distinct.size()) != want)
    return std::to_string(distinct.size()) + " distinct labels, the row says " + std::to_string(want) + " classes";
  if (*distinct.begin() < 0 || *distinct.rbegin() >= want) return "labels outside [0, classes)";
  return "";
}

// Class sub-folders of a split folder (0 when none), for rows labelled by their folders.
int64_t class_folders(const std::string& dir) {
  int64_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) n += it->is_directory(ec);
  return n;
}

// What is wrong with `row` on the installed copy under `root` (its default root), "" when nothing:
// every counted split loads with the counted number of images, labelled as the row's split says
// and with its class count; a missing folder gives the "not installed" error naming it.
std::string row_problems(const data::DatasetInfo& row, const std::string& name, const std::string& root) {
  const auto split_dir = [&](const std::string& split) { return split == "all" ? root : root + "/" + split; };
  const auto labelled = [&](const std::string& split) {
    for (const data::SplitInfo& s : row.splits)
      if (s.name == split) return s.labelled;
    return row.classes == data::kClassesFromFolder && class_folders(split_dir(split)) > 0;  // an image folder's
  };
  const auto load = [&](const std::string& split, int64_t count) {
    data::LoadOptions o;
    o.split = split == "all" ? "" : split;
    o.count = count;
    // Not through `row` itself: the name is looked up again, as a command does.
    return data::load_dataset(name, "", o);
  };
  std::vector<std::pair<std::string, int64_t>> counts;
  if (row.kind == data::DatasetKind::Generated) {
    for (const data::SplitInfo& s : row.splits) counts.emplace_back(s.name, 40);
  } else {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      try {
        load("", 0);
        return "loads without its folder";
      } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.find("is not installed") == std::string::npos || msg.find("'" + root + "'") == std::string::npos)
          return "missing folder gives: " + msg;
        return "";
      }
    }
    if (!row.count) return "no count function for a set on disk";
    counts = row.count(root);
  }
  for (const auto& [split, n] : counts) {
    const data::Dataset ds = load(split, n);
    const std::string where = "split " + split + ": ";
    if (ds.size() != n) return where + std::to_string(ds.size()) + " images loaded, " + std::to_string(n) + " counted";
    if (ds.labels.defined() != labelled(split))
      return where + (ds.labels.defined() ? "labelled, the row says unlabelled" : "unlabelled, the row says labelled");
    if (!ds.labels.defined()) continue;
    if (const std::string p = label_problems(ds, row.classes, class_folders(split_dir(split))); !p.empty())
      return where + p;
  }
  return "";
}

TEST(DatasetTable, ListingAndLoadersAgree) {
  const SharedTree tree;
  const std::string& shared = tree.root;
  SharedDirOverride env(shared);
  std::set<std::string> listed;
  for (const data::DatasetStatus& s : data::dataset_inventory()) listed.insert(s.name);
  const std::string any = shared + "/any";  // a folder outside datasets/
  for (const char* cls : {"a", "b", "c", "d"}) write_images(any + "/" + cls, 5, 20 * (cls[0] - 'a'));
  int installed = 0, missing = 0;
  for (const data::DatasetInfo& row : data::dataset_registry()) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(listed.count(row.name), 1u) << "not listed by oodkit data";
    const bool any_folder = row.kind == data::DatasetKind::AnyFolder;
    const std::string name = any_folder ? "folder:" + any : row.name;
    const std::string root = any_folder ? any : data::default_root(row.name);
    if (any_folder) {  // not counted by `oodkit data`: its 80/20 splits, 4 class folders
      data::LoadOptions o;
      o.split = "train";
      const data::Dataset train = data::load_dataset(name, "", o);
      EXPECT_EQ(train.size(), 16);
      EXPECT_EQ(label_problems(train, row.classes, 4), "");
      continue;
    }
    EXPECT_EQ(row_problems(row, name, root), "");
    std::error_code ec;
    (row.kind == data::DatasetKind::Generated || fs::is_directory(root, ec) ? installed : missing) += 1;
  }
  // cifar100, lsun, lsun-resize, places365 are missing here; the 5 copies, svhn, textures and 5
  // synthetic sets load.
  EXPECT_EQ(missing, 4);
  EXPECT_EQ(installed, 12);
}

TEST(DatasetTable, PlantedRowsFail) {
  const SharedTree tree;
  const std::string& shared = tree.root;
  SharedDirOverride env(shared);
  data::DatasetInfo cifar = data::dataset_info("cifar10");
  cifar.classes = 100;  // a wrong class count
  EXPECT_NE(row_problems(cifar, "cifar10", data::default_root("cifar10")).find("10 distinct labels"), std::string::npos);
  data::DatasetInfo tiny = data::dataset_info("tinyimagenet");
  tiny.splits[0].labelled = true;  // test said labelled
  EXPECT_NE(row_problems(tiny, "tinyimagenet", data::default_root("tinyimagenet")).find("split test: unlabelled"),
            std::string::npos);
  data::DatasetInfo svhn = data::dataset_info("svhn");
  svhn.count = [](const std::string& root) { return data::SplitCounts{{"train", 5}, {"test", 6}}; };  // miscounted
  EXPECT_NE(row_problems(svhn, "svhn", data::default_root("svhn")).find("6 images loaded, 5 counted"), std::string::npos);
}

TEST(DatasetTable, SplitChecksAndDefaultsFromTheRows) {
  // The split lists, as users read them in errors (hand-listed, not from the table).
  for (const auto& [name, splits] : std::vector<std::pair<std::string, std::string>>{
           {"cifar10", "train, test"}, {"mnist", "train, test"}, {"tinyimagenet", "test, val"},
           {"synthetic-id", "train, val, test"}, {"synthetic-ood-noise", "train, val, test"}}) {
    data::LoadOptions o;
    o.split = "holdout";
    const std::string root = name.rfind("synthetic", 0) == 0 ? "" : oodkit::testing::shared_path("datasets/" + name);
    try {
      data::load_dataset(name, root, o);
      ADD_FAILURE() << name << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "dataset '" + name + "' has no split 'holdout' (splits: " + splits + ")");
    }
  }
  // Same images: a name without a split is its default split; isun is one folder; image folders
  // have no default.
  EXPECT_TRUE(run::same_images("cifar10", "cifar10:test"));
  EXPECT_FALSE(run::same_images("cifar10", "cifar10:train"));
  EXPECT_TRUE(run::same_images("tinyimagenet:test", "tinyimagenet"));
  EXPECT_FALSE(run::same_images("tinyimagenet", "tinyimagenet:val"));
  EXPECT_FALSE(run::same_images("synthetic-ood-noise:val", "synthetic-ood-noise"));
  EXPECT_TRUE(run::same_images("isun", "isun:train"));
  EXPECT_TRUE(run::same_images("svhn", "svhn:train"));
  EXPECT_FALSE(run::same_images("svhn:test", "svhn:train"));
  EXPECT_FALSE(run::same_images("cifar10", "cifar100"));
  EXPECT_TRUE(run::same_images("folder:/a/b", "folder:/a/b"));
}

}  // namespace
