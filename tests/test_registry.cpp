#include <filesystem>

#include "data/image_folder.h"
#include "data/registry.h"
#include "data/synthetic.h"
#include "testing.h"

using namespace oodkit;
namespace fs = std::filesystem;

namespace {

std::string shared_root(const std::string& folder) { return oodkit::testing::shared_path("datasets/" + folder); }

TEST(Registry, KnownNamesAndErrors) {
  const std::vector<std::string> names = data::known_datasets();
  for (const char* n : {"cifar10", "cifar100", "mnist", "fashion-mnist", "isun", "tinyimagenet", "svhn",
                        "folder:<path>", "synthetic-id", "synthetic-ood-noise", "synthetic-ood-unseen-shapes"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  try {
    data::load_dataset("imagenet-22k");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cifar10"), std::string::npos) << e.what();
  }
  data::LoadOptions o;
  o.split = "holdout";
  EXPECT_THROW(data::load_dataset("cifar10", shared_root("cifar10"), o), Error);
  EXPECT_THROW(data::load_dataset("synthetic-ood-shapes"), Error);
  EXPECT_EQ(data::default_root("folder:/x/y"), "/x/y");
}

TEST(Registry, RealSetsThroughTheRegistry) {
  data::LoadOptions o;
  const data::Dataset c = data::load_dataset("cifar10", shared_root("cifar10"), o);
  EXPECT_EQ(c.size(), 1000);
  EXPECT_EQ(c.class_names.size(), 10u);
  o.image_size = 32;
  const data::Dataset m = data::load_dataset("mnist", shared_root("mnist"), o);
  EXPECT_EQ(m.images.shape(), (Shape{3000, 3, 32, 32}));
  o.limit = 50;
  const data::Dataset f = data::load_dataset("fashion-mnist", shared_root("fashion-mnist"), o);
  EXPECT_EQ(f.images.shape(), (Shape{50, 3, 32, 32}));
  o.split = "val";
  const data::Dataset tv = data::load_dataset("tinyimagenet", shared_root("tinyimagenet"), o);
  EXPECT_EQ(tv.images.shape(), (Shape{50, 3, 32, 32}));
  EXPECT_TRUE(tv.labels.defined());
  o.split = "";
  EXPECT_FALSE(data::load_dataset("tinyimagenet", shared_root("tinyimagenet"), o).labels.defined());
  EXPECT_EQ(data::load_dataset("isun", shared_root("isun"), o).size(), 50);
}

TEST(Registry, FolderAndSvhnStyleSets) {
  const std::string d = ::testing::TempDir() + "oodkit_registry_svhn";
  fs::remove_all(d);
  for (const char* cls : {"0", "1"}) {
    fs::create_directories(d + "/test/" + cls);
    for (int i = 0; i < 3; ++i) {
      Tensor img = Tensor::full({3, 6, 6}, 40.0 * i + (cls[0] == '1' ? 100 : 0), DType::U8);
      data::write_png(d + "/test/" + cls + "/" + std::to_string(i) + ".png", img);
    }
  }
  data::LoadOptions o;
  o.split = "test";
  o.image_size = 32;
  const data::Dataset s = data::load_dataset("svhn", d, o);
  EXPECT_EQ(s.images.shape(), (Shape{6, 3, 32, 32}));
  EXPECT_EQ(s.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(s.name, "svhn");
  const data::Dataset g = data::load_dataset("folder:" + d + "/test/1");
  EXPECT_EQ(g.size(), 3);
  EXPECT_FALSE(g.labels.defined());
  o.split = "train";
  EXPECT_THROW(data::load_dataset("svhn", d, o), Error);
}

TEST(Registry, SyntheticSplitsAreDisjointStreams) {
  data::LoadOptions o;
  o.count = 20;
  o.seed = 3;
  o.split = "train";
  const data::Dataset train = data::load_dataset("synthetic-id", "", o);
  o.split = "test";
  const data::Dataset test = data::load_dataset("synthetic-id", "", o);
  EXPECT_EQ(train.size(), 20);
  EXPECT_EQ(train.num_classes, 10);
  EXPECT_NE(train.images.to_vector<uint8_t>(), test.images.to_vector<uint8_t>());
  EXPECT_EQ(test.images.to_vector<uint8_t>(), data::load_dataset("synthetic-id", "", o).images.to_vector<uint8_t>());
  o.count = 0;
  o.limit = 5;
  const data::Dataset ood = data::load_dataset("synthetic-ood-textures", "", o);
  EXPECT_EQ(ood.size(), 5);
  EXPECT_EQ(ood.name, "synthetic-ood-textures");
  EXPECT_FALSE(ood.labels.defined());
  o.limit = -1;
  o.split = "";
  EXPECT_EQ(data::load_dataset("synthetic-ood-noise", "", o).size(), 2000);
}

TEST(Registry, NormalizationPresets) {
  const data::Normalization c = data::normalization_for("cifar10");
  EXPECT_FLOAT_EQ(c.mean[0], 0.485f);
  EXPECT_FLOAT_EQ(c.std[2], 0.225f);
  EXPECT_FLOAT_EQ(data::normalization_for("mnist").mean[1], 0.1307f);
  EXPECT_FLOAT_EQ(data::normalization_for("synthetic-id").mean[2], 0.5f);
  EXPECT_FLOAT_EQ(data::normalization_for("folder:/x").std[0], 0.229f);
  EXPECT_THROW(data::normalization_for("nope"), Error);
  EXPECT_FLOAT_EQ(data::cifar10_statistics().mean[0], 0.4914f);
}

}  // namespace
