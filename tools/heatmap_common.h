// Pieces shared by the `oodkit heatmap` subcommands (tools/heatmap*.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "ood/heatmap.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/heatmap.h"

namespace oodkit::tools {

// The classifier a decoder is trained for or used with, in eval mode on `device`.
struct ClassifierSetup {
  LoadedClassifier lc;
  std::string checkpoint;   // the file loaded
  std::string fingerprint;  // ood::module_fingerprint of its weights
  data::Normalization norm; // input normalisation: the checkpoint's metadata, else the ID set's default
  int64_t image_size = 32;
};
// checkpoint "" = the shipped ResNet-20 (arch resnet20); the ID set's test split gives the size.
ClassifierSetup setup_classifier(const std::string& checkpoint, const std::string& arch, const std::string& id,
                                 Device device);

// A trained decoder (fit folder or file) and its classifier (`checkpoint`, or the one the decoder
// records), checked to belong together.
struct HeatmapSetup {
  std::shared_ptr<ood::HeatmapModel> model;
  ClassifierSetup classifier;
  std::string decoder_path;
};
HeatmapSetup setup_heatmap(const std::string& heatmap, const std::string& checkpoint, Device device);

// Heatmap scores (higher = more ID) of a set's features, as host doubles.
std::vector<double> heatmap_scores(ood::HeatmapModel& model, const ood::Features& f);

// The `heatmap` subcommands (heatmap_fit.cpp, heatmap_view.cpp, heatmap_oe_size.cpp), each adding
// itself under the `heatmap` group that add_heatmap_command (command.h) creates.
void add_heatmap_fit_command(CLI::App& heatmap, CommandList& commands);
void add_heatmap_show_command(CLI::App& heatmap, CommandList& commands);
void add_heatmap_lighting_command(CLI::App& heatmap, CommandList& commands);
void add_heatmap_oe_size_command(CLI::App& heatmap, CommandList& commands);
// The options of `heatmap fit`, shared by `heatmap oe-size` (--device via add_device_option).
void add_heatmap_fit_options(CLI::App* c, HeatmapFitOptions& f, Command& command);

}  // namespace oodkit::tools
