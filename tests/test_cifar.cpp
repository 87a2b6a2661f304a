#include <cstdio>
#include <fstream>

#include "data/cifar.h"
#include "testing.h"

using namespace oodkit;

namespace {

std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

std::vector<uint8_t> record(std::vector<uint8_t> labels, uint8_t fill) {
  std::vector<uint8_t> r = labels;
  for (int i = 0; i < 3072; ++i) r.push_back(uint8_t(fill + i % 7));
  return r;
}

TEST(Cifar, ReadsAnyWholeNumberOfRecordsInChannelMajorLayout) {
  std::vector<uint8_t> bytes;
  for (uint8_t i = 0; i < 3; ++i) {
    auto r = record({uint8_t(i * 3)}, uint8_t(10 * i));
    bytes.insert(bytes.end(), r.begin(), r.end());
  }
  const data::Dataset ds = data::load_cifar({write_file("c10.bin", bytes)}, data::CifarLayout::Cifar10);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 6}));
  const uint8_t* p = ds.images.data<uint8_t>();
  // image 1, channel G (offset 1024), pixel (0, 5) = byte 1 + 1024 + 5 of record 1.
  EXPECT_EQ(p[3072 + 1024 + 5], uint8_t(10 + (1024 + 5) % 7));
}

TEST(Cifar, Cifar100PicksFineOrCoarseLabel) {
  const auto bytes = record({7, 93}, 0);
  const std::string path = write_file("c100.bin", bytes);
  EXPECT_EQ(data::load_cifar({path}, data::CifarLayout::Cifar100Fine).labels.to_vector<int64_t>()[0], 93);
  EXPECT_EQ(data::load_cifar({path}, data::CifarLayout::Cifar100Coarse).labels.to_vector<int64_t>()[0], 7);
}

TEST(Cifar, BadFilesNameTheFileAndProblem) {
  auto expect_error = [](const std::string& path, data::CifarLayout layout, const std::string& needle) {
    try {
      data::load_cifar({path}, layout);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(needle), std::string::npos) << m;
    }
  };
  auto r = record({1}, 0);
  r.pop_back();
  expect_error(write_file("trunc.bin", r), data::CifarLayout::Cifar10, "whole number");
  expect_error(write_file("label.bin", record({10}, 0)), data::CifarLayout::Cifar10, "label 10");
  expect_error(write_file("empty.bin", {}), data::CifarLayout::Cifar10, "empty");
  expect_error(::testing::TempDir() + "missing.bin", data::CifarLayout::Cifar10, "cannot open");
}

// The shared file is the first 1,000 official test images; their class counts (checked
// independently with a 3-line Python read) are not 100 each.
TEST(Cifar, SharedTestBatchHasTheFirst1000TestLabels) {
  const data::Dataset ds =
      data::load_cifar({oodkit::testing::shared_path("datasets/cifar10/test_batch.bin")}, data::CifarLayout::Cifar10);
  ASSERT_EQ(ds.size(), 1000);
  std::vector<int> counts(10, 0);
  for (int64_t y : ds.labels.to_vector<int64_t>()) ++counts[size_t(y)];
  EXPECT_EQ(counts, (std::vector<int>{103, 89, 100, 103, 90, 86, 112, 102, 106, 109}));
}

TEST(Normalize, MatchesFormula) {
  Tensor u = Tensor::from_vector<uint8_t>({0, 255, 128, 0, 255, 128, 0, 255, 128, 0, 255, 128}, {1, 3, 2, 2});
  const data::Normalization n{{0.5f, 0.25f, 0.f}, {0.5f, 0.25f, 2.f}};
  const std::vector<float> v = data::normalize(u, n).to_vector<float>();
  EXPECT_FLOAT_EQ(v[0], -1.f);                  // (0 - .5)/.5
  EXPECT_FLOAT_EQ(v[1], 1.f);                   // (1 - .5)/.5
  EXPECT_FLOAT_EQ(v[4 + 1], (128.f / 255.f - 0.25f) / 0.25f);  // channel 1 holds 255, 128, 0, 255
  EXPECT_FLOAT_EQ(v[4 + 2], -1.f);
  EXPECT_FLOAT_EQ(v[8 + 2], 0.5f);              // channel 2 holds 128, 0, 255, 128: (1 - 0)/2
  EXPECT_THROW(data::normalize(Tensor::zeros({1, 3, 2, 2}), n), Error);
}

}  // namespace
