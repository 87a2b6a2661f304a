#include "framework/safetensors.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;

namespace {

// ---- file helpers ----

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string u64_le(uint64_t n) {
  std::string s(8, '\0');
  for (int k = 0; k < 8; ++k) s[size_t(k)] = char((n >> (8 * k)) & 0xff);
  return s;
}

// A safetensors file: length + header (unpadded unless the caller pads) + data.
std::string make_file(const std::string& header, const std::string& data) { return u64_le(header.size()) + header + data; }

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// A fresh, empty directory per test, removed (with its files) at the end.
class SafetensorsDir {
 public:
  SafetensorsDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name)
      if (c == '/') c = '_';
    path_ = ::testing::TempDir() + "oodkit_st_" + std::to_string(::getpid()) + "_" + name;
    std::system(("rm -rf '" + path_ + "'").c_str());
    ::mkdir(path_.c_str(), 0755);
  }
  ~SafetensorsDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Passes when f() throws an oodkit::Error whose message contains `path` and `needle`.
template <class F>
::testing::AssertionResult throws_naming(F f, const std::string& path, const std::string& needle) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.find(path) == std::string::npos)
      return ::testing::AssertionFailure() << "message does not name the file " << path << ": " << msg;
    if (msg.find(needle) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks '" << needle << "': " << msg;
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-oodkit exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw (expected '" << needle << "')";
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ha = a.cpu(), hb = b.cpu();
  return ha.nbytes() == 0 || std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// ---- round trips ----

class SafetensorsTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(SafetensorsTest);

TEST_P(SafetensorsTest, RoundTripEveryDtype) {
  SafetensorsDir dir;
  const std::string path = dir.file("all.safetensors");
  NamedTensors tensors = {
      {"zeta.weight", Tensor::randn({3, 4}, gen, DType::F32, device())},  // from the device under test
      {"alpha", Tensor::randn({2, 3}, gen, DType::F64)},
      {"bytes", Tensor::from_vector<uint8_t>({0, 1, 127, 128, 255}, {5})},
      {"ints", Tensor::from_vector<int32_t>({-2147483647 - 1, -1, 0, 2147483647}, {2, 2})},
      {"longs", Tensor::from_vector<int64_t>({INT64_MIN, -5, INT64_MAX}, {3})},
      {"scalar", Tensor::full({}, -1.5, DType::F32, device())},
      {"empty", Tensor::zeros({0}, DType::F32, device())},
      {"empty3d", Tensor::zeros({2, 0, 3}, DType::I64)},
      {"scalar_i64", Tensor::full({}, 42.0, DType::I64)},
      {"mid", Tensor::uniform({1, 1, 7}, -1, 1, gen, DType::F32)},
  };
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"note", "quotes \" and \\ and \xc3\xbc and newline\n"}, {"empty", ""}};
  save_safetensors(path, tensors, meta);

  std::map<std::string, std::string> meta_back;
  NamedTensors back = load_safetensors(path, &meta_back);
  EXPECT_EQ(meta_back, meta);
  ASSERT_EQ(back.size(), tensors.size());
  const std::vector<TensorInfo> infos = list_safetensors(path);
  ASSERT_EQ(infos.size(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    EXPECT_EQ(back[k].first, tensors[k].first);  // insertion order kept
    EXPECT_TRUE(back[k].second.device().is_cpu());
    EXPECT_TRUE(same_bytes(back[k].second, tensors[k].second)) << tensors[k].first;
    EXPECT_EQ(infos[k].name, tensors[k].first);
    EXPECT_EQ(infos[k].dtype, tensors[k].second.dtype());
    EXPECT_EQ(infos[k].shape, tensors[k].second.shape());
  }
  EXPECT_EQ(infos[2].stored_dtype, "U8");
  EXPECT_EQ(back[0].second.shape(), (Shape{3, 4}));
  EXPECT_EQ(back[5].second.ndim(), 0);
  // Header length is a multiple of 8 and the file holds nothing else.
  const std::string bytes = read_file(path);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | uint8_t(bytes[size_t(k)]);
  EXPECT_EQ(n % 8, 0u);
  size_t data = 0;
  for (const auto& kv : tensors) data += kv.second.nbytes();
  EXPECT_EQ(bytes.size(), 8 + n + data);
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"all.safetensors"});  // no temp files left
}

