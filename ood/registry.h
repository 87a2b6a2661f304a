// The method registry: one named registration per detector or fusion (ood/registry.cpp). Adding a
// detector or a fusion means adding one entry there; make_detector, detector_names,
// all_method_names, `oodkit eval --help`, the protocol's choice of image-based methods, the feature
// columns extracted, --set validation and the README list (tested) all derive from it.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ood/detector.h"

namespace oodkit::ood {

// What a detector reads, for grouping in reports: the logits (MSP, Energy, ODIN, ...), the
// penultimate feature vector (with or without the last layer: KNN, ViM, ReAct, ...), the feature
// maps before pooling (NAP, FS, FS+TA), the image through the heatmap decoder, or a fusion of two.
enum class Family { Logit, Feature, FeatureMap, Heatmap, Fusion };
const char* family_name(Family f);  // "logit", "feature", "feature map", "heatmap", "fusion"

struct DetectorInfo {
  std::string name;
  Family family = Family::Feature;
  std::function<std::unique_ptr<Detector>()> make;  // unfitted, without tuning (make_detector adds it)
  bool uses_images = false;      // input perturbation: scores images (ImageContext), not features
  Params defaults;               // the official setting; empty: the grid's first
  Axes grid;                     // tuning grid (fs_ta: empty values = the extracted TA thresholds)
  FeatureNeeds needs;            // feature columns read (a fusion: its components')
  std::vector<std::string> components{};  // fusions: the two methods combined
  bool needs_decoder = false;    // heatmap and its fusions: only with a trained decoder (--heatmap)
};
const std::vector<DetectorInfo>& detector_registry();
const DetectorInfo& detector_info(const std::string& name);  // unknown name: error listing the known
bool is_registered(const std::string& name);

// A registered method, unfitted, with its registration's grid and defaults. "heatmap" comes
// without a decoder (HeatmapDetector::load, or `oodkit eval --heatmap DIR`). A fusion name of
// --fuse ("fuse_z(knn+nap)", ood/multi_fusion.h) is made from its spec (it is not registered).
std::unique_ptr<Detector> make_detector(const std::string& name);
// A detector or fusion saved with Detector::save (its kind is read from <path>.json; kind
// "fusion" is a Fusion, ood/fusion.h; kind "multi_fusion" a MultiFusion, ood/multi_fusion.h).
std::unique_ptr<Detector> load_detector(const std::string& path);
// The registered detectors that score by themselves: no fusions, no "heatmap".
std::vector<std::string> detector_names();
// All method names in registry order: detectors then fusions; with_heatmap adds "heatmap" and its fusions.
std::vector<std::string> all_method_names(bool with_heatmap = false);
// all_method_names(with_heatmap) as one line "msp, maxlogit, ..." (errors, --help).
std::string method_list(bool with_heatmap = true);

// Over methods and (recursively) their components; --fuse names count as their components
// ("fused" is not accepted: its candidates are the caller's to list):
FeatureNeeds feature_needs(const std::vector<std::string>& methods);
bool needs_images(const std::vector<std::string>& methods);
bool needs_decoder(const std::vector<std::string>& methods);

// --set overrides of the registered grids: detector -> key -> values. One value fixes the key
// (no tuning over it; it is also the default), a list is the key's grid.
using Settings = std::map<std::string, std::map<std::string, std::vector<double>>>;
// Parses "<method>.<key>=<v>[,<v>...]" entries; an unknown method or key, or a bad number, is an
// error naming the entry and listing the valid names.
Settings parse_settings(const std::vector<std::string>& entries);
// Applies the overrides for d.name() (if any) to d's grid and defaults.
void apply_settings(Detector& d, const Settings& settings);

}  // namespace oodkit::ood
