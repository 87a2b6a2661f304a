// What `oodkit data` lists: every dataset name the registry knows (data/registry.h), where it is
// read from, whether it is there and how many images each split has, and the layout it expects.
// Counting reads no image: CIFAR files by their size (whole records), IDX label files by their
// header, image folders by their file names (the lists the loaders read).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace oodkit::data {

struct DatasetStatus {
  std::string name;        // as on the command line ("folder:<path>", "synthetic-id", ...)
  std::string root;        // the folder it is read from ("" for generated sets and folder:)
  std::string state;       // "installed", "not installed", "incomplete: ...", "built in", "any folder"
  std::vector<std::pair<std::string, int64_t>> rows;  // split -> images ("all": read whole)
  std::string layout;      // what the loader expects under root
  std::string digest;      // "fnv1a64:<16 hex>" of every file under root (with_digest), else ""
};

// One entry per known_datasets() name, in that order. `with_digest` reads every file of each
// installed set: FNV-1a 64 over the sorted relative paths, each followed by a NUL, its size
// (8 bytes, little-endian) and its bytes.
std::vector<DatasetStatus> dataset_inventory(bool with_digest = false);

// The layout the loader expects under a set's folder, in a line (docs/data.md, "Names, layouts
// and splits"); the image-folder layout for names without their own.
std::string expected_layout(const std::string& name);

// The digest above of every regular file under `dir` (recursively).
std::string folder_digest(const std::string& dir);

}  // namespace oodkit::data
