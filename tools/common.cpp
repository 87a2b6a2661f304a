#include "tools/common.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "framework/safetensors.h"
#include "data/loader.h"
#include "data/registry.h"
#include "models/registry.h"
#include "tools/progress.h"

namespace oodkit::tools {

std::string shared_dir() {
  const char* env = std::getenv("OODKIT_SHARED_DIR");
  return env && *env ? std::string(env) : std::string("../shared");
}

std::string shipped_weights_path() { return shared_dir() + "/weights/resnet20_cifar10.safetensors"; }

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
  std::map<std::string, std::string> meta;
  const NamedTensors state = load_safetensors(checkpoint, &meta);
  LoadedClassifier out;
  if (!arch.empty()) {
    out.arch = arch;
  } else {
    const std::vector<std::string> known = models::classifier_names();
    OODKIT_CHECK(meta.count("arch") && std::find(known.begin(), known.end(), meta["arch"]) != known.end(), "'",
                 checkpoint, "' does not name an oodkit architecture in its metadata (arch = '",
                 meta.count("arch") ? meta["arch"] : "", "'); pass --arch");
    out.arch = meta["arch"];
  }
  out.num_classes = num_classes;
  if (out.num_classes <= 0 && meta.count("num_classes")) out.num_classes = std::stoll(meta["num_classes"]);
  if (out.num_classes <= 0) {
    // The head's bias (or weight) gives K.
    for (const auto& [name, t] : state)
      if ((name == "linear.bias" || name == "fc.bias") && t.ndim() == 1) out.num_classes = t.size(0);
  }
  OODKIT_CHECK(out.num_classes > 0, "'", checkpoint, "': cannot tell the number of classes; pass --num-classes");
  out.dataset = meta.count("dataset") ? meta["dataset"] : "";
  out.model = models::make_classifier(out.arch, out.num_classes, input_size);
  try {
    out.model->load_state_dict(state);
  } catch (const Error& e) {
    OODKIT_FAIL("'", checkpoint, "' does not fit architecture ", out.arch, ": ", e.what());
  }
  return out;
}

Tensor normalized_rows(const data::Dataset& ds, int64_t start, int64_t len, const data::Normalization& norm) {
  return data::normalize(ds.images.narrow(start, len), norm);
}

void write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    OODKIT_CHECK(f.good(), "cannot write '", path, "'");
    f << text;
    f.flush();
    if (!f.good()) {
      std::remove(tmp.c_str());
      OODKIT_FAIL("cannot write '", path, "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    OODKIT_FAIL("cannot write '", path, "' (rename failed)");
  }
}

std::string heatmap_decoder_path(const std::string& dir_or_file) {
  const std::string ext = ".safetensors";
  if (dir_or_file.size() > ext.size() && dir_or_file.compare(dir_or_file.size() - ext.size(), ext.size(), ext) == 0)
    return dir_or_file;
  return dir_or_file + "/decoder.safetensors";
}

data::Dataset load_named(const std::string& spec, int64_t image_size, int64_t limit) {
  data::LoadOptions lo;
  std::string name = spec;
  if (const size_t c = spec.find(':'); c != std::string::npos && spec.rfind("folder:", 0) != 0) {
    name = spec.substr(0, c);
    lo.split = spec.substr(c + 1);
  }
  lo.image_size = image_size;
  lo.fit = image_fit();
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

std::vector<int64_t> first_rows(int64_t n, int64_t limit) {
  const int64_t m = limit >= 0 ? std::min(n, limit) : n;
  std::vector<int64_t> r(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) r[size_t(i)] = i;
  return r;
}

ood::Features features_of(models::Classifier& model, const data::Dataset& ds, const std::vector<int64_t>& rows,
                          const data::Normalization& norm, Device device, int64_t batch, const std::string& label,
                          const ood::FeatureOptions& fo) {
  OODKIT_CHECK(!rows.empty(), label, ": no images");
  model.eval();
  const data::Dataset sub = data::take_rows(ds, rows);
  std::vector<ood::Features> parts;
  Progress progress(label, sub.size());
  for (int64_t b = 0; b < sub.size(); b += batch) {
    const int64_t len = std::min(batch, sub.size() - b);
    parts.push_back(ood::extract_features(model, normalized_rows(sub, b, len, norm).to(device), fo));
    progress.update(b + len);
  }
  progress.finish();
  return ood::concat_features(parts);
}

}  // namespace oodkit::tools
