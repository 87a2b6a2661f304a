#include "run/benchmark.h"

#include <algorithm>
#include <filesystem>

#include "data/inventory.h"
#include "data/registry.h"
#include "framework/error.h"

namespace oodkit::run {

namespace {

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// OpenOOD v1.5 (Zhang et al. 2023), CIFAR benchmarks: the same far-OOD group for both.
const std::vector<std::string> kFar = {"mnist", "svhn", "textures", "places365"};

}  // namespace

const std::vector<Benchmark>& benchmarks() {
  static const std::vector<Benchmark> all = {
      {"openood-cifar10", "cifar10", {{"near-OOD", {"cifar100", "tinyimagenet"}, {}}, {"far-OOD", kFar, {}}}},
      {"openood-cifar100", "cifar100", {{"near-OOD", {"cifar10", "tinyimagenet"}, {}}, {"far-OOD", kFar, {}}}},
  };
  return all;
}

const Benchmark& find_benchmark(const std::string& name) {
  std::vector<std::string> names;
  for (const Benchmark& b : benchmarks()) {
    if (b.name == name) return b;
    names.push_back(b.name);
  }
  OODKIT_FAIL("--benchmark: unknown benchmark '", name, "' (known: ", join(names), ")");
}

std::string dataset_source(const std::string& set) {
  if (set == "cifar10" || set == "cifar100")
    return "https://www.cs.toronto.edu/~kriz/cifar.html (the binary version)";
  if (set == "tinyimagenet") return "http://cs231n.stanford.edu/tiny-imagenet-200.zip";
  if (set == "mnist") return "http://yann.lecun.com/exdb/mnist/ (the IDX files)";
  if (set == "svhn") return "http://ufldl.stanford.edu/housenumbers/ (test_32x32.mat, exported to image files)";
  if (set == "textures") return "https://www.robots.ox.ac.uk/~vgg/data/dtd/ (dtd/images/)";
  if (set == "places365") return "http://places2.csail.mit.edu/";
  return "docs/data.md, \"Getting the originals\"";
}

std::vector<std::string> BenchmarkChoice::ood_sets() const {
  std::vector<std::string> out;
  for (const SetGroup& g : groups) out.insert(out.end(), g.sets.begin(), g.sets.end());
  return out;
}

BenchmarkChoice choose_benchmark_sets(const Benchmark& b, const std::function<bool(const std::string&)>& installed,
                                      const std::function<std::string(const std::string&)>& root,
                                      const std::function<std::string(const std::string&)>& layout) {
  const auto where = [&](const std::string& set) {
    return "(no folder " + root(set) + "): get it from " + dataset_source(set) + "; layout: " + layout(set) +
           " (docs/data.md, \"Getting the originals\"; `oodkit data` lists what is installed)";
  };
  OODKIT_CHECK(installed(b.id), "--benchmark ", b.name, ": its ID set '", b.id, "' is not installed ", where(b.id));
  BenchmarkChoice c;
  c.name = b.name;
  c.id = b.id;
  for (const SetGroup& g : b.groups) {
    SetGroup used{g.name, {}, {}};
    for (const std::string& set : g.sets) {
      if (installed(set)) {
        used.sets.push_back(set);
        continue;
      }
      used.missing.push_back(set);
      c.missing.push_back({set, g.name, g.name + " set '" + set + "' is not installed " + where(set)});
    }
    OODKIT_CHECK(!used.sets.empty(), "--benchmark ", b.name, ": none of the ", g.name, " sets (", join(g.sets),
                 ") is installed, so there is no ", g.name, " average; install at least one (`oodkit data` "
                 "lists the folders and layouts, docs/data.md where to get them) or name the sets with --ood instead");
    c.groups.push_back(used);
  }
  for (const SetGroup& g : c.groups)
    if (g.partial())
      c.notes.push_back("the " + g.name + " average is partial: it leaves out " + join(g.missing) +
                        " (not installed), so it is not comparable with OpenOOD v1.5's " + g.name + " figures");
  const std::vector<std::string> used = c.ood_sets();
  if (std::find(used.begin(), used.end(), "tinyimagenet") != used.end())
    c.notes.push_back("tinyimagenet is Tiny ImageNet's whole test/ folder resized to 32x32, not OpenOOD v1.5's TIN "
                      "set (which leaves out the images of classes that overlap CIFAR's)");
  c.notes.push_back("each set is read as installed (its default split, every image unless --ood-limit), not from "
                    "OpenOOD's image lists; the per-set counts are in results.json's data.test_ood");
  return c;
}

BenchmarkChoice choose_benchmark_sets(const Benchmark& b) {
  return choose_benchmark_sets(
      b,
      [](const std::string& set) {
        std::error_code ec;
        return std::filesystem::is_directory(data::default_root(set), ec);
      },
      [](const std::string& set) { return data::default_root(set); },
      [](const std::string& set) { return data::expected_layout(set); });
}

}  // namespace oodkit::run
