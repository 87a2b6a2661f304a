// load_torch_file (framework/torch_file.h) on the torch.save fixtures of tests/fixtures/torch/
// (written by make_fixtures.py and make_legacy_fixtures.py there with PyTorch 2.15), ZIP and legacy
// layouts: every readable fixture against its .expected.safetensors twin bit for bit, the refusals
// (globals other than tensors and dicts, unsupported dtypes, TorchScript files) and damaged files
// (truncated, corrupted).
#include "framework/torch_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/safetensors.h"
#include "testing.h"

using namespace oodkit;

namespace {

std::string fixture(const std::string& name) { return std::string(OODKIT_SOURCE_DIR) + "/tests/fixtures/torch/" + name; }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "oodkit_torch_" + std::to_string(::getpid()) + "_" + name;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The message of the oodkit::Error that loading `path` throws ("" when it loads). An
// InternalError or any other exception fails the test.
std::string load_error(const std::string& path) {
  try {
    load_torch_file(path);
  } catch (const InternalError& e) {
    ADD_FAILURE() << "internal error for " << path << ": " << e.what();
    return e.what();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// `actual` equals `expected` name by name, in order, in dtype, shape and every byte.
void expect_same(const NamedTensors& actual, const NamedTensors& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t k = 0; k < actual.size(); ++k) {
    SCOPED_TRACE(expected[k].first);
    EXPECT_EQ(actual[k].first, expected[k].first);
    const Tensor& a = actual[k].second;
    const Tensor& e = expected[k].second;
    ASSERT_EQ(dtype_name(a.dtype()), std::string(dtype_name(e.dtype())));
    ASSERT_EQ(a.shape(), e.shape());
    EXPECT_FALSE(a.is_cuda());
    EXPECT_EQ(std::memcmp(a.raw_data(), e.raw_data(), a.nbytes()), 0) << "bytes differ";
  }
}

Tensor get(const NamedTensors& t, const std::string& name) {
  for (const auto& [n, v] : t)
    if (n == name) return v;
  ADD_FAILURE() << "no tensor '" << name << "'";
  return Tensor::zeros({1});
}

struct Twin {
  const char* file;
  const char* expected;
};

void PrintTo(const Twin& t, std::ostream* os) { *os << t.file; }

class TorchFileTwin : public ::testing::TestWithParam<Twin> {};

TEST_P(TorchFileTwin, ReadsExactlyWhatTorchSaved) {
  const Twin t = GetParam();
  const NamedTensors got = load_torch_file(fixture(t.file));
  std::map<std::string, std::string> meta;
  const NamedTensors sorted = load_safetensors(fixture(t.expected), &meta);
  ASSERT_FALSE(sorted.empty());
  // The twin's tensors are sorted by name; the metadata "order" gives the state dict's order.
  NamedTensors want;
  for (const std::string& name : nlohmann::json::parse(meta.at("order")).get<std::vector<std::string>>())
    want.emplace_back(name, get(sorted, name));
  expect_same(got, want);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, TorchFileTwin,
    ::testing::Values(Twin{"dtypes.pt", "dtypes.expected.safetensors"},
                      Twin{"protocol4.pt", "dtypes.expected.safetensors"},
                      Twin{"deflated.pt", "dtypes.expected.safetensors"},
                      Twin{"zip64.pt", "dtypes.expected.safetensors"},
                      Twin{"views.pt", "views.expected.safetensors"},
                      Twin{"module.pt", "module.expected.safetensors"},
                      Twin{"checkpoint.pt", "checkpoint.expected.safetensors"},
                      // The legacy layout (_use_new_zipfile_serialization=False): the same tensors.
                      Twin{"legacy.pt", "legacy.expected.safetensors"},
                      Twin{"legacy_dtypes.pt", "dtypes.expected.safetensors"},
                      Twin{"legacy_protocol4.pt", "dtypes.expected.safetensors"},
                      Twin{"legacy_views.pt", "views.expected.safetensors"},
                      Twin{"legacy_checkpoint.pt", "legacy_checkpoint.expected.safetensors"}),
    [](const ::testing::TestParamInfo<Twin>& info) {
      std::string n = info.param.file;
      return n.substr(0, n.find('.'));
    });

// A few values checked against literals, independently of the twins.
TEST(TorchFile, DtypesAndViewsByValue) {
  const NamedTensors d = load_torch_file(fixture("dtypes.pt"));
  const Tensor f16 = get(d, "f16");
  ASSERT_EQ(f16.dtype(), DType::F32);
  const std::vector<float> h = f16.to_vector<float>();
  EXPECT_EQ(h[0], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h[1], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(h[2]));
  EXPECT_TRUE(h[3] == 0.0f && std::signbit(h[3]));
  EXPECT_EQ(h[7], 5.9604644775390625e-8f);  // 6e-8 rounds to the smallest float16 subnormal, 2^-24
  EXPECT_EQ(h[9], 65504.0f);
  EXPECT_EQ(get(d, "bool").dtype(), DType::U8);
  EXPECT_EQ(get(d, "bool").to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 0, 1}));
  EXPECT_EQ(get(d, "i64").to_vector<int64_t>(),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max(),
                                  123456789012}));
  EXPECT_EQ(get(d, "i32").dtype(), DType::I32);
  EXPECT_EQ(get(d, "scalar").shape(), Shape{});
  EXPECT_EQ(get(d, "scalar").item(), 3.25);
  EXPECT_EQ(get(d, "empty").shape(), (Shape{0, 3}));

  const NamedTensors v = load_torch_file(fixture("views.pt"));
  // base = arange(24).reshape(4, 6): transpose[i][j] = 6 j + i; slice = base[1:3, 2:5].
  const std::vector<float> tr = get(v, "transpose").to_vector<float>();
  ASSERT_EQ(get(v, "transpose").shape(), (Shape{6, 4}));
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(tr[size_t(4 * i + j)], float(6 * j + i));
  EXPECT_EQ(get(v, "slice").to_vector<float>(), (std::vector<float>{8, 9, 10, 14, 15, 16}));
  EXPECT_EQ(get(v, "expanded").to_vector<float>(), (std::vector<float>{1.5f, 1.5f, 1.5f, -2, -2, -2}));
  // Two tensors on one storage: b = a[3:7], returned as two copies.
  const std::vector<float> a = get(v, "shared_a").to_vector<float>();
  const std::vector<float> b = get(v, "shared_b").to_vector<float>();
  ASSERT_EQ(a.size(), 10u);
  EXPECT_EQ(b, std::vector<float>(a.begin() + 3, a.begin() + 7));
  EXPECT_FALSE(get(v, "shared_a").same_storage(get(v, "shared_b")));
}

