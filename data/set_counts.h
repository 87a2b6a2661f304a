// Images per split of an installed set, counted without reading any image: CIFAR files by their
// size (whole records), IDX label files by their header, image folders by their file names (the
// lists the loaders read). Each registry row (data/registry.h) names the one its layout needs;
// `oodkit data` prints them (data/inventory.h).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace oodkit::data {

// split -> images, in the order listed ("all": a set read whole).
using SplitCounts = std::vector<std::pair<std::string, int64_t>>;

// CIFAR binary sets: "train" and "test" from the sizes of their files (3073-byte records for
// CIFAR-10: data_batch_1..5.bin, test_batch.bin; 3074 for CIFAR-100: train.bin, test.bin); a
// missing file or a partial record is an error naming the file.
SplitCounts cifar10_counts(const std::string& root);
SplitCounts cifar100_counts(const std::string& root);

// MNIST-like IDX sets: "train" (a train*labels-idx1-ubyte* file) and "test" (t10k*...), those present;
// neither is an error.
SplitCounts idx_split_counts(const std::string& root);

// Tiny ImageNet: "test" (test/) and "val" (val/images/ or val/), those present; neither is an error.
SplitCounts tinyimagenet_counts(const std::string& root);

// An image folder read whole ("all"), its files directly in it (isun).
SplitCounts flat_folder_counts(const std::string& root);

// The image-folder sets: "train" and "test" for the split sub-folders present, else "all"; each
// counts the images of the class sub-folders when some hold images, else those directly in it.
SplitCounts folder_split_counts(const std::string& root);

}  // namespace oodkit::data
