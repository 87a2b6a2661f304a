#include <cstdio>
#include <fstream>

#include "data/cifar.h"
#include "data/registry.h"
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

// Synthetic CIFAR-10 records whose bytes say where they are: record r has label (3r + 1) mod 10
// and pixel byte k (0..3071: R plane, G plane, B plane, each row-major 32x32) holds
// 10 + (13 r + k) mod 246, never a label value (0..9), different from both neighbouring bytes and
// from the same byte of the neighbouring records. A loader that reads from the wrong offset (the
// label byte as a pixel, a 3072-byte stride, a record index restarted per file) cannot match.
uint8_t offset_label(int64_t r) { return uint8_t((3 * r + 1) % 10); }
uint8_t offset_pixel(int64_t r, int64_t k) { return uint8_t(10 + (13 * r + k) % 246); }

std::vector<uint8_t> offset_records(int64_t first, int64_t count) {
  std::vector<uint8_t> bytes;
  for (int64_t r = first; r < first + count; ++r) {
    bytes.push_back(offset_label(r));
    for (int64_t k = 0; k < 3072; ++k) bytes.push_back(offset_pixel(r, k));
  }
  return bytes;
}

TEST(Cifar, RecordOffsetsAcrossFiles) {
  // 13 records split 5 + 8 over two files: the second file continues at record 5.
  const data::Dataset ds = data::load_cifar(
      {write_file("off_a.bin", offset_records(0, 5)), write_file("off_b.bin", offset_records(5, 8))},
      data::CifarLayout::Cifar10);
  ASSERT_EQ(ds.images.shape(), (Shape{13, 3, 32, 32}));
  const std::vector<int64_t> labels = ds.labels.to_vector<int64_t>();
  const uint8_t* p = ds.images.data<uint8_t>();
  for (int64_t r = 0; r < 13; ++r) {
    EXPECT_EQ(labels[size_t(r)], int64_t(offset_label(r))) << "record " << r;
    // First (R 0,0), last of R (R 31,31), first of G, a middle one (G 15,16) and the last (B 31,31).
    for (int64_t k : {0, 1023, 1024, 1024 + 15 * 32 + 16, 3071})
      EXPECT_EQ(int(p[r * 3072 + k]), int(offset_pixel(r, k))) << "record " << r << ", pixel byte " << k;
  }
  // The formula by hand: record 0 starts 10, 11 and ends 10 + 3071 mod 246 = 129; record 6 (the
  // second of file 2) has label 9 and starts 10 + 78 = 88; record 12 ends 10 + (156 + 3071) mod 246 = 39.
  EXPECT_EQ(int(p[0]), 10);
  EXPECT_EQ(int(p[1]), 11);
  EXPECT_EQ(int(p[3071]), 129);
  EXPECT_EQ(labels[6], 9);
  EXPECT_EQ(int(p[6 * 3072]), 88);
  EXPECT_EQ(int(p[12 * 3072 + 3071]), 39);
}

// The five shared training batches, through the registry (file order data_batch_1..5) and one by
// one. Every literal below was computed from the raw bytes by an independent standard-library
// Python read: `python3 tools/cifar_literals.py ../shared/datasets/cifar10`.
TEST(Cifar, SharedTrainingBatchesContent) {
  const std::string root = oodkit::testing::shared_path("datasets/cifar10");
  const std::vector<std::vector<int>> batch_counts = {
      {1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981},
      {984, 1007, 1010, 995, 1010, 988, 1008, 1026, 987, 985},
      {994, 1042, 965, 997, 990, 1029, 978, 1015, 961, 1029},
      {1003, 963, 1041, 976, 1004, 1021, 1004, 981, 1024, 983},
      {1014, 1014, 952, 1016, 997, 1025, 980, 977, 1003, 1022}};
  // Per batch: the sums of all R, all G and all B bytes.
  const std::vector<std::vector<int64_t>> batch_sums = {{1288517123, 1262189222, 1167674233},
                                                        {1285078065, 1260167795, 1166795334},
                                                        {1277131803, 1253144219, 1159752734},
                                                        {1282407923, 1259541333, 1166509837},
                                                        {1282579290, 1260017611, 1169175481}};
  for (int b = 1; b <= 5; ++b) {
    const std::string path = oodkit::testing::shared_path("datasets/cifar10/data_batch_" + std::to_string(b) + ".bin");
    const data::Dataset ds = data::load_cifar({path}, data::CifarLayout::Cifar10);
    ASSERT_EQ(ds.size(), 10000) << path;
    std::vector<int> counts(10, 0);
    for (int64_t y : ds.labels.to_vector<int64_t>()) ++counts[size_t(y)];
    EXPECT_EQ(counts, batch_counts[size_t(b - 1)]) << path;
    std::vector<int64_t> sums(3, 0);
    const uint8_t* p = ds.images.data<uint8_t>();
    for (int64_t i = 0; i < ds.size(); ++i)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t k = 0; k < 1024; ++k) sums[size_t(c)] += p[i * 3072 + c * 1024 + k];
    EXPECT_EQ(sums, batch_sums[size_t(b - 1)]) << path;
  }

  data::LoadOptions o;
  o.split = "train";
  const data::Dataset all = data::load_dataset("cifar10", root, o);
  ASSERT_EQ(all.images.shape(), (Shape{50000, 3, 32, 32}));
  const std::vector<int64_t> labels = all.labels.to_vector<int64_t>();
  std::vector<int> counts(10, 0);
  for (int64_t y : labels) ++counts[size_t(y)];
  EXPECT_EQ(counts, std::vector<int>(10, 5000));
  const uint8_t* p = all.images.data<uint8_t>();
  // Labels and pixel sums of single images (global index over the five batches).
  const auto image_sum = [&](int64_t i) {
    int64_t s = 0;
    for (int64_t k = 0; k < 3072; ++k) s += p[i * 3072 + k];
    return s;
  };
  EXPECT_EQ(labels[0], 6);
  EXPECT_EQ(image_sum(0), 317790);
  EXPECT_EQ(labels[12345], 0);
  EXPECT_EQ(image_sum(12345), 675610);
  EXPECT_EQ(labels[31337], 3);
  EXPECT_EQ(image_sum(31337), 386876);
  EXPECT_EQ(labels[49999], 1);
  EXPECT_EQ(image_sum(49999), 405136);
  // Single pixels: image i, channel c, row y, column x.
  const auto px = [&](int64_t i, int64_t c, int64_t y, int64_t x) { return int(p[((i * 3 + c) * 32 + y) * 32 + x]); };
  EXPECT_EQ(px(0, 0, 0, 0), 59);
  EXPECT_EQ(px(0, 1, 15, 16), 253);
  EXPECT_EQ(px(0, 2, 31, 31), 72);
  EXPECT_EQ(px(12345, 2, 10, 28), 201);
  EXPECT_EQ(px(31337, 1, 0, 31), 85);
  EXPECT_EQ(px(49999, 0, 31, 0), 122);
  EXPECT_EQ(px(49999, 2, 16, 9), 96);
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
