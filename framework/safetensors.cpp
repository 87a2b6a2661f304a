#include "framework/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace oodkit {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

// Errors name the file first: "safetensors file '<path>': <message>".
#define OODKIT_ST_CHECK(path, cond, ...) OODKIT_CHECK(cond, "safetensors file '", path, "': ", __VA_ARGS__)
#define OODKIT_ST_FAIL(path, ...) OODKIT_FAIL("safetensors file '", path, "': ", __VA_ARGS__)

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float (a normal float for every mant > 0).
    float f = float(mant) * 5.9604644775390625e-8f;
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);  // infinity (mant 0) or NaN (payload kept)
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float bfloat16_to_float(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;  // bfloat16 is the upper half of a float32
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

namespace {

using ojson = nlohmann::ordered_json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // 100 MB, as the reference implementation

// dtypes this reader understands: the file's name, element size, and the dtype it loads as.
enum class FileDType { F32, F64, U8, I32, I64, F16, BF16 };
struct FileDTypeInfo {
  FileDType id;
  const char* name;
  size_t size;
  DType loaded;
};
constexpr FileDTypeInfo kFileDTypes[] = {
    {FileDType::F32, "F32", 4, DType::F32}, {FileDType::F64, "F64", 8, DType::F64},
    {FileDType::U8, "U8", 1, DType::U8},    {FileDType::I32, "I32", 4, DType::I32},
    {FileDType::I64, "I64", 8, DType::I64}, {FileDType::F16, "F16", 2, DType::F32},
    {FileDType::BF16, "BF16", 2, DType::F32},
};
const FileDTypeInfo* find_file_dtype(const std::string& name) {
  for (const auto& d : kFileDTypes)
    if (name == d.name) return &d;
  return nullptr;
}
const char* file_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::U8: return "U8";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}

// Owns a file descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  // Closes now, reporting the result (close can report delayed write errors).
  int close() {
    const int r = ::close(fd);
    fd = -1;
    return r;
  }
};

std::string errno_text() { return std::strerror(errno); }

// Reads exactly `n` bytes at `offset`; short reads are errors naming the file.
void read_exact(const std::string& path, int fd, void* dst, size_t n, uint64_t offset) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    const size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    const ssize_t r = ::pread(fd, p, chunk, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    OODKIT_ST_CHECK(path, r >= 0, "read failed at byte ", offset, ": ", errno_text());
    OODKIT_ST_CHECK(path, r > 0, "unexpected end of file at byte ", offset);
    p += r;
    n -= size_t(r);
    offset += uint64_t(r);
  }
}

