#pragma once
#include <cstdint>
#include <string>

#include "framework/dtype.h"

namespace oodkit::tools {

struct ScoreOptions {
  std::string detectors;    // the detectors/ folder written by `oodkit eval --out`
  std::string data;         // dataset name[:split] or folder:<path>
  int64_t limit = -1;
  std::string methods;      // "" = all saved
  std::string checkpoint;   // "" = the one recorded in protocol.json
  int64_t batch = 256;
  Device device = Device::cpu();
  bool tf32 = false;        // TF32 math in cuDNN/cuBLAS for the classifier (CUDA only)
  std::string out;          // CSV: index, then one column per method ("" = stdout)
  std::string features;     // --features FILE: score the set --data of a features file (detectors of `eval --features`)
};

int run_score(const ScoreOptions& o);

}  // namespace oodkit::tools
