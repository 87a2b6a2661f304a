#include <zlib.h>

#include <fstream>
#include <numeric>

#include "data/idx.h"
#include "data/io.h"
#include "testing.h"

using namespace oodkit;

namespace {

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "oodkit_idx_" + name; }

std::string write_bytes(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = temp_path(name);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

// A hand-built IDX byte stream (independent of write_idx): header then values.
std::vector<uint8_t> idx_bytes(uint8_t code, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::vector<uint8_t> b = {0, 0, code, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), values.begin(), values.end());
  return b;
}

std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& raw) {
  const std::string path = temp_path("tmp.gz");
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, raw.data(), unsigned(raw.size()));
  gzclose(f);
  return data::read_file_bytes(path);
}

std::vector<uint8_t> iota_bytes(size_t n, int mul) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t((i * size_t(mul) + 3) % 251);
  return v;
}

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needles[0] << "'";
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

TEST(Idx, HandBuiltImagesAreReplicatedToThreeChannels) {
  // 2 images of 2x3: value of image i, row r, col c at byte i*6 + r*3 + c.
  const std::vector<uint8_t> values = iota_bytes(12, 17);
  const std::string path = write_bytes("hand.idx3", idx_bytes(0x08, {2, 2, 3}, values));
  const Tensor img = data::load_idx_images(path);
  ASSERT_EQ(img.shape(), (Shape{2, 3, 2, 3}));
  const uint8_t* p = img.data<uint8_t>();
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 6; ++k) EXPECT_EQ(p[(i * 3 + c) * 6 + k], values[size_t(i * 6 + k)]);
}

TEST(Idx, RoundTripPlainAndGzipGivesTheSameDataset) {
  data::IdxArray images{{5, 4, 7}, iota_bytes(5 * 4 * 7, 31)};
  data::IdxArray labels{{5}, {3, 0, 9, 9, 1}};
  for (bool gz : {false, true}) {
    const std::string ip = temp_path(gz ? "rt-images.gz" : "rt-images"), lp = temp_path(gz ? "rt-labels.gz" : "rt-labels");
    data::write_idx(ip, images, gz);
    data::write_idx(lp, labels, gz);
    EXPECT_EQ(data::is_gzip(data::read_file_bytes(ip)), gz);
    const data::IdxArray back = data::read_idx(ip);
    EXPECT_EQ(back.dims, images.dims);
    EXPECT_EQ(back.values, images.values);
    const data::Dataset ds = data::load_mnist_like(ip, lp, "mnist");
    EXPECT_EQ(ds.name, "mnist");
    EXPECT_EQ(ds.num_classes, 10);
    EXPECT_EQ(ds.class_names.size(), 10u);
    EXPECT_EQ(ds.labels.to_vector<int64_t>(), (std::vector<int64_t>{3, 0, 9, 9, 1}));
    ASSERT_EQ(ds.images.shape(), (Shape{5, 3, 4, 7}));
    EXPECT_EQ(ds.images.data<uint8_t>()[(4 * 3 + 2) * 28 + 27], images.values[4 * 28 + 27]);
  }
}

TEST(Idx, CorruptHeadersAndSizesNameTheFileAndProblem) {
  const std::vector<uint8_t> v = iota_bytes(2 * 2 * 2, 5);
  auto images = [](const std::string& p) { return [p] { data::load_idx_images(p); }; };
  std::string p = write_bytes("magic", [&] { auto b = idx_bytes(0x08, {2, 2, 2}, v); b[0] = 1; return b; }());
  expect_error(images(p), {p, "bad magic"});
  p = write_bytes("code", idx_bytes(0x07, {2, 2, 2}, v));
  expect_error(images(p), {p, "unknown data type code 7"});
  p = write_bytes("float", idx_bytes(0x0D, {2, 2, 2}, v));
  expect_error(images(p), {p, "float32"});
  p = write_bytes("ndim", idx_bytes(0x08, {8}, v));
  expect_error(images(p), {p, "1 dimension(s), expected 3"});
  EXPECT_EQ(data::read_idx(p, 1).dims, (std::vector<int64_t>{8}));  // a valid 1-d file
  p = write_bytes("ndim3", idx_bytes(0x08, {2, 2, 2}, v));
  expect_error([p] { data::load_idx_labels(p); }, {p, "3 dimension(s), expected 1"});
}

