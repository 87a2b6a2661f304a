// Replays every input kept in tests/fixtures/fuzz/<target>/ (inputs the fuzzers found crashing,
// fixed since, and a few seeds) through the same entry points as the libFuzzer targets
// (fuzz/targets.h), in the normal build. The file name says the expected outcome:
//   ok_*   the parser accepts the input (the entry returns "")
//   err_*  the parser rejects it with an oodkit::Error; when <file>.expect exists, the message
//          must contain its text (first line)
// Any other exception fails the test (a crash fails the binary). A name ending in .gz is
// decompressed first (large inputs that compress well, e.g. deeply nested JSON).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/image_folder.h"
#include "data/io.h"
#include "fuzz/targets.h"

namespace fs = std::filesystem;

namespace {

std::string fixture_dir(const std::string& target) {
  return std::string(OODKIT_SOURCE_DIR) + "/tests/fixtures/fuzz/" + target;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class FuzzRegression : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzRegression, KeptInputsGiveTheExpectedOutcome) {
  const std::string target = GetParam();
  const oodkit::fuzz::Entry entry = oodkit::fuzz::find_target(target);
  ASSERT_NE(entry, nullptr) << target;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(fixture_dir(target)))
    if (e.path().extension() != ".expect") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "no inputs in " << fixture_dir(target);
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    const std::string name = fs::path(path).filename().string();
    std::string bytes = read_all(path);
    if (fs::path(path).extension() == ".gz") {
      const std::vector<uint8_t> raw = oodkit::data::gunzip({bytes.begin(), bytes.end()}, path);
      bytes.assign(raw.begin(), raw.end());
    }
    std::string outcome;
    try {
      outcome = entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "escaped exception (not an oodkit::Error, or an internal error): " << e.what();
      continue;
    }
    if (name.rfind("ok_", 0) == 0) {
      EXPECT_EQ(outcome, "") << "expected the parser to accept it";
    } else {
      ASSERT_EQ(name.rfind("err_", 0), 0u) << "fixture names start with ok_ or err_";
      EXPECT_NE(outcome, "") << "expected a clear oodkit error";
      std::string expect;
      std::ifstream ef(path + ".expect");
      if (std::getline(ef, expect) && !expect.empty())
        EXPECT_NE(outcome.find(expect), std::string::npos) << "error: " << outcome << "\nexpected to contain: " << expect;
    }
  }
}

// stb 2.27 converted a 16-bit grayscale PNM to RGB with its 8-bit routine, reading past its
// buffer (the fuzzer's ok_pgm16_short.pgm): decode_image must give stb's 16-to-8-bit values
// replicated to R, G and B. stb 2.27 neither rescales by maxval nor byte-swaps PNM samples, so
// each value is the low byte of the big-endian sample in the file.
TEST(FuzzRegressionImage, Gray16PnmGivesTheHighBytes) {
  const oodkit::Tensor img =
      oodkit::data::decode_image(std::string(OODKIT_SOURCE_DIR) + "/tests/fixtures/fuzz/image/ok_gray16.pgm");
  ASSERT_EQ(img.shape(), (oodkit::Shape{3, 2, 3}));
  const std::vector<uint8_t> expect = {0, 100, 200, 244, 231, 232};  // 0 100 200 500 999 1000, & 255
  const std::vector<uint8_t> got = img.to_vector<uint8_t>();
  for (int c = 0; c < 3; ++c)
    EXPECT_EQ(std::vector<uint8_t>(got.begin() + c * 6, got.begin() + c * 6 + 6), expect) << "channel " << c;
}

// fuzz_image found stb copying a zero-length IDAT chunk (before any data) into a NULL buffer
// (UBSan in CI's sanitizer pass): such a chunk holds no data, so the image is the same as without it.
TEST(FuzzRegressionImage, EmptyIdatBeforeTheDataDecodesAsWithout) {
  const std::string dir = ::testing::TempDir() + "oodkit_empty_idat_" + std::to_string(::getpid());
  fs::create_directories(dir);
  std::vector<uint8_t> px(3 * 4 * 5);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 13);
  oodkit::data::write_png(dir + "/plain.png", oodkit::Tensor::from_vector(px, {3, 4, 5}));
  std::string bytes = read_all(dir + "/plain.png");
  ASSERT_EQ(bytes.substr(12, 4), "IHDR");
  bytes.insert(8 + 25, std::string("\0\0\0\0IDAT\0\0\0\0", 12));  // after IHDR (8 + 4 + 4 + 13 + 4)
  std::ofstream(dir + "/empty_idat.png", std::ios::binary) << bytes;
  const oodkit::Tensor a = oodkit::data::decode_image(dir + "/plain.png");
  const oodkit::Tensor b = oodkit::data::decode_image(dir + "/empty_idat.png");
  EXPECT_EQ(a.to_vector<uint8_t>(), px);
  EXPECT_EQ(b.to_vector<uint8_t>(), px);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegression, ::testing::ValuesIn(oodkit::fuzz::target_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
