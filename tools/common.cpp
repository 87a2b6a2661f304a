#include "tools/common.h"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/safetensors.h"
#include "framework/torch_file.h"
#include "framework/zip_reader.h"
#include "data/loader.h"
#include "data/registry.h"
#include "framework/cuda_api.h"
#include "models/checkpoint_names.h"
#include "models/registry.h"
#include "run/progress.h"

namespace oodkit::tools {

std::string shared_dir() {
  const char* env = std::getenv("OODKIT_SHARED_DIR");
  return env && *env ? std::string(env) : std::string("../shared");
}

std::string shipped_weights_path() { return shared_dir() + "/weights/resnet20_cifar10.safetensors"; }

Device parse_device_option(const std::string& text) {
  Device d;
  try {
    d = Device::parse(text);
  } catch (const Error&) {
    OODKIT_FAIL("--device '", text, "': expected cpu, cuda or cuda:<index>");
  }
  if (d.is_cpu()) return d;
  OODKIT_CHECK(cuda_built(), "--device ", text, ": this oodkit was built without CUDA (OODKIT_CUDA=OFF or no "
               "toolkit found); use --device cpu, or rebuild with CUDA");
  const int n = cuda_device_count();
  OODKIT_CHECK(n > 0, "--device ", text, ": no CUDA device found (no GPU or no driver; `oodkit info` lists the "
               "devices); use --device cpu");
  OODKIT_CHECK(d.index < n, "--device ", text, ": there ", n == 1 ? "is" : "are", " only ", n, " CUDA device",
               n == 1 ? "" : "s", " (cuda:0", n > 1 ? "..cuda:" + std::to_string(n - 1) : "", ")");
  return d;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<double> parse_doubles(const std::string& text, const char* option) {
  std::vector<double> out;
  for (const std::string& s : split_list(text)) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    OODKIT_CHECK(end && *end == '\0', option, ": '", s, "' is not a number");
    out.push_back(v);
  }
  return out;
}

LoadedClassifier load_classifier(const std::string& checkpoint, const std::string& arch, int64_t num_classes,
                                 int input_size) {
  std::error_code ec;
  OODKIT_CHECK(std::filesystem::is_regular_file(checkpoint, ec), "checkpoint '", checkpoint,
               "' does not exist or is not a file; pass --checkpoint <model.safetensors or a torch.save .pt/.pth>",
               checkpoint == shipped_weights_path() ? " (or set OODKIT_SHARED_DIR to the folder holding "
                                                      "weights/resnet20_cifar10.safetensors)"
                                                    : "");
  std::map<std::string, std::string> meta;
  // A PyTorch checkpoint (torch.save's ZIP archive or legacy file, told by its magic, whatever its
  // extension) holds a state dict and no oodkit metadata.
  const bool from_torch = is_torch_file(checkpoint);
  const NamedTensors state = from_torch ? load_torch_file(checkpoint) : load_safetensors(checkpoint, &meta);
  LoadedClassifier out;
  if (!arch.empty()) {
    out.arch = arch;
  } else {
    const std::vector<std::string> known = models::classifier_names();
    OODKIT_CHECK(!from_torch, "'", checkpoint, "' is a PyTorch checkpoint, which records no oodkit architecture; "
                 "pass --arch");
    OODKIT_CHECK(meta.count("arch") && std::find(known.begin(), known.end(), meta["arch"]) != known.end(), "'",
                 checkpoint, "' does not name an oodkit architecture in its metadata (arch = '",
                 meta.count("arch") ? meta["arch"] : "", "'); pass --arch");
    out.arch = meta["arch"];
  }
  // PyTorch's names for this architecture (torchvision ResNets, 'module.' prefixes) -> oodkit's.
  const models::MappedCheckpoint mapped = models::map_checkpoint_names(state, out.arch);
  std::string mapping_note;
  for (const std::string& n : mapped.notes) mapping_note += (mapping_note.empty() ? "" : "; ") + n;
  out.arch = mapped.arch;
  out.num_classes = num_classes;
  if (out.num_classes <= 0 && meta.count("num_classes")) out.num_classes = std::stoll(meta["num_classes"]);
  if (out.num_classes <= 0) {
    // The head's bias (or weight) gives K.
    for (const auto& [name, t] : mapped.state)
      if ((name == "linear.bias" || name == "fc.bias") && t.ndim() == 1) out.num_classes = t.size(0);
  }
  OODKIT_CHECK(out.num_classes > 0, "'", checkpoint, "': cannot tell the number of classes; pass --num-classes");
  out.dataset = meta.count("dataset") ? meta["dataset"] : "";
  out.metadata = meta;
  for (const auto& [name, t] : state) {
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64) continue;
    const Tensor v = t.to(DType::F64);
    const double* p = v.data<double>();
    int64_t bad = 0;
    for (int64_t i = 0, n = v.numel(); i < n; ++i) bad += !std::isfinite(p[i]);
    OODKIT_CHECK(bad == 0, "'", checkpoint, "': tensor '", name, "' holds ", bad, " NaN/Inf value",
                 bad == 1 ? "" : "s", " of ", v.numel(), " (a diverged or damaged checkpoint)");
  }
  out.model = models::make_classifier(out.arch, out.num_classes, input_size);
  try {
    out.model->load_state_dict(mapped.state);
    out.state = mapped.state;
  } catch (const Error& e) {
    // Names or shapes that differ, summarised by module; otherwise (a dtype) load_state_dict's words.
    const std::string diff = models::describe_mismatch(mapped.state, out.model->state_dict());
    OODKIT_FAIL("'", checkpoint, "' does not fit architecture ", out.arch,
                mapping_note.empty() ? "" : " (" + mapping_note + ")", ": ", diff.empty() ? e.what() : diff, ". ",
                models::architecture_hint());
  }
  if (!mapping_note.empty())  // once the load has succeeded (a refusal stays one line)
    std::fprintf(stderr, "oodkit: checkpoint '%s': %s (--arch %s)\n", checkpoint.c_str(), mapping_note.c_str(),
                 mapped.arch.c_str());
  return out;
}