TEST(TorchFile, ModuleStateDictHasItsBatchNormCounter) {
  const NamedTensors m = load_torch_file(fixture("module.pt"));
  const Tensor n = get(m, "1.num_batches_tracked");
  EXPECT_EQ(n.dtype(), DType::I64);
  EXPECT_EQ(n.shape(), Shape{});
  EXPECT_EQ(n.item(), 1.0);  // one training step
  std::vector<std::string> names;
  for (const auto& [name, t] : m) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                             "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"}));
}

// A training script's checkpoint: only "state_dict" is read; the optimizer's int8 and complex
// tensors (dtypes oodkit refuses) are never touched, epoch/best_acc/arch are skipped.
TEST(TorchFile, CheckpointWrapperReadsOnlyTheStateDict) {
  const NamedTensors c = load_torch_file(fixture("checkpoint.pt"));
  ASSERT_EQ(c.size(), 7u);
  EXPECT_EQ(c.front().first, "0.weight");
}

// A pickle written by hand (fuzz/make_corpus.py, kept in tests/fixtures/fuzz/torch_file/): opcodes
// torch.save does not write (DICT, LIST, APPENDS, POP, DUP, LONG1, BINFLOAT, SHORT_BINBYTES, 4-byte
// memo ids) around three tensors, two of them views of one storage.
TEST(TorchFile, HandMadePickle) {
  const NamedTensors t =
      load_torch_file(std::string(OODKIT_SOURCE_DIR) + "/tests/fixtures/fuzz/torch_file/ok_handmade");
  ASSERT_EQ(t.size(), 3u);  // "lst", "d", "again" and "l" are not tensors
  EXPECT_EQ(t[0].first, "w");
  EXPECT_EQ(t[0].second.shape(), (Shape{2, 3}));
  EXPECT_EQ(t[0].second.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(t[1].first, "wt");  // offset 1, size [2, 2], stride [1, 3]
  EXPECT_EQ(t[1].second.to_vector<float>(), (std::vector<float>{1, 4, 2, 5}));
  EXPECT_EQ(t[2].first, "n");  // a 0-dim int64 at offset 1
  EXPECT_EQ(t[2].second.dtype(), DType::I64);
  EXPECT_EQ(t[2].second.shape(), Shape{});
  EXPECT_EQ(t[2].second.item(), 9.0);
}

// The payload of every malicious fixture: `touch /tmp/oodkit_torch_pwned`.
constexpr const char* kPwned = "/tmp/oodkit_torch_pwned";

struct Refusal {
  const char* file;
  const char* message;
};

void PrintTo(const Refusal& r, std::ostream* os) { *os << r.file; }

class TorchFileRefuses : public ::testing::TestWithParam<Refusal> {};

TEST_P(TorchFileRefuses, WithAnErrorNamingTheFileAndTheCause) {
  const Refusal r = GetParam();
  ::unlink(kPwned);
  const std::string path = fixture(r.file);
  const std::string err = load_error(path);
  EXPECT_NE(err.find("PyTorch file '" + path + "'"), std::string::npos) << err;
  EXPECT_NE(err.find(r.message), std::string::npos) << "error: " << err << "\nexpected to contain: " << r.message;
  EXPECT_FALSE(file_exists(kPwned)) << "loading " << r.file << " ran its payload";
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, TorchFileRefuses,
    ::testing::Values(
        Refusal{"malicious_system.pt", "refers to the global 'posix.system', which is not allowed"},
        Refusal{"malicious_eval.pt", "refers to the global 'builtins.eval', which is not allowed"},
        // Refused even where it sits in the part of the checkpoint that is not returned.
        Refusal{"malicious_nested.pt", "refers to the global 'commands.check_output', which is not allowed"},
        Refusal{"whole_model.pt", "refers to the global 'torch.nn.modules.linear.Linear', which is not allowed "
                                  "(a whole pickled model? save model.state_dict() instead)"},
        Refusal{"int8.pt", "tensor 'q' has dtype int8 (torch.CharStorage), which oodkit does not read"},
        // The same unpickler on the legacy layout's object pickle.
        Refusal{"legacy_malicious.pt", "the object pickle refers to the global 'posix.system', which is not allowed"},
        Refusal{"legacy_whole_model.pt", "the object pickle refers to the global 'torch.nn.modules.linear.Linear', "
                                         "which is not allowed (a whole pickled model?"},
        Refusal{"torchscript.pt", "a TorchScript archive (torch.jit.save)"},
        Refusal{"dtypes.expected.safetensors", "not a PyTorch checkpoint"},
        Refusal{"no_such_file.pt", "cannot open for reading"}),
    [](const ::testing::TestParamInfo<Refusal>& info) {
      std::string n = info.param.file;
      n = n.substr(0, n.find('.'));
      for (char& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

// Every prefix of a checkpoint is refused with an oodkit::Error naming the file.
class TorchFileTruncated : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchFileTruncated, IsRefused) {
  const std::string bytes = read_file(fixture(GetParam()));
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = temp_path("truncated.pt");
  for (size_t len = 0; len < bytes.size(); len += (len < 64 || len + 64 > bytes.size()) ? 1 : 37) {
    SCOPED_TRACE(len);
    write_file(path, bytes.substr(0, len));
    const std::string err = load_error(path);
    EXPECT_NE(err, "") << "a " << len << "-byte prefix loaded";
    EXPECT_NE(err.find(path), std::string::npos) << err;
  }
  ::unlink(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchFileTruncated, ::testing::Values("dtypes.pt", "legacy_dtypes.pt"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           return n.substr(0, n.find('.'));
                         });

// The legacy layout has no checksums: a flipped byte inside a storage's bytes or a string changes
// a value or a name unseen. Every flip is refused with an oodkit::Error naming the file or loads;
// never a crash, an internal error or another exception.
TEST(TorchFile, CorruptedLegacyBytesAreRefusedOrLoad) {
  const std::string bytes = read_file(fixture("legacy_views.pt"));
  const NamedTensors want = load_torch_file(fixture("legacy_views.pt"));
  const std::string path = temp_path("corrupt_legacy.pt");
  size_t refused = 0, loaded = 0;
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] = char(bad[at] ^ 0x5a);
    write_file(path, bad);
    NamedTensors got;
    try {
      got = load_torch_file(path);
    } catch (const InternalError& e) {
      ADD_FAILURE() << "byte " << at << ": internal error " << e.what();
      continue;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "byte " << at << ": " << e.what();
      ++refused;
      continue;
    }
    ++loaded;
    EXPECT_LE(got.size(), want.size()) << "byte " << at;
  }
  ::unlink(path.c_str());
  EXPECT_GT(refused, bytes.size() / 4);
  std::cout << "corrupted legacy_views.pt: " << refused << " of " << refused + loaded << " flips refused\n";
}

// Legacy damage the pickles alone do not show: specific messages.
TEST(TorchFile, DamagedLegacyFilesNameTheProblem) {
  const std::string bytes = read_file(fixture("legacy_views.pt"));
  const std::string path = temp_path("damaged_legacy.pt");
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string bad = bytes;
    const size_t at = bad.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) bad.replace(at, from.size(), to);
    write_file(path, bad);
    return load_error(path);
  };
  // The system information says big-endian (little_endian: NEWTRUE -> NEWFALSE).
  std::string err = with(std::string("little_endianq\x02\x88", 16), std::string("little_endianq\x02\x89", 16));
  EXPECT_NE(err.find("saved on a big-endian machine"), std::string::npos) << err;
  // The first storage's element count (right after the key list, a pickled list of str) plus one.
  const size_t keys_at = bytes.find(std::string("\x80\x02]q\x00(", 6));
  ASSERT_NE(keys_at, std::string::npos);
  const size_t count_at = bytes.find("e.", keys_at) + 2;
  ASSERT_LT(count_at + 8, bytes.size());
  const int n = bytes[count_at];
  ASSERT_GT(n, 0);
  {
    std::string bad = bytes;
    bad[count_at] = char(n + 1);
    write_file(path, bad);
    err = load_error(path);
    EXPECT_NE(err.find("holds " + std::to_string(n + 1) + " elements where the pickle says " + std::to_string(n)),
              std::string::npos)
        << err;
  }
  // A file cut inside the storages.
  write_file(path, bytes.substr(0, bytes.size() - 3));
  err = load_error(path);
  EXPECT_NE(err.find("runs past the end of the file (truncated?)"), std::string::npos) << err;
  // The magic number's last byte changed: not a checkpoint.
  {
    std::string bad = bytes;
    bad[13] = char(bad[13] ^ 1);
    write_file(path, bad);
    err = load_error(path);
    EXPECT_NE(err.find("not torch.save's legacy magic number"), std::string::npos) << err;
  }
  ::unlink(path.c_str());
}

