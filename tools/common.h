// Helpers shared by the oodkit subcommands (tools/ is the only layer that wires files,
// datasets, models and detectors together).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/classifier.h"

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

// Normalised float images of rows [start, start+len) of a uint8 dataset.
Tensor normalized_rows(const data::Dataset& ds, int64_t start, int64_t len, const data::Normalization& norm);

// Writes `text` to `path` atomically (temp file + rename); errors name the path.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace oodkit::tools
