#include "ood/state_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace oodkit::ood {

namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kFormat = "oodkit-detector-state";
constexpr int kMaxJsonDepth = 64;

#define OODKIT_STATE_CHECK(file, cond, ...) OODKIT_CHECK(cond, "detector state file '", file, "': ", __VA_ARGS__)
#define OODKIT_STATE_FAIL(file, ...) OODKIT_FAIL("detector state file '", file, "': ", __VA_ARGS__)

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A fresh 128-bit token (hex) identifying one save.
std::string new_save_id() {
  std::random_device rd;
  const uint64_t t = uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  std::mt19937_64 eng((uint64_t(rd()) << 32) ^ uint64_t(rd()) ^ t ^ (uint64_t(::getpid()) << 17));
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(eng()),
                static_cast<unsigned long long>(eng()));
  return buf;
}

// Writes `text` to `tmp` and fsyncs it; throws naming `shown` (the final path).
void write_text_file(const std::string& shown, const std::string& tmp, const std::string& text) {
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  OODKIT_STATE_CHECK(shown, fd >= 0, "cannot create temporary file '", tmp, "': ", std::strerror(errno));
  const char* p = text.data();
  size_t n = text.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = w < 0 ? std::strerror(errno) : "wrote nothing";
      ::close(fd);
      OODKIT_STATE_FAIL(shown, "write of '", tmp, "' failed: ", why);
    }
    p += w;
    n -= size_t(w);
  }
  if (::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    OODKIT_STATE_FAIL(shown, "fsync of '", tmp, "' failed: ", why);
  }
  OODKIT_STATE_CHECK(shown, ::close(fd) == 0, "close of '", tmp, "' failed: ", std::strerror(errno));
}

// Removes a temporary file unless committed.
struct TempFile {
  std::string path;
  bool committed = false;
  ~TempFile() {
    if (!committed) ::unlink(path.c_str());
  }
};

std::string json_type(const ojson& v) { return v.type_name(); }

}  // namespace

std::string state_tensors_path(const std::string& path) { return path + ".safetensors"; }
std::string state_json_path(const std::string& path) { return path + ".json"; }

// ------------------------------------------------------------------------------ writer

struct StateWriter::Impl {
  std::string kind;
  NamedTensors tensors;
  ojson params = ojson::object();
};

StateWriter::StateWriter(std::string kind) : impl_(std::make_shared<Impl>()) {
  OODKIT_CHECK(!kind.empty(), "StateWriter: empty detector kind");
  impl_->kind = std::move(kind);
}

StateWriter& StateWriter::tensor(const std::string& name, const Tensor& t) {
  OODKIT_CHECK(t.defined(), "StateWriter(", impl_->kind, "): tensor '", name, "' is undefined");
  for (const auto& [n, _] : impl_->tensors)
    OODKIT_CHECK(n != name, "StateWriter(", impl_->kind, "): duplicate tensor '", name, "'");
  impl_->tensors.emplace_back(name, t);
  return *this;
}

StateWriter& StateWriter::number(const std::string& key, double value) {
  OODKIT_CHECK(!impl_->params.contains(key), "StateWriter(", impl_->kind, "): duplicate key '", key, "'");
  OODKIT_CHECK(std::isfinite(value), "StateWriter(", impl_->kind, "): '", key, "' is not finite (", value, ")");
  impl_->params[key] = value;
  return *this;
}

StateWriter& StateWriter::integer(const std::string& key, int64_t value) {
  OODKIT_CHECK(!impl_->params.contains(key), "StateWriter(", impl_->kind, "): duplicate key '", key, "'");
  impl_->params[key] = value;
  return *this;
}

StateWriter& StateWriter::text(const std::string& key, const std::string& value) {
  OODKIT_CHECK(!impl_->params.contains(key), "StateWriter(", impl_->kind, "): duplicate key '", key, "'");
  impl_->params[key] = value;
  return *this;
}