// A flipped byte anywhere: an oodkit::Error naming the file, or (in bytes no reader needs, such as
// the alignment padding or the serialization id) the same tensors; never a crash or other exception.
TEST(TorchFile, CorruptedBytesAreRefusedOrHarmless) {
  const std::string bytes = read_file(fixture("views.pt"));
  const NamedTensors want = load_torch_file(fixture("views.pt"));
  const std::string path = temp_path("corrupt.pt");
  size_t refused = 0, loaded = 0;
  for (size_t at = 0; at < bytes.size(); at += 3) {  // every third byte: all regions, in a few seconds
    std::string bad = bytes;
    bad[at] = char(bad[at] ^ 0x5a);
    write_file(path, bad);
    NamedTensors got;
    try {
      got = load_torch_file(path);
    } catch (const InternalError& e) {
      ADD_FAILURE() << "byte " << at << ": internal error " << e.what();
      continue;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "byte " << at << ": " << e.what();
      ++refused;
      continue;
    }
    ++loaded;
    SCOPED_TRACE(at);
    expect_same(got, want);
  }
  ::unlink(path.c_str());
  EXPECT_GT(refused, bytes.size() / 12);
  std::cout << "corrupted views.pt: " << refused << " of " << refused + loaded << " flips refused, " << loaded
            << " harmless\n";
}

