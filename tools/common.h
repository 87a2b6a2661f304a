// Helpers shared by the oodkit subcommands (tools/ is the only layer that wires files,
// datasets, models and detectors together).
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_folder.h"
#include "data/registry.h"
#include "models/classifier.h"
#include "ood/features.h"
#include "run/extract.h"
#include "run/run_folder.h"

namespace CLI {
class App;
}  // namespace CLI

namespace oodkit::tools {

// $OODKIT_SHARED_DIR if set, else "../shared" (the layout CI and the brief use).
std::string shared_dir();
// The shipped ResNet-20 CIFAR-10 weights under shared_dir().
std::string shipped_weights_path();

// The value of a --device option ("cpu", "cuda", "cuda:<i>") checked against this build and
// machine before any work starts: a build without CUDA, no CUDA device, or an index beyond the
// devices found is an Error naming the option and the value (and suggesting --device cpu).
Device parse_device_option(const std::string& text);

// Splits "a,b,c" (empty entries dropped).
std::vector<std::string> split_list(const std::string& text);
std::vector<double> parse_doubles(const std::string& text, const char* option);

struct LoadedClassifier {
  std::shared_ptr<models::Classifier> model;
  std::string arch;
  int64_t num_classes = 0;
  std::string dataset;  // the ID dataset recorded in the checkpoint ("" when unknown)
  std::map<std::string, std::string> metadata;  // the checkpoint's (input_mean/input_std: run/normalization.h)
  NamedTensors state;  // the checkpoint's tensors under oodkit's names, in the file's order
};
// Builds `arch` (or, when empty, the checkpoint's "arch" metadata, which must then name an
// oodkit architecture) and loads the state dict strictly: a safetensors file, or a PyTorch
// checkpoint (torch.save's ZIP archive or legacy file, told by its magic, read by load_torch_file;
// it has no metadata, so `arch` must be given). PyTorch's names are mapped to oodkit's first
// (models/checkpoint_names.h: 'module.'/'model.' prefixes, torchvision ResNet names, the 7x7 stem
// picking <arch>_imagenet; what was done is printed on stderr in one line, and `arch` of the result
// is the architecture built). A checkpoint that still does not fit is an Error summarising the
// names and shapes that differ and listing the --arch choices. Errors name the file; a floating-point tensor
// holding NaN or Inf is an error naming the file, the tensor and the count (such weights would
// make every score NaN).
LoadedClassifier load_classifier(const std::string& checkpoint, const std::string& arch, int64_t num_classes,
                                 int input_size);

// "name[:split]" (or "folder:<path>") -> the dataset loaded at image_size x image_size, first
// `limit` images (-1: all); non-square folder images are fitted by image_fit(), unreadable ones
// handled by skip_unreadable() (see below).
data::Dataset load_named(const std::string& spec, int64_t image_size, int64_t limit,
                         data::ResizeMode resize = data::ResizeMode::Auto);

// --skip-unreadable (a process-wide setting, off unless set): image files that cannot be read or
// decoded are left out of image-folder datasets instead of ending the command. base_load_options()
// carries the setting (and image_fit()) for commands that call data::load_dataset themselves; every
// load that skipped files must be passed to note_skipped(), which prints one summary line on stderr
// ("oodkit <command>: skipped N unreadable image files of '<set>' (the first: '<path>')") and
// remembers the files. Without the flag an unreadable image stays an error naming the file
// (data::UnreadableImageError), to which main() adds the suggestion of the flag.
bool skip_unreadable();
void set_skip_unreadable(bool on);
void add_skip_unreadable_option(CLI::App* cmd);
data::LoadOptions base_load_options();
void note_skipped(const std::string& command, const data::Dataset& ds, const std::string& spec);
// Every file note_skipped() recorded, one "<set>\t<path>\t<reason>" line each ("" when none).
std::string skipped_report();
// When files were skipped: writes skipped_report() to `path` (atomically) and says so on stderr,
// or, with an empty path, prints the list on stderr. When no file was skipped it only removes a
// list an earlier run left at `path`.
void write_skipped_list(const std::string& command, const std::string& path);

// How load_named fits non-square folder images to the square size (data::ImageFit): a
// process-wide setting, short-crop (torchvision Resize + CenterCrop) unless set, e.g. by the
// option add_image_fit_option registers. Square images load the same either way.
data::ImageFit image_fit();
void set_image_fit(data::ImageFit fit);

// Registers `--resize short-crop|squash` on `cmd`; given, it calls set_image_fit.
void add_image_fit_option(CLI::App* cmd);

// Dataset rows -> features, rows 0..n-1 and normalised images: run/extract.h (one loop for all
// commands); the names are brought into tools:: for the command files.
using run::first_rows;
using run::normalized_rows;

// The decoder file of a `oodkit heatmap fit` run: <dir>/decoder.safetensors, or `dir_or_file`
// itself when it names a .safetensors file.
std::string heatmap_decoder_path(const std::string& dir_or_file);

// run/run_folder.h: mkdir -p naming the option, atomic text files, --resume's option check.
using run::make_output_dir;
using run::option_differences;
using run::write_text_file;

}  // namespace oodkit::tools