TEST(Safetensors, NoTensorsNoMetadata) {
  SafetensorsDir dir;
  const std::string path = dir.file("empty.safetensors");
  save_safetensors(path, {});
  EXPECT_EQ(read_file(path), u64_le(8) + "{}      ");
  std::map<std::string, std::string> meta = {{"stale", "x"}};
  EXPECT_TRUE(load_safetensors(path, &meta).empty());
  EXPECT_TRUE(meta.empty());
}

// Exact bytes of a tiny file, written out by hand.
TEST(Safetensors, ExactByteLayout) {
  SafetensorsDir dir;
  const std::string path = dir.file("tiny.safetensors");
  save_safetensors(path, {{"w", Tensor::from_vector<float>({1.0f, -2.0f}, {2})},
                          {"i", Tensor::from_vector<uint8_t>({7}, {})}},
                   {{"format", "oodkit"}});
  const std::string header =
      "{\"__metadata__\":{\"format\":\"oodkit\"},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"i\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9]}}"
      "    ";  // 140 bytes of JSON padded to 144
  ASSERT_EQ(header.size(), 144u);
  const std::string want = std::string("\x90\x00\x00\x00\x00\x00\x00\x00", 8) + header +
                           std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x07", 9);
  const std::string got = read_file(path);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "got header: " << got.substr(8, std::min<size_t>(got.size(), 152) - 8);
}

// ---- half precision ----

TEST(Safetensors, HalfAndBFloat16LoadAsFloat32) {
  SafetensorsDir dir;
  const std::string path = dir.file("half.safetensors");
  const std::vector<uint16_t> h = {0x0000, 0x8000, 0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400,
                                   0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x3555, 0x8001};
  const std::vector<float> hv = {0.0f, -0.0f, 1.0f, -2.0f, std::ldexp(1.0f, -24), 1023 * std::ldexp(1.0f, -24),
                                 std::ldexp(1.0f, -14), 65504.0f, INFINITY, -INFINITY, NAN, 0.333251953125f,
                                 -std::ldexp(1.0f, -24)};
  const std::vector<uint16_t> b = {0x3F80, 0xC040, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x8000, 0x3EAB, 0x0080};
  const std::vector<float> bv = {1.0f, -3.0f, std::ldexp(1.0f, -133), INFINITY, -INFINITY, NAN, -0.0f,
                                 0.333984375f, std::ldexp(1.0f, -126)};
  std::string data(reinterpret_cast<const char*>(h.data()), h.size() * 2);
  data += std::string(reinterpret_cast<const char*>(b.data()), b.size() * 2);
  const std::string header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[13],\"data_offsets\":[0,26]},"
                             "\"b\":{\"dtype\":\"BF16\",\"shape\":[3,3],\"data_offsets\":[26,44]}}";
  write_file(path, make_file(header, data));
  const NamedTensors t = load_safetensors(path);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].second.dtype(), DType::F32);
  EXPECT_EQ(t[1].second.shape(), (Shape{3, 3}));
  const auto infos = list_safetensors(path);
  EXPECT_EQ(infos[0].stored_dtype, "F16");
  EXPECT_EQ(infos[1].stored_dtype, "BF16");
  EXPECT_EQ(infos[1].dtype, DType::F32);
  auto check = [](const std::vector<float>& got, const std::vector<float>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      if (std::isnan(want[k])) EXPECT_TRUE(std::isnan(got[k])) << k;
      else EXPECT_EQ(float_bits(got[k]), float_bits(want[k])) << k << ": " << got[k] << " vs " << want[k];
    }
  };
  check(t[0].second.to_vector<float>(), hv);
  check(t[1].second.to_vector<float>(), bv);
}

