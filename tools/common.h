// Helpers shared by the oodkit subcommands (tools/ is the only layer that wires files,
// datasets, models and detectors together).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_folder.h"
#include "models/classifier.h"
#include "ood/features.h"

namespace CLI {
class App;
}  // namespace CLI

namespace oodkit::tools {

// $OODKIT_SHARED_DIR if set, else "../shared" (the layout CI and the brief use).
std::string shared_dir();
// The shipped ResNet-20 CIFAR-10 weights under shared_dir().
std::string shipped_weights_path();

// Splits "a,b,c" (empty entries dropped).
std::vector<std::string> split_list(const std::string& text);
std::vector<double> parse_doubles(const std::string& text, const char* option);

struct LoadedClassifier {
  std::shared_ptr<models::Classifier> model;
  std::string arch;
  int64_t num_classes = 0;
  std::string dataset;  // the ID dataset recorded in the checkpoint ("" when unknown)
};
// Builds `arch` (or, when empty, the checkpoint's "arch" metadata, which must then name an
// oodkit architecture) and
// loads the safetensors state dict strictly. Errors name the file.
LoadedClassifier load_classifier(const std::string& checkpoint, const std::string& arch, int64_t num_classes,
                                 int input_size);

// "name[:split]" (or "folder:<path>") -> the dataset loaded at image_size x image_size, first
// `limit` images (-1: all); non-square folder images are fitted by image_fit().
data::Dataset load_named(const std::string& spec, int64_t image_size, int64_t limit);

// How load_named fits non-square folder images to the square size (data::ImageFit): a
// process-wide setting, short-crop (torchvision Resize + CenterCrop) unless set, e.g. by the
// option add_image_fit_option registers. Square images load the same either way.
data::ImageFit image_fit();
void set_image_fit(data::ImageFit fit);

// Registers `--resize short-crop|squash` on `cmd`; given, it calls set_image_fit.
void add_image_fit_option(CLI::App* cmd);

// Features (ood/features.h) of dataset rows, in batches of `batch` on `device`, with a progress
// line labelled `label` (classifier in eval mode; the options' defaults when fo is null).
ood::Features features_of(models::Classifier& model, const data::Dataset& ds, const std::vector<int64_t>& rows,
                          const data::Normalization& norm, Device device, int64_t batch, const std::string& label,
                          const ood::FeatureOptions& fo = {});

// Rows 0..n-1, or the first `limit` of them (limit >= 0).
std::vector<int64_t> first_rows(int64_t n, int64_t limit = -1);

// Normalised float images of rows [start, start+len) of a uint8 dataset.
Tensor normalized_rows(const data::Dataset& ds, int64_t start, int64_t len, const data::Normalization& norm);

// The decoder file of a `oodkit heatmap fit` run: <dir>/decoder.safetensors, or `dir_or_file`
// itself when it names a .safetensors file.
std::string heatmap_decoder_path(const std::string& dir_or_file);

// Writes `text` to `path` atomically (temp file + rename); errors name the path.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace oodkit::tools
