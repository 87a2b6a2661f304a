// IDX files (the MNIST / Fashion-MNIST format, http://yann.lecun.com/exdb/mnist/), plain or
// gzip-compressed (detected by content, not by name).
// Layout: magic = 0x00 0x00 <dtype code> <number of dims>, then one big-endian uint32 per dim,
// then the values row-major. Only dtype 0x08 (unsigned byte) is used by image datasets; the
// other codes (0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) are recognised
// and rejected with a message naming them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace oodkit::data {

struct IdxArray {
  std::vector<int64_t> dims;   // e.g. {N, 28, 28} for images, {N} for labels
  std::vector<uint8_t> values; // prod(dims) bytes
};

// Reads and validates an unsigned-byte IDX file: magic, dtype code, number of dims (1..4,
// or exactly `expect_ndim` when > 0), every dim > 0, and payload size == prod(dims) (a
// shorter file is "truncated", a longer one has "trailing bytes"). Errors name the file.
IdxArray read_idx(const std::string& path, int expect_ndim = 0);

// Writes an unsigned-byte IDX file (plain, or gzip when `gzip`), e.g. to build test fixtures.
void write_idx(const std::string& path, const IdxArray& array, bool gzip = false);

// [N, H, W] grayscale images -> uint8 [N, 3, H, W] with the gray value replicated to R, G, B.
Tensor load_idx_images(const std::string& path);

// [N] label bytes -> int64 [N]; each label must be < num_classes.
Tensor load_idx_labels(const std::string& path, int64_t num_classes = 10);

// Images + labels (counts must match, errors name both files) as a Dataset named `name`.
// Class names come from mnist / fashion-mnist's standard lists when `name` is one of them.
Dataset load_mnist_like(const std::string& images_path, const std::string& labels_path, const std::string& name,
                        int64_t num_classes = 10);

// The standard class names ("0".."9" for mnist; "T-shirt/top", ... for fashion-mnist).
std::vector<std::string> mnist_class_names();
std::vector<std::string> fashion_mnist_class_names();

}  // namespace oodkit::data