// Every one of the 65536 bit patterns against the textbook formula evaluated in double.
TEST(Safetensors, HalfConversionExhaustive) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const double s = (bits & 0x8000) ? -1.0 : 1.0;
    // binary16: 5 exponent bits (bias 15), 10 mantissa bits.
    {
      const int e = int((bits >> 10) & 0x1f), m = int(bits & 0x3ff);
      const float got = half_to_float(uint16_t(bits));
      if (e == 31) {
        if (m == 0) EXPECT_EQ(got, float(s * INFINITY)) << bits;
        else EXPECT_TRUE(std::isnan(got)) << bits;
      } else {
        const double want = e == 0 ? s * std::ldexp(double(m), -24) : s * std::ldexp(1.0 + m / 1024.0, e - 15);
        ASSERT_EQ(float_bits(got), float_bits(float(want))) << "half bits " << bits;
      }
    }
    // bfloat16: 8 exponent bits (bias 127), 7 mantissa bits.
    {
      const int e = int((bits >> 7) & 0xff), m = int(bits & 0x7f);
      const float got = bfloat16_to_float(uint16_t(bits));
      if (e == 255) {
        if (m == 0) EXPECT_EQ(got, float(s * INFINITY)) << bits;
        else EXPECT_TRUE(std::isnan(got)) << bits;
      } else {
        const double want = e == 0 ? s * std::ldexp(double(m), -133) : s * std::ldexp(1.0 + m / 128.0, e - 127);
        ASSERT_EQ(float_bits(got), float_bits(float(want))) << "bfloat16 bits " << bits;
      }
    }
  }
}

// ---- the shared ResNet-20 checkpoint ----

