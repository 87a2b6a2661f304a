#include "models/checkpoint_names.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "models/registry.h"

namespace oodkit::models {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

bool is_resnet_base(const std::string& arch) { return arch == "resnet18" || arch == "resnet34" || arch == "resnet50"; }
bool is_resnet_imagenet(const std::string& arch) {
  return arch == "resnet18_imagenet" || arch == "resnet34_imagenet" || arch == "resnet50_imagenet";
}

// Step 1: removes "module." / "model." while every name carries it (several times for
// "module.model.").
void strip_prefixes(NamedTensors* state, std::vector<std::string>* notes) {
  for (bool again = true; again && !state->empty();) {
    again = false;
    for (const std::string prefix : {"module.", "model."}) {
      const bool all = std::all_of(state->begin(), state->end(),
                                   [&](const auto& e) { return starts_with(e.first, prefix); });
      if (!all) continue;
      for (auto& e : *state) e.first = e.first.substr(prefix.size());
      notes->push_back("prefix '" + prefix + "' removed");
      again = true;
    }
  }
}

// torchvision's name for a tensor -> kuangliu's (oodkit's), or "" when `name` is not one of
// torchvision's own ("layer{s}.{b}.downsample.{0,1}.<t>", "fc.<t>").
std::string torchvision_to_oodkit(const std::string& name) {
  if (starts_with(name, "fc.")) return "linear." + name.substr(3);
  if (!starts_with(name, "layer")) return "";
  const size_t at = name.find(".downsample.");
  if (at == std::string::npos) return "";
  return name.substr(0, at) + ".shortcut." + name.substr(at + std::string(".downsample.").size());
}

// Step 2.
void map_torchvision(NamedTensors* state, std::vector<std::string>* notes) {
  std::unordered_set<std::string> present;
  for (const auto& e : *state) present.insert(e.first);
  int renamed = 0;
  for (auto& e : *state) {
    const std::string to = torchvision_to_oodkit(e.first);
    if (to.empty() || present.count(to)) continue;
    present.erase(e.first);
    present.insert(to);
    e.first = to;
    ++renamed;
  }
  if (renamed > 0)
    notes->push_back("torchvision names (" + std::to_string(renamed) + " renamed: downsample -> shortcut, fc -> linear)");
}

const Tensor* find(const NamedTensors& state, const std::string& name) {
  for (const auto& e : state)
    if (e.first == name) return &e.second;
  return nullptr;
}

bool is_7x7_stem(const NamedTensors& state) {
  const Tensor* w = find(state, "conv1.weight");
  return w && w->ndim() == 4 && w->size(1) == 3 && w->size(2) == 7 && w->size(3) == 7;
}

// "prefix.{a,b}" groups of `names` by module path (all but the last component), in first-seen
// order, at most `shown` groups and then " and N more".
std::string grouped(const std::vector<std::string>& names, size_t shown = 4) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> leaves;
  for (const std::string& n : names) {
    const size_t dot = n.rfind('.');
    const std::string path = dot == std::string::npos ? "" : n.substr(0, dot);
    const std::string leaf = dot == std::string::npos ? n : n.substr(dot + 1);
    if (!leaves.count(path)) order.push_back(path);
    leaves[path].push_back(leaf);
  }
  std::string out;
  size_t listed = 0, rest = 0;
  for (const std::string& path : order) {
    const std::vector<std::string>& l = leaves[path];
    if (listed == shown) {
      rest += l.size();
      continue;
    }
    std::string item = path.empty() ? "" : path + ".";
    if (l.size() == 1) {
      item += l[0];
    } else {
      // At most 6 leaves of one module ("extra.{000,001,...,005 and 294 more}").
      item += "{";
      for (size_t i = 0; i < l.size() && i < 6; ++i) item += (i ? "," : "") + l[i];
      if (l.size() > 6) item += " and " + std::to_string(l.size() - 6) + " more";
      item += "}";
    }
    out += (listed ? ", " : "") + item;
    ++listed;
  }
  if (rest > 0) out += " and " + std::to_string(rest) + " more";
  return out;
}