void write_all(const std::string& shown, int fd, const void* src, size_t n) {
  const char* p = static_cast<const char*>(src);
  while (n > 0) {
    const size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    const ssize_t w = ::write(fd, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    OODKIT_ST_CHECK(shown, w > 0, "write failed: ", w < 0 ? errno_text() : std::string("wrote nothing"));
    p += w;
    n -= size_t(w);
  }
}

struct Entry {
  std::string name;
  const FileDTypeInfo* dtype;
  Shape shape;
  uint64_t begin, end;
};

struct Header {
  std::vector<Entry> entries;  // header order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + N
};

// Deepest JSON nesting a header may have (a valid one has 3 levels). Deeper values are refused
// while parsing: printing one in an error message (dump() recurses) could overflow the stack.
constexpr int kMaxJsonDepth = 64;

// Parses JSON, rejecting duplicate keys in any object (nlohmann would keep the last one) and
// nesting deeper than kMaxJsonDepth.
ojson parse_json(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  ojson::parser_callback_t cb = [&](int depth, ojson::parse_event_t ev, ojson& parsed) {
    if (ev == ojson::parse_event_t::object_start || ev == ojson::parse_event_t::array_start)
      OODKIT_ST_CHECK(path, depth < kMaxJsonDepth, "invalid header: JSON nested deeper than ", kMaxJsonDepth,
                      " levels");
    if (ev == ojson::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (ev == ojson::parse_event_t::object_end) {
      keys.pop_back();
    } else if (ev == ojson::parse_event_t::key) {
      const std::string& k = parsed.get_ref<const std::string&>();
      OODKIT_ST_CHECK(path, !keys.empty() && keys.back().insert(k).second, "invalid header: duplicate key '", k,
                      "'");
    }
    return true;
  };
  try {
    return ojson::parse(text, cb);
  } catch (const ojson::exception& e) {
    OODKIT_ST_FAIL(path, "invalid JSON header: ", e.what());
  }
}

uint64_t checked_u64(const std::string& path, const std::string& where, const ojson& v) {
  OODKIT_ST_CHECK(path, v.is_number_unsigned(), where, " must be a non-negative integer, got ", v.dump());
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& path, const std::string& name, const ojson& v) {
  const std::string where = "tensor '" + name + "'";
  OODKIT_ST_CHECK(path, v.is_object(), where, ": entry must be a JSON object, got ", v.dump());
  for (const auto& kv : v.items()) {
    const std::string& k = kv.key();
    OODKIT_ST_CHECK(path, k == "dtype" || k == "shape" || k == "data_offsets", where, ": unexpected field '", k,
                    "'");
  }
  OODKIT_ST_CHECK(path, v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), where,
                  ": entry needs the fields 'dtype', 'shape' and 'data_offsets', got ", v.dump());
  Entry e;
  e.name = name;
  const ojson& dt = v.at("dtype");
  OODKIT_ST_CHECK(path, dt.is_string(), where, ": 'dtype' must be a string, got ", dt.dump());
  e.dtype = find_file_dtype(dt.get<std::string>());
  OODKIT_ST_CHECK(path, e.dtype != nullptr, where, " has unsupported dtype '", dt.get<std::string>(),
                  "' (supported: F32, F64, U8, I32, I64, F16, BF16)");
  const ojson& sh = v.at("shape");
  OODKIT_ST_CHECK(path, sh.is_array(), where, ": 'shape' must be an array, got ", sh.dump());
  uint64_t numel = 1;
  bool overflow = false;
  for (const ojson& d : sh) {
    const uint64_t n = checked_u64(path, where + ": every 'shape' entry", d);
    OODKIT_ST_CHECK(path, n <= uint64_t(INT64_MAX), where, ": dimension ", n, " is too large");
    e.shape.push_back(int64_t(n));
    overflow = overflow || __builtin_mul_overflow(numel, n, &numel);
  }
  uint64_t nbytes = 0;
  overflow = overflow || __builtin_mul_overflow(numel, uint64_t(e.dtype->size), &nbytes);
  OODKIT_ST_CHECK(path, !overflow, where, ": shape ", shape_str(e.shape), " is too large");
  const ojson& off = v.at("data_offsets");
  OODKIT_ST_CHECK(path, off.is_array() && off.size() == 2, where,
                  ": 'data_offsets' must be an array [begin, end], got ", off.dump());
  e.begin = checked_u64(path, where + ": 'data_offsets' begin", off[0]);
  e.end = checked_u64(path, where + ": 'data_offsets' end", off[1]);
  OODKIT_ST_CHECK(path, e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end, "] are out of order");
  OODKIT_ST_CHECK(path, e.end - e.begin == nbytes, where, ": data_offsets [", e.begin, ", ", e.end, "] span ",
                  e.end - e.begin, " bytes but ", e.dtype->name, shape_str(e.shape), " needs ", nbytes);
  return e;
}

// Reads and validates the header of an open file against the file's size.
Header read_header(const std::string& path, int fd) {
  struct stat st;
  OODKIT_ST_CHECK(path, ::fstat(fd, &st) == 0, "cannot stat: ", errno_text());
  OODKIT_ST_CHECK(path, S_ISREG(st.st_mode), "not a regular file");
  const uint64_t file_size = uint64_t(st.st_size);
  OODKIT_ST_CHECK(path, file_size >= 8, "file is ", file_size, " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  read_exact(path, fd, len_bytes, 8, 0);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | len_bytes[k];
  OODKIT_ST_CHECK(path, n <= kMaxHeaderBytes, "header length ", n, " exceeds the limit of ", kMaxHeaderBytes,
                  " bytes");
  OODKIT_ST_CHECK(path, n <= file_size - 8, "header length ", n, " runs past the end of the file (", file_size,
                  " bytes)");
  std::string text(size_t(n), '\0');
  read_exact(path, fd, text.data(), size_t(n), 8);
  const ojson j = parse_json(path, text);
  OODKIT_ST_CHECK(path, j.is_object(), "header must be a JSON object, got ", j.type_name());

  Header h;
  h.data_start = 8 + n;
  for (const auto& kv : j.items()) {
    if (kv.key() == "__metadata__") {
      const ojson& m = kv.value();
      OODKIT_ST_CHECK(path, m.is_object(), "'__metadata__' must be an object of strings, got ", m.dump());
      for (const auto& mkv : m.items()) {
        OODKIT_ST_CHECK(path, mkv.value().is_string(), "'__metadata__' value of '", mkv.key(),
                        "' must be a string, got ", mkv.value().dump());
        h.metadata[mkv.key()] = mkv.value().get<std::string>();
      }
    } else {
      h.entries.push_back(parse_entry(path, kv.key(), kv.value()));
    }
  }

  // The tensors must tile the data section exactly.
  const uint64_t data_size = file_size - h.data_start;
  std::vector<const Entry*> order;
  for (const Entry& e : h.entries) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    OODKIT_ST_CHECK(path, e->end <= data_size, "tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end,
                    "] lie outside the data section of ", data_size, " bytes");
    OODKIT_ST_CHECK(path, e->begin >= cursor, "tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end,
                    "] overlap those of tensor '", prev ? prev->name : "", "' (ending at ", cursor, ")");
    OODKIT_ST_CHECK(path, e->begin == cursor, "tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end,
                    "] leave bytes [", cursor, ", ", e->begin, ") of the data section unused");
    cursor = e->end;
    prev = e;
  }
  OODKIT_ST_CHECK(path, cursor == data_size, data_size - cursor, " bytes of trailing garbage after the last tensor",
                  " (data section is ", data_size, " bytes, tensors end at ", cursor, ")");
  return h;
}

int open_for_reading(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  OODKIT_ST_CHECK(path, fd >= 0, "cannot open for reading: ", errno_text());
  return fd;
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Removes the temporary file unless the write was committed.
struct TempFile {
  std::string path;
  bool committed = false;
  ~TempFile() {
    if (!committed) ::unlink(path.c_str());
  }
};

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  OODKIT_CHECK(!path.empty(), "save_safetensors: empty path");
  // Header (validated before any file is created).
  ojson header = ojson::object();
  if (!metadata.empty()) {
    ojson m = ojson::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    OODKIT_ST_CHECK(path, name != "__metadata__", "cannot save a tensor named '__metadata__' (reserved)");
    OODKIT_ST_CHECK(path, names.insert(name).second, "duplicate tensor name '", name, "'");
    OODKIT_ST_CHECK(path, t.defined(), "tensor '", name, "' is undefined");
    ojson e = ojson::object();
    e["dtype"] = file_dtype_name(t.dtype());
    e["shape"] = t.shape();
    e["data_offsets"] = {offset, offset + uint64_t(t.nbytes())};
    offset += t.nbytes();
    header[name] = std::move(e);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const ojson::exception& e) {
    OODKIT_ST_FAIL(path, "cannot encode the header (names and metadata must be valid UTF-8): ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t n = text.size();
  unsigned char len_bytes[8];
  for (int k = 0; k < 8; ++k) len_bytes[k] = static_cast<unsigned char>((n >> (8 * k)) & 0xffu);

  TempFile tmp{path + ".tmp." + std::to_string(::getpid())};
  int raw_fd;
  do {
    raw_fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (raw_fd < 0 && errno == EINTR);
  if (raw_fd < 0) {
    const std::string why = errno_text();
    tmp.committed = true;  // nothing was created
    OODKIT_ST_FAIL(path, "cannot create temporary file '", tmp.path, "': ", why);
  }
  Fd fd(raw_fd);
  write_all(path, fd.fd, len_bytes, 8);
  write_all(path, fd.fd, text.data(), text.size());
  for (const auto& [name, t] : tensors) {
    if (t.nbytes() == 0) continue;
    const Tensor host = t.cpu();
    write_all(path, fd.fd, host.raw_data(), host.nbytes());
  }
  OODKIT_ST_CHECK(path, ::fsync(fd.fd) == 0, "fsync of '", tmp.path, "' failed: ", errno_text());
  OODKIT_ST_CHECK(path, fd.close() == 0, "close of '", tmp.path, "' failed: ", errno_text());
  OODKIT_ST_CHECK(path, ::rename(tmp.path.c_str(), path.c_str()) == 0, "cannot rename '", tmp.path, "' to it: ",
                  errno_text());
  tmp.committed = true;
  // Make the rename durable; best effort (some filesystems cannot fsync a directory).
  const int dir = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  Fd fd(open_for_reading(path));
  Header h = read_header(path, fd.fd);
  NamedTensors out;
  out.reserve(h.entries.size());
  for (const Entry& e : h.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype->loaded, Device::cpu());
    const uint64_t nbytes = e.end - e.begin;
    if (e.dtype->id == FileDType::F16 || e.dtype->id == FileDType::BF16) {
      std::vector<uint16_t> raw(size_t(nbytes / 2));
      if (nbytes) read_exact(path, fd.fd, raw.data(), size_t(nbytes), h.data_start + e.begin);
      float* dst = t.data<float>();
      const bool half = e.dtype->id == FileDType::F16;
      for (size_t k = 0; k < raw.size(); ++k) dst[k] = half ? half_to_float(raw[k]) : bfloat16_to_float(raw[k]);
    } else if (nbytes) {
      read_exact(path, fd.fd, t.raw_data(), size_t(nbytes), h.data_start + e.begin);
    }
    out.emplace_back(e.name, std::move(t));
  }
  if (metadata) *metadata = std::move(h.metadata);
  return out;
}

std::vector<TensorInfo> list_safetensors(const std::string& path) {
  Fd fd(open_for_reading(path));
  const Header h = read_header(path, fd.fd);
  std::vector<TensorInfo> out;
  out.reserve(h.entries.size());
  for (const Entry& e : h.entries) out.push_back({e.name, e.dtype->loaded, e.shape, e.dtype->name});
  return out;
}

}  // namespace oodkit