void StateWriter::save(const std::string& path) const {
  OODKIT_CHECK(!path.empty(), "StateWriter(", impl_->kind, ")::save: empty path");
  const std::string st_path = state_tensors_path(path), js_path = state_json_path(path);
  const std::string save_id = new_save_id();

  ojson doc = ojson::object();
  doc["format"] = kFormat;
  doc["format_version"] = kStateFormatVersion;
  doc["kind"] = impl_->kind;
  doc["tensors"] = base_name(st_path);
  doc["save_id"] = save_id;
  doc["params"] = impl_->params;
  std::string text;
  try {
    text = doc.dump(2) + "\n";  // doubles are written with enough digits to round-trip exactly
  } catch (const ojson::exception& e) {
    OODKIT_STATE_FAIL(js_path, "cannot encode (keys and texts must be valid UTF-8): ", e.what());
  }

  // The .json goes to a temporary file first (so that an encoding or disk error leaves both
  // files untouched), then the .safetensors is saved atomically, then the .json is renamed.
  TempFile tmp{js_path + ".tmp." + std::to_string(::getpid())};
  write_text_file(js_path, tmp.path, text);
  save_safetensors(st_path, impl_->tensors,
                   {{"format", kFormat},
                    {"format_version", std::to_string(kStateFormatVersion)},
                    {"kind", impl_->kind},
                    {"save_id", save_id}});
  OODKIT_STATE_CHECK(js_path, ::rename(tmp.path.c_str(), js_path.c_str()) == 0, "cannot rename '", tmp.path,
                     "' to it: ", std::strerror(errno));
  tmp.committed = true;
  const int dir = ::open(parent_dir(js_path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {  // best effort: make the rename durable
    (void)::fsync(dir);
    ::close(dir);
  }
}

// ------------------------------------------------------------------------------ reader

struct StateReader::Impl {
  std::string json_path, tensors_path, kind;
  ojson params;
  std::map<std::string, Tensor> tensors;
  std::vector<std::string> order;
  mutable std::set<std::string> used;
};

StateReader::StateReader(const std::string& path, const std::string& kind) : impl_(std::make_shared<Impl>()) {
  Impl& s = *impl_;
  s.json_path = state_json_path(path);
  s.tensors_path = state_tensors_path(path);
  s.kind = kind;
  const std::string& jp = s.json_path;

  std::ifstream in(jp, std::ios::binary);
  OODKIT_STATE_CHECK(jp, in.good(), "cannot open for reading: ", std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  // Nesting deeper than kMaxJsonDepth is refused while parsing (a state has 2 levels): error
  // messages print values, and dump() of a deeply nested one could overflow the stack.
  const ojson::parser_callback_t depth_limit = [&](int depth, ojson::parse_event_t ev, ojson&) {
    if (ev == ojson::parse_event_t::object_start || ev == ojson::parse_event_t::array_start)
      OODKIT_STATE_CHECK(jp, depth < kMaxJsonDepth, "JSON nested deeper than ", kMaxJsonDepth, " levels");
    return true;
  };
  ojson doc;
  try {
    doc = ojson::parse(buf.str(), depth_limit);
  } catch (const ojson::exception& e) {
    OODKIT_STATE_FAIL(jp, "not valid JSON: ", e.what());
  }
  OODKIT_STATE_CHECK(jp, doc.is_object(), "expected a JSON object, got ", json_type(doc));
  auto field = [&](const char* key) -> const ojson& {
    auto it = doc.find(key);
    OODKIT_STATE_CHECK(jp, it != doc.end(), "missing key '", key, "'");
    return *it;
  };
  const ojson& format = field("format");
  OODKIT_STATE_CHECK(jp, format.is_string() && format.get<std::string>() == kFormat, "'format' is ", format.dump(),
                     ", expected \"", kFormat, "\"");
  const ojson& version = field("format_version");
  OODKIT_STATE_CHECK(jp, version.is_number_integer(), "'format_version' must be an integer, got ", version.dump());
  OODKIT_STATE_CHECK(jp, version.get<int64_t>() == kStateFormatVersion, "format_version ", version.get<int64_t>(),
                     " is not supported (this build reads version ", kStateFormatVersion, ")");
  const ojson& k = field("kind");
  OODKIT_STATE_CHECK(jp, k.is_string(), "'kind' must be a string, got ", k.dump());
  OODKIT_STATE_CHECK(jp, k.get<std::string>() == kind, "holds the state of a '", k.get<std::string>(),
                     "' detector, expected '", kind, "'");
  const ojson& save_id = field("save_id");
  OODKIT_STATE_CHECK(jp, save_id.is_string(), "'save_id' must be a string, got ", save_id.dump());
  const ojson& params = field("params");
  OODKIT_STATE_CHECK(jp, params.is_object(), "'params' must be an object, got ", json_type(params));
  s.params = params;

  // The tensors (load_safetensors validates the file and names it in every error).
  std::map<std::string, std::string> meta;
  NamedTensors loaded = load_safetensors(s.tensors_path, &meta);
  const std::string& tp = s.tensors_path;
  auto meta_is = [&](const char* key, const std::string& want) {
    auto it = meta.find(key);
    OODKIT_STATE_CHECK(tp, it != meta.end(), "metadata lacks '", key, "' (not an oodkit detector state)");
    OODKIT_STATE_CHECK(tp, it->second == want, "metadata '", key, "' is '", it->second, "', expected '", want,
                       "' (from '", jp, "')");
  };
  meta_is("format", kFormat);
  meta_is("format_version", std::to_string(kStateFormatVersion));
  meta_is("kind", kind);
  {
    auto it = meta.find("save_id");
    OODKIT_STATE_CHECK(tp, it != meta.end(), "metadata lacks 'save_id' (not an oodkit detector state)");
    OODKIT_STATE_CHECK(tp, it->second == save_id.get<std::string>(), "was not written by the same save as '", jp,
                       "' (save_id ", it->second, " vs ", save_id.get<std::string>(),
                       "): the pair is inconsistent, save the detector again");
  }
  for (auto& [name, t] : loaded) {
    s.order.push_back(name);
    s.tensors.emplace(name, std::move(t));
  }
}

const std::string& StateReader::json_path() const { return impl_->json_path; }
const std::string& StateReader::tensors_path() const { return impl_->tensors_path; }

Tensor StateReader::tensor(const std::string& name, DType dtype, const Shape& shape) const {
  const std::string& tp = impl_->tensors_path;
  auto it = impl_->tensors.find(name);
  OODKIT_STATE_CHECK(tp, it != impl_->tensors.end(), "missing tensor '", name, "' (", impl_->kind, " state)");
  const Tensor& t = it->second;
  OODKIT_STATE_CHECK(tp, t.dtype() == dtype, "tensor '", name, "' has dtype ", dtype_name(t.dtype()), ", expected ",
                     dtype_name(dtype));
  OODKIT_STATE_CHECK(tp, t.shape() == shape, "tensor '", name, "' has shape ", shape_str(t.shape()), ", expected ",
                     shape_str(shape));
  impl_->used.insert(name);
  return t;
}

double StateReader::number(const std::string& key) const {
  const std::string& jp = impl_->json_path;
  auto it = impl_->params.find(key);
  OODKIT_STATE_CHECK(jp, it != impl_->params.end(), "missing key 'params.", key, "'");
  OODKIT_STATE_CHECK(jp, it->is_number(), "'params.", key, "' must be a number, got ", it->dump());
  const double v = it->get<double>();
  OODKIT_STATE_CHECK(jp, std::isfinite(v), "'params.", key, "' is not finite");
  return v;
}

int64_t StateReader::integer(const std::string& key) const {
  const std::string& jp = impl_->json_path;
  auto it = impl_->params.find(key);
  OODKIT_STATE_CHECK(jp, it != impl_->params.end(), "missing key 'params.", key, "'");
  OODKIT_STATE_CHECK(jp, it->is_number_integer(), "'params.", key, "' must be an integer, got ", it->dump());
  return it->get<int64_t>();
}

std::string StateReader::text(const std::string& key) const {
  const std::string& jp = impl_->json_path;
  auto it = impl_->params.find(key);
  OODKIT_STATE_CHECK(jp, it != impl_->params.end(), "missing key 'params.", key, "'");
  OODKIT_STATE_CHECK(jp, it->is_string(), "'params.", key, "' must be a string, got ", it->dump());
  return it->get<std::string>();
}

bool StateReader::has(const std::string& key) const { return impl_->params.contains(key); }

void StateReader::expect_no_other_tensors() const {
  for (const std::string& name : impl_->order)
    OODKIT_STATE_CHECK(impl_->tensors_path, impl_->used.count(name), "unexpected tensor '", name, "' in a ",
                       impl_->kind, " state");
}

}  // namespace oodkit::ood
