#include "tools/study_report.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "data/image_folder.h"
#include "tools/common.h"
#include "tools/report.h"

namespace oodkit::tools {

namespace {

constexpr int64_t kMagnify = 3;  // each image pixel drawn as kMagnify x kMagnify
constexpr int64_t kGap = 2;      // white pixels between images

// uint8 [n, 3, S, S] -> one row [3, kMagnify S, n (kMagnify S + kGap) - kGap], nearest neighbour.
Tensor image_strip(const Tensor& images) {
  const int64_t n = images.size(0), s = images.size(2), t = s * kMagnify, w = n * (t + kGap) - kGap;
  Tensor out = Tensor::full({3, t, w}, 255.0, DType::U8);
  const uint8_t* in = images.data<uint8_t>();
  uint8_t* o = out.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < t; ++y)
        for (int64_t x = 0; x < t; ++x)
          o[(c * t + y) * w + i * (t + kGap) + x] = in[((i * 3 + c) * s + y / kMagnify) * s + x / kMagnify];
  return out;
}

}  // namespace

std::string study_data_section(const std::string& out_dir, const std::vector<StudySet>& sets, int64_t count) {
  std::filesystem::create_directories(out_dir + "/figures");
  std::string md = "\n## The data\n\n| set | used as | examples |\n|---|---|---|\n";
  int64_t image_size = 0;  // the first set's own size, then every set at it
  for (size_t i = 0; i < sets.size(); ++i) {
    const data::Dataset ds = load_named(sets[i].spec, image_size, count);
    if (i == 0) image_size = ds.images.size(2);
    const std::string file = "figures/examples_" + std::to_string(i) + ".png";
    data::write_png(out_dir + "/" + file, image_strip(ds.images));
    md += "| " + sets[i].spec + " | " + sets[i].role + " | ![first " + std::to_string(ds.size()) + " images of " +
          sets[i].spec + "](" + file + ") |\n";
  }
  return md;
}

std::string study_training_figure(const std::string& out_dir, int64_t classes) {
  std::filesystem::create_directories(out_dir + "/figures");
  if (!draw_figure("study_figures.py", {out_dir, "--classes", std::to_string(classes)}, "training figure " + out_dir + "/figures/training.png")) return "";
  return "\n![Training curves: the classifier's loss and accuracies per epoch, and the heatmap decoder's validation "
         "AUROC](figures/training.png)\n";
}

}  // namespace oodkit::tools
