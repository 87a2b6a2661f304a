// Bad inputs at the library level (tests/cli/check_bad_inputs.py checks the commands): state-dict
// errors summarised as counts plus the first few names; image folders with unreadable files,
// skipped or not (labels stay with their images); a drop_last loader with a batch larger than the
// rows it iterates.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "data/image_folder.h"
#include "data/loader.h"
#include "framework/nn/module.h"
#include "testing.h"

using namespace oodkit;
namespace fs = std::filesystem;

namespace {

// A module with `n` parameters named "p000", "p001", ... of shape [2].
class Many : public nn::Module {
 public:
  explicit Many(int n) : slots_(size_t(n)) {
    for (int i = 0; i < n; ++i) {
      slots_[size_t(i)] = Tensor::zeros({2});
      register_parameter(name(i), &slots_[size_t(i)]);
    }
  }
  static std::string name(int i) {
    const std::string d = std::to_string(i);
    return "p" + std::string(3 - d.size(), '0') + d;
  }
  std::vector<Tensor> slots_;
};

std::string load_error(nn::Module& m, const NamedTensors& state) {
  try {
    m.load_state_dict(state);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "oodkit_bad_inputs_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A 4x4 RGB image filled with `value`.
void write_image(const std::string& path, uint8_t value) {
  data::write_png(path, Tensor::from_vector<uint8_t>(std::vector<uint8_t>(48, value), {3, 4, 4}));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST(BadInputs, StateDictErrorsAreCountsAndTheFirstFewNames) {
  Many m(100);
  NamedTensors state;
  for (int i = 0; i < 40; ++i) state.emplace_back(Many::name(i), Tensor::ones({2}));  // 60 missing
  state[1].second = Tensor::ones({3});                                                   // 1 mis-shaped
  state[2].second = Tensor::ones({2, 1});                                                // 2 mis-shaped
  for (int i = 0; i < 250; ++i) state.emplace_back("junk." + std::to_string(i), Tensor::ones({1}));  // 250 extra
  const std::string msg = load_error(m, state);
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("100 model entries, 290 given"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 with the wrong shape: 'p001' (checkpoint [3], model [2]), 'p002' (checkpoint [2, 1], "
                     "model [2])"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("60 missing: 'p040', 'p041', 'p042', 'p043', 'p044' and 55 more"), std::string::npos) << msg;
  EXPECT_NE(msg.find("250 unexpected: 'junk.0', 'junk.1', 'junk.2', 'junk.3', 'junk.4' and 245 more"),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("p045"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("junk.5"), std::string::npos) << msg;
  EXPECT_LT(msg.size(), 800u) << msg;
  // Nothing was written: the entries that did fit are still zero.
  EXPECT_EQ(m.slots_[0].to_vector<float>(), std::vector<float>(2, 0.f));
}

TEST(BadInputs, UnreadableImagesAreNamedOrSkippedWithTheirLabels) {
  const std::string dir = fresh_dir("skip");
  fs::create_directories(dir + "/a");
  fs::create_directories(dir + "/b");
  write_image(dir + "/a/0.png", 10);
  write_bytes(dir + "/a/1.png", "not an image");
  write_image(dir + "/b/0.png", 20);
  write_bytes(dir + "/b/1.png", "");
  write_image(dir + "/b/2.png", 30);
  data::ImageFolderOptions o;
  o.labels = data::FolderLabels::FromSubfolders;
  try {
    data::load_image_folder(dir, o);
    FAIL() << "no throw";
  } catch (const data::UnreadableImageError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/a/1.png"), std::string::npos) << e.what();
  }
  o.skip_unreadable = true;
  const data::Dataset ds = data::load_image_folder(dir, o);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(ds.images.to_vector<uint8_t>()[0], 10);
  EXPECT_EQ(ds.images.to_vector<uint8_t>()[48], 20);
  EXPECT_EQ(ds.images.to_vector<uint8_t>()[96], 30);
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_EQ(ds.skipped[0].path, dir + "/a/1.png");
  EXPECT_EQ(ds.skipped[1].path, dir + "/b/1.png");
  EXPECT_NE(ds.skipped[1].reason.find("empty"), std::string::npos) << ds.skipped[1].reason;

  // A folder of nothing but unreadable files stays an error.
  const std::string bad = fresh_dir("all_bad");
  write_bytes(bad + "/x.png", "junk");
  o.labels = data::FolderLabels::None;
  EXPECT_THROW(data::load_image_folder(bad, o), Error);
}

TEST(BadInputs, DropLastLoaderRefusesABatchLargerThanItsRows) {
  data::Dataset ds;
  ds.images = Tensor::zeros({10, 3, 2, 2}, DType::U8);
  data::LoaderOptions o;
  o.batch_size = 11;
  EXPECT_NO_THROW(data::BatchLoader(ds, o));  // one partial batch
  o.drop_last = true;
  EXPECT_THROW(data::BatchLoader(ds, o), Error);
  o.batch_size = 10;
  EXPECT_NO_THROW(data::BatchLoader(ds, o));
}