TEST(Safetensors, LoadsResNet20Checkpoint) {
  const std::string path = oodkit::testing::shared_path("weights/resnet20_cifar10.safetensors");
  const std::vector<TensorInfo> infos = list_safetensors(path);
  for (const TensorInfo& i : infos) std::cout << "  " << i.name << " " << i.stored_dtype << shape_str(i.shape) << "\n";
  EXPECT_EQ(infos.size(), 97u);
  std::map<std::string, std::string> meta;
  const NamedTensors t = load_safetensors(path, &meta);
  ASSERT_EQ(t.size(), infos.size());
  std::map<std::string, Shape> shapes;
  size_t bytes = 0;
  for (size_t k = 0; k < t.size(); ++k) {
    EXPECT_EQ(t[k].first, infos[k].name);
    EXPECT_EQ(t[k].second.shape(), infos[k].shape);
    EXPECT_EQ(t[k].second.dtype(), DType::F32);
    shapes[t[k].first] = t[k].second.shape();
    bytes += t[k].second.nbytes();
    for (float v : t[k].second.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << t[k].first;
  }
  EXPECT_EQ(shapes.size(), 97u);  // distinct names
  EXPECT_EQ(shapes["conv1.weight"], (Shape{16, 3, 3, 3}));
  EXPECT_EQ(shapes["linear.weight"], (Shape{10, 64}));
  EXPECT_EQ(t[0].first, "conv1.weight");  // header order, not sorted
  EXPECT_TRUE(meta.count("source")) << "metadata has no 'source'";
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_LT(bytes, size_t(st.st_size));
}

// ---- corrupt files ----

TEST(Safetensors, CorruptFilesThrowNamingTheFile) {
  SafetensorsDir dir;
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"a", Tensor::from_vector<float>({1, 2, 3}, {3})},
                          {"b", Tensor::from_vector<int64_t>({4, 5}, {2})}},
                   {{"k", "v"}});
  const std::string bytes = read_file(good);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | uint8_t(bytes[size_t(k)]);
  ASSERT_EQ(bytes.size(), 8 + n + 28);

  auto expect_bad = [&](const std::string& name, const std::string& content, const std::string& needle) {
    const std::string path = dir.file(name);
    write_file(path, content);
    EXPECT_TRUE(throws_naming([&] { load_safetensors(path); }, path, needle)) << name;
    EXPECT_TRUE(throws_naming([&] { list_safetensors(path); }, path, needle)) << name;
  };

  // Truncated at several points.
  expect_bad("trunc0", "", "shorter than the 8-byte");
  expect_bad("trunc5", bytes.substr(0, 5), "shorter than the 8-byte");
  expect_bad("trunc8", bytes.substr(0, 8), "runs past the end");
  expect_bad("trunc_header", bytes.substr(0, 8 + n / 2), "runs past the end");
  expect_bad("trunc_nodata", bytes.substr(0, 8 + n), "outside the data section");
  expect_bad("trunc_mid", bytes.substr(0, 8 + n + 13), "outside the data section");
  expect_bad("trunc_last", bytes.substr(0, bytes.size() - 1), "outside the data section");
  expect_bad("trailing", bytes + "xyz", "trailing garbage");

  const std::string t3 = std::string(12, '\1');  // data for one F32[3]
  auto one = [](const std::string& entry) { return "{\"x\":" + entry + "}"; };
  // Header length.
  expect_bad("huge_len", u64_le(uint64_t(1) << 40) + "{}", "exceeds the limit");
  expect_bad("over_limit", u64_le(100'000'001) + "{}", "exceeds the limit");
  expect_bad("past_end", u64_le(1000) + "{}", "runs past the end");
  // Bad JSON.
  expect_bad("bad_json", make_file("{\"x\": {", ""), "invalid JSON");
  expect_bad("bad_json2", make_file("{\"x\":1} trailing", ""), "invalid JSON");
  expect_bad("not_utf8", make_file("{\"\xff\":{}}", ""), "invalid JSON");
  expect_bad("empty_header", make_file("", ""), "invalid JSON");
  expect_bad("not_object", make_file("[1,2]", ""), "must be a JSON object");
  expect_bad("dup_key", make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                                  "\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
                                  t3),
             "duplicate key 'x'");
  // Missing and ill-typed fields.
  expect_bad("entry_not_object", make_file(one("[1]"), ""), "entry must be a JSON object");
  expect_bad("no_shape", make_file(one("{\"dtype\":\"F32\",\"data_offsets\":[0,12]}"), t3), "needs the fields");
  expect_bad("no_offsets", make_file(one("{\"dtype\":\"F32\",\"shape\":[3]}"), t3), "needs the fields");
  expect_bad("extra_field",
             make_file(one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12],\"x\":1}"), t3),
             "unexpected field 'x'");
  expect_bad("dtype_type", make_file(one("{\"dtype\":4,\"shape\":[3],\"data_offsets\":[0,12]}"), t3),
             "'dtype' must be a string");
  expect_bad("shape_type", make_file(one("{\"dtype\":\"F32\",\"shape\":\"3\",\"data_offsets\":[0,12]}"), t3),
             "'shape' must be an array");
  expect_bad("shape_neg", make_file(one("{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}"), t3),
             "non-negative integer");
  expect_bad("shape_float", make_file(one("{\"dtype\":\"F32\",\"shape\":[3.0],\"data_offsets\":[0,12]}"), t3),
             "non-negative integer");
  expect_bad("shape_overflow",
             make_file(one("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,12]}"), t3),
             "too large");
  expect_bad("offsets_len", make_file(one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12]}"), t3),
             "[begin, end]");
  expect_bad("offsets_neg", make_file(one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[-1,11]}"), t3),
             "non-negative integer");
  expect_bad("metadata_type", make_file("{\"__metadata__\":{\"k\":1}}", ""), "__metadata__");
  expect_bad("metadata_array", make_file("{\"__metadata__\":[]}", ""), "__metadata__");
  // Offsets.
  expect_bad("reversed", make_file(one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,0]}"), t3),
             "out of order");
  expect_bad("count", make_file(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}"), t3), "needs 8");
  expect_bad("outside", make_file(one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}"), t3),
             "outside the data section");
  expect_bad("overlap",
             make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                       "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                       t3),
             "overlap");
  expect_bad("hole",
             make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                       t3),
             "unused");
  // Unsupported dtypes name the tensor and the dtype.
  expect_bad("fp8", make_file(one("{\"dtype\":\"F8_E4M3\",\"shape\":[12],\"data_offsets\":[0,12]}"), t3),
             "tensor 'x' has unsupported dtype 'F8_E4M3'");
  expect_bad("bool", make_file(one("{\"dtype\":\"BOOL\",\"shape\":[12],\"data_offsets\":[0,12]}"), t3),
             "tensor 'x' has unsupported dtype 'BOOL'");

  // Out-of-order offsets across tensors are fine when they tile the data section.
  const std::string swapped = dir.file("swapped.safetensors");
  write_file(swapped, make_file("{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                                "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                t3));
  const NamedTensors sw = load_safetensors(swapped);
  ASSERT_EQ(sw.size(), 2u);
  EXPECT_EQ(sw[0].first, "y");
  EXPECT_EQ(sw[1].second.shape(), (Shape{2}));

  const std::string missing = dir.file("does_not_exist.safetensors");
  EXPECT_TRUE(throws_naming([&] { load_safetensors(missing); }, missing, "cannot open"));
  EXPECT_TRUE(throws_naming([&] { list_safetensors(dir.path()); }, dir.path(), ""));  // a directory
  // The good file still loads.
  EXPECT_EQ(load_safetensors(good).size(), 2u);
}