// Specific damage, specific messages.
TEST(TorchFile, DamagedArchivesNameTheProblem) {
  const std::string bytes = read_file(fixture("dtypes.pt"));
  const std::string path = temp_path("damaged.pt");
  // A byte of the first storage (found by its content, the first floats of "f32"): the CRC-32 check.
  {
    std::string bad = bytes;
    const Tensor f32 = load_safetensors(fixture("dtypes.expected.safetensors"))[0].second;
    const size_t at = bad.find(std::string(static_cast<const char*>(f32.raw_data()), 8));
    ASSERT_NE(at, std::string::npos);
    bad[at] = char(bad[at] ^ 1);
    write_file(path, bad);
    const std::string err = load_error(path);
    EXPECT_NE(err.find("entry 'dtypes/data/"), std::string::npos) << err;
    EXPECT_NE(err.find("fails its CRC-32 check"), std::string::npos) << err;
  }
  // The central directory's first signature.
  {
    std::string bad = bytes;
    const size_t cd = bad.find(std::string("PK\x01\x02", 4));
    ASSERT_NE(cd, std::string::npos);
    bad[cd + 2] = 9;
    write_file(path, bad);
    EXPECT_NE(load_error(path).find("central directory entry 0 is damaged"), std::string::npos) << load_error(path);
  }
  // The central directory offset pointing past the file: in the ZIP64 end record torch.save
  // writes, and in the classic end record of a ZIP that Python's zipfile wrote (deflated.pt).
  {
    std::string bad = bytes;
    const size_t end = bad.rfind(std::string("PK\x06\x06", 4));
    ASSERT_NE(end, std::string::npos);
    bad[end + 55] = char(0x7f);
    write_file(path, bad);
    EXPECT_NE(load_error(path).find("central directory ["), std::string::npos) << load_error(path);
    EXPECT_NE(load_error(path).find("lies outside the file"), std::string::npos) << load_error(path);
  }
  {
    std::string bad = read_file(fixture("deflated.pt"));
    ASSERT_EQ(bad.find(std::string("PK\x06\x06", 4)), std::string::npos);
    const size_t end = bad.rfind(std::string("PK\x05\x06", 4));
    ASSERT_NE(end, std::string::npos);
    bad[end + 19] = char(0x7f);
    write_file(path, bad);
    EXPECT_NE(load_error(path).find("lies outside the file"), std::string::npos) << load_error(path);
  }
  // A deflated entry cut short inside its stream (its compressed size shrunk in the directory).
  {
    std::string bad = read_file(fixture("deflated.pt"));
    const size_t cd = bad.find(std::string("PK\x01\x02", 4));
    ASSERT_NE(cd, std::string::npos);
    ASSERT_EQ(bad[cd + 10], 8);  // deflated
    uint32_t csize;  // data.pkl's compressed size
    std::memcpy(&csize, &bad[cd + 20], 4);
    ASSERT_GT(csize, 40u);
    csize -= 20;
    std::memcpy(&bad[cd + 20], &csize, 4);
    write_file(path, bad);
    const std::string err = load_error(path);
    EXPECT_NE(err.find("data.pkl"), std::string::npos) << err;
  }
  ::unlink(path.c_str());
}

}  // namespace
