#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framework/dtype.h"

namespace oodkit::tools {

struct ScoreOptions {
  std::string detectors;    // the detectors/ folder written by `oodkit eval --out`
  std::string data;         // dataset name[:split] or folder:<path>
  int64_t limit = -1;
  std::string methods;      // "" = all saved
  std::vector<std::string> fuse;  // --fuse: columns fusing saved methods (ood/multi_fusion.h), equal weights
  std::string checkpoint;   // "" = the one recorded in protocol.json
  int64_t batch = 256;
  Device device = Device::cpu();
  bool tf32 = false;        // TF32 math in cuDNN/cuBLAS for the classifier (CUDA only)
  std::string out;          // CSV: index, then one column per method ("" = stdout)
  std::string features;     // --features FILE: score the set --data of a features file (detectors of `eval --features`)
  // "" or a .safetensors file: the extracted feature columns (float32 "logits" [N, K], "z" [N, D],
  // "nap", "nap_unsquared", "fs" [N] when the methods read them), int64 "labels" [N] and the
  // classifier head "head.weight" [K, D], "head.bias" [K]: the inputs the Python package
  // (docs/python.md) scores, so its scores can be compared with these.
  std::string features_out;
};

int run_score(const ScoreOptions& o);

}  // namespace oodkit::tools