std::string heatmap_decoder_path(const std::string& dir_or_file) {
  const std::string ext = ".safetensors";
  if (dir_or_file.size() > ext.size() && dir_or_file.compare(dir_or_file.size() - ext.size(), ext.size(), ext) == 0)
    return dir_or_file;
  return dir_or_file + "/decoder.safetensors";
}

data::Dataset load_named(const std::string& spec, int64_t image_size, int64_t limit, data::ResizeMode resize) {
  data::LoadOptions lo = base_load_options();
  lo.resize = resize;
  std::string name = spec;
  if (const size_t c = spec.find(':'); c != std::string::npos && spec.rfind("folder:", 0) != 0) {
    name = spec.substr(0, c);
    lo.split = spec.substr(c + 1);
  }
  lo.image_size = image_size;
  lo.limit = limit;
  return data::load_dataset(name, "", lo);
}

namespace {
data::ImageFit& image_fit_setting() {
  static data::ImageFit fit = data::ImageFit::ShortSideCrop;
  return fit;
}
}  // namespace

data::ImageFit image_fit() { return image_fit_setting(); }
void set_image_fit(data::ImageFit fit) { image_fit_setting() = fit; }

void add_image_fit_option(CLI::App* cmd) {
  cmd->add_option_function<std::string>(
         "--resize", [](const std::string& v) { set_image_fit(data::parse_image_fit(v)); },
         "how non-square folder images become square: short-crop (shorter side to the size, then the "
         "centre square, as torchvision Resize + CenterCrop) or squash (both sides to the size); "
         "square images load the same either way")
      ->check(CLI::IsMember({"short-crop", "squash"}))
      ->default_str("short-crop");
}

namespace {
bool& skip_unreadable_setting() {
  static bool on = false;
  return on;
}
// Files note_skipped() recorded: (set, path, reason).
std::vector<std::array<std::string, 3>>& skipped_files() {
  static std::vector<std::array<std::string, 3>> files;
  return files;
}
}  // namespace

bool skip_unreadable() { return skip_unreadable_setting(); }
void set_skip_unreadable(bool on) { skip_unreadable_setting() = on; }

void add_skip_unreadable_option(CLI::App* cmd) {
  cmd->add_flag_callback("--skip-unreadable", [] { set_skip_unreadable(true); },
                         "leave out image files that cannot be read or decoded (counted on stderr, listed in the "
                         "output) instead of stopping");
}

data::LoadOptions base_load_options() {
  data::LoadOptions lo;
  lo.fit = image_fit();
  lo.skip_unreadable = skip_unreadable();
  return lo;
}

void note_skipped(const std::string& command, const data::Dataset& ds, const std::string& spec) {
  if (ds.skipped.empty()) return;
  std::fprintf(stderr, "oodkit %s: skipped %zu unreadable image file%s of '%s' (the first: '%s')\n", command.c_str(),
               ds.skipped.size(), ds.skipped.size() == 1 ? "" : "s", spec.c_str(), ds.skipped[0].path.c_str());
  for (const data::Dataset::Skipped& f : ds.skipped) skipped_files().push_back({spec, f.path, f.reason});
}

std::string skipped_report() {
  std::string out;
  for (const auto& [set, path, reason] : skipped_files()) out += set + "\t" + path + "\t" + reason + "\n";
  return out;
}

void write_skipped_list(const std::string& command, const std::string& path) {
  const std::string report = skipped_report();
  if (report.empty()) {
    if (!path.empty()) std::remove(path.c_str());  // an earlier run's list would describe other files
    return;
  }
  const size_t n = skipped_files().size();
  if (path.empty()) {
    std::fprintf(stderr, "oodkit %s: the %zu skipped file%s (set, file, reason):\n%s", command.c_str(), n,
                 n == 1 ? "" : "s", report.c_str());
    return;
  }
  write_text_file(path, report);
  std::fprintf(stderr, "oodkit %s: the %zu skipped file%s listed in %s\n", command.c_str(), n,
               n == 1 ? " is" : "s are", path.c_str());
}


}  // namespace oodkit::tools
