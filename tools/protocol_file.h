// protocol.json: the settings `oodkit eval --out DIR` writes to DIR/detectors/protocol.json so
// that `oodkit score` extracts the same features without refitting (tools/eval.cpp writes it).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace oodkit::tools {

struct SavedProtocol {
  // `oodkit eval --features FILE` runs: FILE, the feature width and the head's fingerprint
  // (run::head_fingerprint); then only num_classes, id, methods and thresholds are read besides.
  std::string features;          // "" for a run on images
  int64_t feature_dim = 0;
  std::string head_fingerprint;
  std::string arch;
  int64_t num_classes = 0;       // > 0
  std::string checkpoint;
  std::string id;                // the ID dataset name (selects the normalisation)
  int64_t image_size = 0;        // > 0
  std::string image_fit;         // "" when the file predates the key
  std::vector<double> ta_thresholds;
  double nap_eps = 0;
  std::vector<std::string> methods;
  // Each method's decision threshold (score >= t: ID), keeping 95% of the held-out ID images
  // (ood::id_threshold); empty for files written before thresholds were recorded.
  std::map<std::string, double> thresholds;
  // The input normalisation eval used (run/normalization.h); has_normalization false for files
  // written before it was recorded (score then uses the ID set's default).
  bool has_normalization = false;
  std::array<float, 3> input_mean{}, input_std{};
};

// Reads and validates `path`: a JSON object with every field above (image_fit, thresholds optional) of the
// right type. Every error is an oodkit::Error naming `path` (and the key, where there is one).
SavedProtocol read_saved_protocol(const std::string& path);

}  // namespace oodkit::tools
