// CIFAR-10 / CIFAR-100 binary layouts (https://www.cs.toronto.edu/~kriz/cifar.html).
// CIFAR-10 records: 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major 32x32).
// CIFAR-100 records: coarse label byte, fine label byte, then the same 3072 pixel bytes.
// Any whole number of records per file is accepted.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace oodkit::data {

enum class CifarLayout { Cifar10, Cifar100Fine, Cifar100Coarse };

// Concatenates the records of `files`. Errors name the file: missing, empty, size not a
// multiple of the record size, label out of range.
Dataset load_cifar(const std::vector<std::string>& files, CifarLayout layout);

// Class names from a batches.meta.txt-style file (one name per line, blank lines ignored).
std::vector<std::string> read_class_names(const std::string& path);

}  // namespace oodkit::data
