#include "tools/protocol_file.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/error.h"

namespace oodkit::tools {

namespace {
using json = nlohmann::json;

// The value of `key`, which must exist; errors name the file and the key.
const json& field(const std::string& path, const json& doc, const char* key) {
  const auto it = doc.find(key);
  OODKIT_CHECK(it != doc.end(), "'", path, "': missing key '", key, "'");
  return *it;
}

std::string text(const std::string& path, const json& doc, const char* key) {
  const json& v = field(path, doc, key);
  OODKIT_CHECK(v.is_string(), "'", path, "': '", key, "' must be a string, got ", v.type_name());
  return v.get<std::string>();
}

int64_t positive_integer(const std::string& path, const json& doc, const char* key) {
  const json& v = field(path, doc, key);
  OODKIT_CHECK(v.is_number_integer() && v.get<int64_t>() > 0, "'", path, "': '", key,
               "' must be a positive integer, got ", v.type_name() == std::string("number") ? v.dump() : v.type_name());
  return v.get<int64_t>();
}

// methods, common to both kinds of runs.
void read_methods(const std::string& path, const json& doc, SavedProtocol& p) {
  const json& methods = field(path, doc, "methods");
  OODKIT_CHECK(methods.is_array(), "'", path, "': 'methods' must be an array of names, got ", methods.type_name());
  for (const json& v : methods) {
    OODKIT_CHECK(v.is_string(), "'", path, "': 'methods' must be an array of names, holds a ", v.type_name());
    p.methods.push_back(v.get<std::string>());
  }
}

// The fields of an eval run on images but the thresholds, in the order they are checked.
void read_image_fields(const std::string& path, const json& doc, SavedProtocol& p) {
  p.arch = text(path, doc, "arch");
  p.num_classes = positive_integer(path, doc, "num_classes");
  p.checkpoint = text(path, doc, "checkpoint");
  p.id = text(path, doc, "id");
  p.image_size = positive_integer(path, doc, "image_size");
  if (doc.contains("image_fit")) p.image_fit = text(path, doc, "image_fit");
  const json& ta = field(path, doc, "ta_thresholds");
  OODKIT_CHECK(ta.is_array(), "'", path, "': 'ta_thresholds' must be an array of numbers, got ", ta.type_name());
  for (const json& v : ta) {
    OODKIT_CHECK(v.is_number(), "'", path, "': 'ta_thresholds' must be an array of numbers, holds a ", v.type_name());
    p.ta_thresholds.push_back(v.get<double>());
  }
  const json& eps = field(path, doc, "nap_eps");
  OODKIT_CHECK(eps.is_number(), "'", path, "': 'nap_eps' must be a number, got ", eps.type_name());
  p.nap_eps = eps.get<double>();
  read_methods(path, doc, p);
  if (doc.contains("input_mean") || doc.contains("input_std")) {
    for (const char* key : {"input_mean", "input_std"}) {
      const json& v = field(path, doc, key);
      OODKIT_CHECK(v.is_array() && v.size() == 3, "'", path, "': '", key, "' must be an array of three numbers");
      for (size_t c = 0; c < 3; ++c) {
        OODKIT_CHECK(v[c].is_number(), "'", path, "': '", key, "' must be an array of three numbers");
        const double x = v[c].get<double>();
        OODKIT_CHECK(std::isfinite(x) && (key[6] != 's' || x > 0), "'", path, "': '", key, "' holds ", x);
        (key[6] == 's' ? p.input_std : p.input_mean)[c] = float(x);
      }
    }
    p.has_normalization = true;
  }
}

// thresholds (optional), common to both kinds of runs.
void read_thresholds(const std::string& path, const json& doc, SavedProtocol& p) {
  if (doc.contains("thresholds")) {
    const json& t = doc["thresholds"];
    OODKIT_CHECK(t.is_object(), "'", path, "': 'thresholds' must be an object (method -> number), got ", t.type_name());
    for (const auto& [m, v] : t.items()) {
      OODKIT_CHECK(v.is_number(), "'", path, "': threshold of '", m, "' must be a number, got ", v.type_name());
      p.thresholds[m] = v.get<double>();
    }
  }
}
}  // namespace

SavedProtocol read_saved_protocol(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OODKIT_CHECK(in.good(), "cannot open '", path, "' (pass --detectors DIR/detectors, the folder an `oodkit eval --out DIR` run writes)");
  std::stringstream buf;
  buf << in.rdbuf();
  // No exceptions from the parser: a discarded value means invalid JSON.
  const json doc = json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  OODKIT_CHECK(!doc.is_discarded(), "'", path, "' is not valid JSON");
  OODKIT_CHECK(doc.is_object(), "'", path, "' must hold a JSON object, got ", doc.type_name());
  SavedProtocol p;
  if (doc.contains("features")) {  // written by `oodkit eval --features`: no classifier, no images
    p.features = text(path, doc, "features");
    p.feature_dim = positive_integer(path, doc, "feature_dim");
    p.head_fingerprint = text(path, doc, "head_fingerprint");
    p.num_classes = positive_integer(path, doc, "num_classes");
    p.id = text(path, doc, "id");
    read_methods(path, doc, p);
  } else {
    read_image_fields(path, doc, p);
  }
  read_thresholds(path, doc, p);
  return p;
}

}  // namespace oodkit::tools
