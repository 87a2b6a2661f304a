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
#include "ood/registry.h"

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

// That every class of `query_pred` (int64 [Q], e.g. the predicted classes of OE images) is also a
// class of `database_pred` (int64 [N], e.g. those of the ID rows), so that a search for the nearest
// database row of the same class finds one for every query; else an Error naming `option` (the
// option that chose the database rows), the first class without rows, how many queries it has,
// and the count of such classes. `database` and `queries` name the two sets (plural nouns).
void check_predicted_classes_covered(const Tensor& database_pred, const Tensor& query_pred, const std::string& database,
                                     const std::string& queries, const char* option);

// That an epoch of `batch`-sized batches over `n` training images (the last partial batch dropped)
// has at least one batch: batch <= n; else an Error naming `option` and `set`.
void check_batch_fits(int64_t batch, int64_t n, const std::string& set, const char* option);

// That the images of `ds` are square, 32x32 or 64x64 (the classifiers' input sizes,
// models/registry.h); else an Error naming `option` and `spec`.
void check_image_size(const data::Dataset& ds, const std::string& spec, const char* option);

// That every label of `ds` (int64 [N]; none: nothing to check) is one of the classifier's
// num_classes classes, 0..num_classes-1; else an Error naming `option` and `spec` (the set), the
// first row outside (with its class name when the set has names) and the count of such rows.
// Detectors index per-class statistics by label: a label outside would index past them.
void check_labels_in_range(const data::Dataset& ds, int64_t num_classes, const std::string& spec, const char* option);

// Why `method` cannot run on d features with its ASH percentiles (--set `settings`, else the
// registered grid and default): "" when every percentile keeps at least one feature
// (ood::ash_keep_count) or the method is not ASH; for a fusion, "fuses <c>, which <c's reason>"
// for its first such component.
std::string ash_problem(const std::string& method, int64_t d, const ood::Settings& settings);

}  // namespace oodkit::run