TEST(Idx, TruncationAndTrailingBytes) {
  const std::vector<uint8_t> v = iota_bytes(2 * 3 * 3, 5);
  std::vector<uint8_t> b = idx_bytes(0x08, {2, 3, 3}, v);
  b.pop_back();
  std::string p = write_bytes("trunc", b);
  expect_error([p] { data::load_idx_images(p); }, {p, "truncated", "18 values", "17 bytes"});
  b = idx_bytes(0x08, {2, 3, 3}, v);
  b.push_back(0);
  p = write_bytes("trailing", b);
  expect_error([p] { data::load_idx_images(p); }, {p, "1 trailing bytes"});
  b = idx_bytes(0x08, {2, 3, 3}, {});
  b.resize(9);
  p = write_bytes("header", b);
  expect_error([p] { data::load_idx_images(p); }, {p, "truncated inside its IDX header"});
  p = write_bytes("zero", idx_bytes(0x08, {2, 0, 3}, {}));
  expect_error([p] { data::load_idx_images(p); }, {p, "dimension 1 is 0"});
  p = write_bytes("short", {0, 0});
  expect_error([p] { data::load_idx_images(p); }, {p, "too short"});
  p = temp_path("does-not-exist");
  expect_error([p] { data::load_idx_images(p); }, {p, "cannot open"});
}

TEST(Idx, LabelsOutOfRangeAndCountMismatch) {
  const std::string lp = write_bytes("lab", idx_bytes(0x08, {3}, {1, 10, 2}));
  expect_error([lp] { data::load_idx_labels(lp); }, {lp, "label 1 is 10"});
  EXPECT_EQ(data::load_idx_labels(lp, 11).to_vector<int64_t>(), (std::vector<int64_t>{1, 10, 2}));
  const std::string ip = write_bytes("img4", idx_bytes(0x08, {4, 1, 1}, {1, 2, 3, 4}));
  const std::string lp3 = write_bytes("lab3", idx_bytes(0x08, {3}, {1, 2, 3}));
  expect_error([&] { data::load_mnist_like(ip, lp3, "x"); }, {ip, lp3, "4 images", "3 labels"});
}

TEST(Idx, GzipCorruptionNamesTheFile) {
  const std::vector<uint8_t> raw = idx_bytes(0x08, {4, 8, 8}, iota_bytes(256, 7));
  const std::vector<uint8_t> gz = gzip_bytes(raw);
  ASSERT_TRUE(data::is_gzip(gz));
  ASSERT_EQ(data::gunzip(gz, "x"), raw);

  std::vector<uint8_t> b(gz.begin(), gz.begin() + std::ptrdiff_t(gz.size() / 2));
  std::string p = write_bytes("trunc.gz", b);
  expect_error([p] { data::load_idx_images(p); }, {p, "truncated"});

  b = gz;
  b[b.size() - 6] ^= 0xFF;  // inside the CRC-32 trailer
  p = write_bytes("crc.gz", b);
  expect_error([p] { data::load_idx_images(p); }, {p, "not a valid gzip stream"});

  b = gz;
  b[3] = 0xE0;  // reserved header flag bits
  p = write_bytes("flags.gz", b);
  expect_error([p] { data::load_idx_images(p); }, {p, "not a valid gzip stream"});

  b = gz;
  b.push_back(0x42);
  p = write_bytes("garbage.gz", b);
  expect_error([p] { data::load_idx_images(p); }, {p, "trailing garbage"});

  // Two concatenated members (as `cat a.gz b.gz`) decompress to the concatenation.
  const std::vector<uint8_t> half1(raw.begin(), raw.begin() + 100), half2(raw.begin() + 100, raw.end());
  std::vector<uint8_t> two = gzip_bytes(half1);
  const std::vector<uint8_t> second = gzip_bytes(half2);
  two.insert(two.end(), second.begin(), second.end());
  p = write_bytes("two.gz", two);
  EXPECT_EQ(data::read_idx(p).values, data::read_idx(write_bytes("plain", raw)).values);
}