// What a state dict with ResNet block names ("layer{s}.{b}.") looks like, or "".
std::string resnet_guess(const NamedTensors& state) {
  std::map<int, int> blocks;  // stage -> blocks
  bool bottleneck = false;
  for (const auto& [name, t] : state) {
    int s = 0, b = 0, used = 0;
    if (std::sscanf(name.c_str(), "layer%d.%d.%n", &s, &b, &used) < 2 || used == 0) continue;
    if (s < 1 || s > 8 || b < 0 || b > 1000) continue;
    blocks[s] = std::max(blocks[s], b + 1);
    if (name.compare(size_t(used), 6, "conv3.") == 0) bottleneck = true;
  }
  if (blocks.empty()) return "";
  std::vector<int> counts;
  for (int s = 1; s <= int(blocks.size()); ++s) {
    if (!blocks.count(s)) return "";
    counts.push_back(blocks[s]);
  }
  const bool seven = is_7x7_stem(state);
  std::string shape;
  for (size_t i = 0; i < counts.size(); ++i) shape += (i ? "," : "") + std::to_string(counts[i]);
  const bool one = counts.size() == 1 && counts[0] == 1;
  const std::string what = std::to_string(counts.size()) + (counts.size() == 1 ? " stage of " : " stages of ") + shape +
                           (bottleneck ? " bottleneck" : " basic") + (one ? " block" : " blocks") +
                           (seven ? ", 7x7 stem" : "");
  std::string arch;
  if (counts.size() == 4) {
    const std::vector<int> r18{2, 2, 2, 2}, r34{3, 4, 6, 3};
    if (!bottleneck && counts == r18) arch = "resnet18";
    if (!bottleneck && counts == r34) arch = "resnet34";
    if (bottleneck && counts == r34) arch = "resnet50";
  } else if (counts.size() == 3 && !bottleneck && !seven && counts[0] == counts[1] && counts[1] == counts[2]) {
    const int depth = 6 * counts[0] + 2;
    if (depth == 20 || depth == 32 || depth == 44 || depth == 56) arch = "resnet" + std::to_string(depth);
  }
  if (!arch.empty() && seven) arch += "_imagenet (--arch " + arch + " picks it from the 7x7 conv1)";
  return arch.empty() ? "its names look like a ResNet of " + what + ", which no oodkit architecture has"
                      : "its names look like " + arch + ": " + what;
}

}  // namespace

MappedCheckpoint map_checkpoint_names(const NamedTensors& state, const std::string& arch) {
  MappedCheckpoint out;
  out.state = state;
  out.arch = arch;
  strip_prefixes(&out.state, &out.notes);
  if (is_resnet_base(arch) || is_resnet_imagenet(arch)) map_torchvision(&out.state, &out.notes);
  if (is_resnet_base(arch) && is_7x7_stem(out.state)) {
    const Tensor* w = find(out.state, "conv1.weight");
    if (w->size(0) == 64) {
      out.arch = arch + "_imagenet";
      out.notes.push_back("7x7 stem: " + out.arch);
    }
  }
  return out;
}

std::string describe_mismatch(const NamedTensors& state, const NamedTensors& model_state) {
  std::unordered_map<std::string, const Tensor*> given;
  for (const auto& [n, t] : state) given.emplace(n, &t);
  std::unordered_set<std::string> wanted;
  std::vector<std::string> missing, unexpected, bad_shape;
  size_t fit = 0;
  for (const auto& [name, t] : model_state) {
    wanted.insert(name);
    const auto it = given.find(name);
    if (it == given.end()) {
      // BatchNorm's counter is optional (nn::BatchNorm; checkpoints of old PyTorch lack it).
      const std::string counter = "num_batches_tracked";
      const bool optional = name.size() >= counter.size() && name.compare(name.size() - counter.size(), counter.size(), counter) == 0;
      if (!optional) missing.push_back(name);
    } else if (it->second->shape() != t.shape()) {
      bad_shape.push_back(name + " (checkpoint " + shape_str(it->second->shape()) + ", model " +
                          shape_str(t.shape()) + ")");
    } else {
      ++fit;
    }
  }
  for (const auto& [name, t] : state)
    if (!wanted.count(name)) unexpected.push_back(name);
  if (missing.empty() && unexpected.empty() && bad_shape.empty()) return "";
  std::string out = std::to_string(fit) + " of " + std::to_string(state.size()) + " names fit";
  if (!missing.empty()) out += "; missing " + std::to_string(missing.size()) + ": " + grouped(missing);
  if (!unexpected.empty()) out += "; unexpected " + std::to_string(unexpected.size()) + ": " + grouped(unexpected);
  if (!bad_shape.empty()) {
    out += "; wrong shape " + std::to_string(bad_shape.size()) + ": ";
    for (size_t i = 0; i < bad_shape.size() && i < 3; ++i) out += (i ? ", " : "") + bad_shape[i];
    if (bad_shape.size() > 3) out += " and " + std::to_string(bad_shape.size() - 3) + " more";
  }
  const std::string guess = resnet_guess(state);
  if (!guess.empty()) out += "; " + guess;
  return out;
}

std::string architecture_hint() {
  std::string names;
  for (const std::string& n : classifier_names()) names += (names.empty() ? "" : ", ") + n;
  return "--arch is one of " + names +
         " (torchvision ResNet names and 'module.'/'model.' prefixes are mapped; docs/data.md)";
}

}  // namespace oodkit::models
