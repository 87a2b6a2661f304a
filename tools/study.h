#pragma once
#include <cstdint>
#include <string>

#include "framework/dtype.h"

namespace oodkit::tools {

// `oodkit study`: train a classifier, evaluate every detector, write one report.
// The defaults are the embedded study: SmallCnn on the built-in synthetic shapes against the
// four built-in synthetic OOD kinds, no files needed, a few minutes on 2 CPU cores.
struct StudyOptions {
  std::string arch = "small_cnn";
  std::string id = "synthetic-id";
  std::string ood = "synthetic-ood-unseen-shapes,synthetic-ood-strokes,synthetic-ood-textures,synthetic-ood-noise";
  std::string val_ood = "synthetic-ood-strokes:val";
  int64_t train_limit = 8000;
  int epochs = 8;
  int64_t batch = 64;
  double lr = 0.05;
  std::string methods = "all";
  std::string tuning = "features";
  std::vector<std::string> set;  // --set, passed to eval (tools/eval.h)
  // The heatmap detector: a decoder trained for the classifier (0 epochs: none). OE images come
  // from the validation distribution's train split (disjoint from its validation images), 1/5 of
  // the ID training size.
  int heatmap_epochs = 8;
  double heatmap_width = 0.25;
  std::string oe = "synthetic-ood-strokes:train";
  uint64_t seed = 0;
  Device device = Device::cpu();
  std::string out_dir = "runs/study";
};

int run_study(const StudyOptions& o);

}  // namespace oodkit::tools
