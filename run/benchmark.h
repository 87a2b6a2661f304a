// The standard benchmarks `oodkit eval --benchmark NAME` runs: OpenOOD v1.5's CIFAR groups.
//
//   openood-cifar10   ID cifar10   near-OOD: cifar100, tinyimagenet
//                                  far-OOD:  mnist, svhn, textures, places365
//   openood-cifar100  ID cifar100  near-OOD: cifar10, tinyimagenet
//                                  far-OOD:  mnist, svhn, textures, places365
//
// A run uses whichever of a group's sets are installed (their folder exists: data/registry.h's
// default_root); a group missing some of its sets is reported as partial, and a group with none of
// them, or a missing ID set, is refused (a near/far comparison needs both groups). Each group's
// figures are the plain mean over its sets' figures, as OpenOOD v1.5 reports them.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace oodkit::run {

// One named group of OOD test sets (set specs as --ood takes them).
struct SetGroup {
  std::string name;                  // "near-OOD", "far-OOD"
  std::vector<std::string> sets;     // the sets evaluated, in the benchmark's order
  std::vector<std::string> missing;  // the benchmark's sets that were not installed
  bool partial() const { return !missing.empty(); }
};

struct Benchmark {
  std::string name, id;          // "openood-cifar10", its ID set
  std::vector<SetGroup> groups;  // every set of each group in `sets`, `missing` empty
};

// The benchmarks above, in that order.
const std::vector<Benchmark>& benchmarks();

// The one named `name`; an Error naming --benchmark and the known names otherwise.
const Benchmark& find_benchmark(const std::string& name);

// A missing set's one line: where to get it and the layout oodkit reads.
struct MissingSet {
  std::string set, group;  // "svhn", "far-OOD"
  std::string line;        // "<group> set '<set>' is not installed (no folder <root>): get it from ...; layout ..."
};

// What a run of `b` uses: its groups with the installed sets, the missing ones with their lines,
// and notes for the reports (how these sets differ from OpenOOD's).
struct BenchmarkChoice {
  std::string name, id;
  std::vector<SetGroup> groups;
  std::vector<MissingSet> missing;
  std::vector<std::string> notes;
  std::vector<std::string> ood_sets() const;  // every group's sets, in order
};

// `installed(name)` says whether a set is there; `root(name)` and `layout(name)` describe where and
// how a missing one is expected. Throws an Error (naming --benchmark) when the ID set is missing or
// a whole group is.
BenchmarkChoice choose_benchmark_sets(const Benchmark& b, const std::function<bool(const std::string&)>& installed,
                                      const std::function<std::string(const std::string&)>& root,
                                      const std::function<std::string(const std::string&)>& layout);

// The same with the registry's folders (data::default_root) and `oodkit data`'s layouts.
BenchmarkChoice choose_benchmark_sets(const Benchmark& b);

// Where each set of the benchmarks comes from (a URL and what to do with it).
std::string dataset_source(const std::string& set);

}  // namespace oodkit::run
