// The checks a command's plan makes before any work: every input named by an option is present and
// usable, every split possible, every output creatable. Each throws an Error naming the option in
// one line, so that a command refuses within seconds instead of after its feature extraction.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_folder.h"

namespace oodkit::run {

// That `dir` could be created (as mkdir -p would) or is an existing folder, without creating
// anything: every existing component is a folder, and the deepest existing one is writable.
// Throws naming `option` and the reason otherwise.
void check_output_dir(const std::string& dir, const char* option);

// Calls `load` and returns its dataset; an Error it throws comes back prefixed with
// "<option> '<spec>': " so that the user sees which option named the set.
data::Dataset load_for(const char* option, const std::string& spec, const std::function<data::Dataset()>& load);

// Whether two set specs (<name>[:<split>], as the commands read them) can name the same images:
// the same dataset and the same split once the default is filled in ("test" for the CIFAR, IDX,
// Tiny ImageNet and synthetic sets), or a dataset read whole: isun ignores the split, and an image
// folder without a split (svhn, lsun, ..., folder:<path>) may include its split sub-folders.
bool same_images(const std::string& a, const std::string& b);

// That `heldout` of `n` training images can be held out and leave some to fit on.
void check_heldout(int64_t heldout, int64_t n, const std::string& set, const char* option);

// That every class 0..num_classes-1 has at least one of `rows` (labels of the whole set, int64
// [N]); else an Error naming `option` (the option that chose the rows), the first empty class
// and the count of empty classes.
void check_classes_covered(const Tensor& labels, const std::vector<int64_t>& rows, int64_t num_classes,
                           const std::string& set, const char* option);

}  // namespace oodkit::run