// ---- atomic writes ----

TEST(Safetensors, AtomicSaveAndOverwrite) {
  SafetensorsDir dir;
  const NamedTensors a = {{"a", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3})},
                          {"b", Tensor::from_vector<int32_t>({7}, {1})}};
  const NamedTensors b = {{"c", Tensor::from_vector<double>({-1.0}, {})}};

  // A path in a directory that does not exist: throws, creates nothing.
  const std::string nodir = dir.file("missing/x.safetensors");
  EXPECT_TRUE(throws_naming([&] { save_safetensors(nodir, a); }, nodir, "cannot create temporary file"));
  EXPECT_TRUE(dir_entries(dir.path()).empty());

  // Overwrite replaces the contents (with a smaller file).
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, a, {{"epoch", "1"}});
  save_safetensors(path, b);
  std::map<std::string, std::string> meta;
  const NamedTensors got = load_safetensors(path, &meta);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "c");
  EXPECT_TRUE(same_bytes(got[0].second, b[0].second));
  EXPECT_TRUE(meta.empty());
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"ckpt.safetensors"});

  // Failures leave the existing file untouched and no temporary file behind.
  const std::string before = read_file(path);
  EXPECT_TRUE(throws_naming([&] { save_safetensors(path, {{"x", a[0].second}, {"x", a[1].second}}); }, path,
                            "duplicate tensor name 'x'"));
  EXPECT_TRUE(throws_naming([&] { save_safetensors(path, {{"__metadata__", a[0].second}}); }, path, "reserved"));
  EXPECT_TRUE(throws_naming([&] { save_safetensors(path, {{"u", Tensor()}}); }, path, "undefined"));
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"ckpt.safetensors"});

  // The rename fails when the target is a directory: the temporary file is removed.
  const std::string target_dir = dir.file("adir");
  ASSERT_EQ(::mkdir(target_dir.c_str(), 0755), 0);
  EXPECT_TRUE(throws_naming([&] { save_safetensors(target_dir, a); }, target_dir, "cannot rename"));
  EXPECT_EQ(dir_entries(dir.path()), (std::vector<std::string>{"adir", "ckpt.safetensors"}));
  EXPECT_TRUE(dir_entries(target_dir).empty());
}

}  // namespace