// A small .gz that expands far beyond what its IDX header declares (a "gzip bomb": 64 MiB of
// zeros compress to ~64 KiB) is refused after the declared size, not decompressed whole.
TEST(Idx, GzipLargerThanItsHeaderIsRefused) {
  std::vector<uint8_t> raw = idx_bytes(0x08, {4, 8, 8}, iota_bytes(256, 7));  // 16 + 256 bytes declared
  raw.resize(raw.size() + (size_t(64) << 20), 0);
  const std::vector<uint8_t> gz = gzip_bytes(raw);
  ASSERT_LT(gz.size(), size_t(1) << 20);
  const std::string p = write_bytes("bomb.gz", gz);
  expect_error([p] { data::read_idx(p); }, {p, "decompresses to more than 272 bytes"});

  // gunzip's bound directly: an error past max_bytes, or the prefix with prefix_only.
  const std::vector<uint8_t> small = idx_bytes(0x08, {4, 8, 8}, iota_bytes(256, 7));
  const std::vector<uint8_t> sgz = gzip_bytes(small);
  EXPECT_EQ(data::gunzip(sgz, "s", small.size()), small);  // exactly the limit is fine
  expect_error([&] { data::gunzip(sgz, "s.gz", small.size() - 1); }, {"s.gz", "decompresses to more than 271 bytes"});
  EXPECT_EQ(data::gunzip(sgz, "s", 20, /*prefix_only=*/true),
            std::vector<uint8_t>(small.begin(), small.begin() + 20));
}

// Label counts checked independently with a few lines of Python over the raw files.
TEST(Idx, SharedMnistFirst3000) {
  const std::string dir = oodkit::testing::shared_path("datasets/mnist");
  const data::Dataset ds = data::load_mnist_like(dir + "/t10k-first3000-images-idx3-ubyte",
                                                 dir + "/t10k-first3000-labels-idx1-ubyte", "mnist");
  ASSERT_EQ(ds.images.shape(), (Shape{3000, 3, 28, 28}));
  std::vector<int> counts(10, 0);
  for (int64_t y : ds.labels.to_vector<int64_t>()) ++counts[size_t(y)];
  EXPECT_EQ(counts, (std::vector<int>{271, 340, 313, 316, 318, 283, 272, 306, 286, 295}));
  const uint8_t* p = ds.images.data<uint8_t>();
  int64_t sum = 0;
  for (int k = 0; k < 784; ++k) sum += p[k];
  EXPECT_EQ(sum, 18454);  // first image, channel R
  for (int k = 0; k < 784; ++k) ASSERT_EQ(p[784 + k], p[k]);
}

TEST(Idx, SharedFashionMnistGzipped) {
  const std::string dir = oodkit::testing::shared_path("datasets/fashion-mnist");
  const data::Dataset ds =
      data::load_mnist_like(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", "fashion-mnist");
  ASSERT_EQ(ds.images.shape(), (Shape{10000, 3, 28, 28}));
  const std::vector<int64_t> y = ds.labels.to_vector<int64_t>();
  std::vector<int> counts(10, 0);
  for (int64_t v : y) ++counts[size_t(v)];
  EXPECT_EQ(counts, std::vector<int>(10, 1000));
  EXPECT_EQ(std::vector<int64_t>(y.begin(), y.begin() + 10), (std::vector<int64_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  EXPECT_EQ(ds.class_names[9], "Ankle boot");
  int64_t sum = 0;
  for (int k = 0; k < 784; ++k) sum += ds.images.data<uint8_t>()[k];
  EXPECT_EQ(sum, 33456);
}

}  // namespace
