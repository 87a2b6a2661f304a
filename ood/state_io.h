// Saving and loading the fitted state of a post-hoc detector as a pair of files:
//   <path>.safetensors  the tensors (framework/safetensors.h), metadata {format, format_version,
//                       kind, save_id}
//   <path>.json         {"format": "oodkit-detector-state", "format_version": 1, "kind": "<detector>",
//                        "tensors": "<file name of the .safetensors>", "save_id": "<hex>",
//                        "params": {scalars, hyper-parameters, names}}
// Both files are written atomically (temporary file, fsync, rename): the .safetensors first,
// the .json last. save_id is a fresh random token written into both, so a pair that was not
// written by the same save (a crash between the two renames, files copied from two runs) is
// detected at load. Every load error names the offending file.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "framework/safetensors.h"
#include "framework/tensor.h"

namespace oodkit::ood {

constexpr int kStateFormatVersion = 1;

std::string state_tensors_path(const std::string& path);  // path + ".safetensors"
std::string state_json_path(const std::string& path);     // path + ".json"

// Collects a detector's state and writes it. Keys and tensor names must be unique.
class StateWriter {
 public:
  explicit StateWriter(std::string kind);
  StateWriter& tensor(const std::string& name, const Tensor& t);     // any device/dtype, stored as is
  StateWriter& number(const std::string& key, double value);         // must be finite
  StateWriter& integer(const std::string& key, int64_t value);
  StateWriter& text(const std::string& key, const std::string& value);
  // Writes <path>.safetensors and <path>.json (see above); throws oodkit::Error naming the file.
  void save(const std::string& path) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Reads and validates a state written by StateWriter. The constructor loads both files and
// checks the format, the version (== kStateFormatVersion), the kind (== `kind`) and that the
// two files belong together. Accessors throw oodkit::Error naming the file for a missing key
// or tensor, a wrong JSON type, or a tensor whose dtype or shape differs from the expected.
class StateReader {
 public:
  StateReader(const std::string& path, const std::string& kind);
  const std::string& json_path() const;
  const std::string& tensors_path() const;

  // The tensor `name` (CPU) with exactly `dtype` and `shape`.
  Tensor tensor(const std::string& name, DType dtype, const Shape& shape) const;
  double number(const std::string& key) const;    // a JSON number, finite
  int64_t integer(const std::string& key) const;  // a JSON integer
  std::string text(const std::string& key) const;
  bool has(const std::string& key) const;  // whether "params" holds `key`
  // Throws if the .safetensors holds tensors no accessor asked for (a state of another layout).
  void expect_no_other_tensors() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace oodkit::ood
