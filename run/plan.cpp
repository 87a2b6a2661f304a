#include "run/plan.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "data/registry.h"
#include "ood/scores.h"  // ash_keep_count

namespace oodkit::run {

namespace fs = std::filesystem;

void check_output_dir(const std::string& dir, const char* option) {
  OODKIT_CHECK(!dir.empty(), option, ": no folder given");
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(dir), ec);
  OODKIT_CHECK(!ec, option, ": cannot use the folder '", dir, "': ", ec.message());
  // The deepest existing component: a folder we may write into. Every component above it exists
  // and, being on its path, is a folder (or resolving would have failed there).
  fs::path existing = p;
  while (!fs::exists(existing, ec)) {
    OODKIT_CHECK(existing.has_parent_path() && existing.parent_path() != existing, option,
                 ": cannot create the folder '", dir, "': no existing parent");
    existing = existing.parent_path();
  }
  OODKIT_CHECK(fs::is_directory(existing, ec), option, ": cannot create the folder '", dir, "': '",
               existing.string(), "' is a file, not a folder");
  OODKIT_CHECK(::access(existing.c_str(), W_OK | X_OK) == 0, option, ": cannot ",
               existing == p ? "write into" : "create", " the folder '", dir, "': '", existing.string(),
               "' is not writable");
}

data::Dataset load_for(const char* option, const std::string& spec, const std::function<data::Dataset()>& load) {
  try {
    return load();
  } catch (const Error& e) {
    // Unreadable-image errors keep their type (main() adds the --skip-unreadable hint to them).
    if (dynamic_cast<const data::UnreadableImageError*>(&e)) throw;
    throw Error(std::string(option) + " '" + spec + "': " + e.what(), e.where());
  }
}

bool same_images(const std::string& a, const std::string& b) {
  const auto parse = [](const std::string& spec) {
    const size_t c = spec.find(':');
    if (spec.rfind("folder:", 0) == 0 || c == std::string::npos) return std::make_pair(spec, std::string());
    return std::make_pair(spec.substr(0, c), spec.substr(c + 1));
  };
  auto [na, sa] = parse(a);
  auto [nb, sb] = parse(b);
  if (na != nb) return false;
  if (const data::DatasetInfo* row = data::find_dataset(na)) {
    if (row->splits.size() == 1) return true;  // isun: the one folder, whatever split is asked
    if (sa.empty()) sa = row->default_split;
    if (sb.empty()) sb = row->default_split;
  }
  return sa == sb || sa.empty() || sb.empty();
}

void check_heldout(int64_t heldout, int64_t n, const std::string& set, const char* option) {
  OODKIT_CHECK(heldout > 0, option, " ", heldout, " leaves no held-out ID images for validation");
  OODKIT_CHECK(heldout < n, option, " ", heldout, " is not smaller than the ", n, " training images of '", set,
               "': nothing would be left to fit on; give a smaller ", option, " (e.g. ", std::max<int64_t>(1, n / 10),
               ")");
}

void check_classes_covered(const Tensor& labels, const std::vector<int64_t>& rows, int64_t num_classes,
                           const std::string& set, const char* option) {
  if (!labels.defined() || num_classes <= 0) return;
  const std::vector<int64_t> y = labels.cpu().to_vector<int64_t>();
  std::vector<int64_t> count(size_t(num_classes), 0);
  for (int64_t r : rows) {
    const int64_t c = y.at(size_t(r));
    if (c >= 0 && c < num_classes) ++count[size_t(c)];
  }
  int64_t empty = 0, first = -1;
  for (int64_t c = 0; c < num_classes; ++c)
    if (count[size_t(c)] == 0) {
      ++empty;
      if (first < 0) first = c;
    }
  OODKIT_CHECK(empty == 0, option, " leaves ", empty, " of the ", num_classes, " classes of '", set,
               "' without fitting images (the first: class ", first, "; ", rows.size(),
               " images to fit on); give a larger ", option, " or -1 (all)");
}

void check_predicted_classes_covered(const Tensor& database_pred, const Tensor& query_pred, const std::string& database,
                                     const std::string& queries, const char* option) {
  std::map<int64_t, int64_t> in_database, per_class;  // class -> rows
  for (int64_t c : database_pred.cpu().to_vector<int64_t>()) ++in_database[c];
  for (int64_t c : query_pred.cpu().to_vector<int64_t>()) ++per_class[c];
  int64_t missing = 0, first = -1;
  for (const auto& [c, n] : per_class)
    if (!in_database.count(c)) {
      ++missing;
      if (first < 0) first = c;
    }
  if (missing == 0) return;
  OODKIT_FAIL(option, " leaves no ", database, " predicted as class ", first, ", the predicted class of ",
              per_class[first], " of the ", query_pred.numel(), " ", queries, " (", missing, " such class",
              missing == 1 ? "" : "es", "; ", database_pred.numel(), " ", database,
              "): they would have no nearest neighbour of their class; give a larger ", option, " or -1 (all)");
}

void check_batch_fits(int64_t batch, int64_t n, const std::string& set, const char* option) {
  OODKIT_CHECK(batch <= n, option, " ", batch, " is larger than the ", n, " training images of '", set,
               "': with the last partial batch dropped an epoch would have no step; give a --batch of ", n,
               " or less");
}

void check_image_size(const data::Dataset& ds, const std::string& spec, const char* option) {
  if (!ds.images.defined()) return;
  const int64_t h = ds.images.size(2), w = ds.images.size(3);
  OODKIT_CHECK(h == w && (h == 32 || h == 64), option, " '", spec, "': the images are ", h, "x", w,
               " pixels; the classifiers take 32x32 or 64x64 images");
}

void check_labels_in_range(const data::Dataset& ds, int64_t num_classes, const std::string& spec, const char* option) {
  if (!ds.labels.defined()) return;
  const std::vector<int64_t> y = ds.labels.cpu().to_vector<int64_t>();
  int64_t outside = 0, first = -1;
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i] < 0 || y[i] >= num_classes) {
      if (first < 0) first = int64_t(i);
      ++outside;
    }
  if (outside == 0) return;
  const int64_t c = y[size_t(first)];
  const std::string name =
      c >= 0 && c < int64_t(ds.class_names.size()) ? " ('" + ds.class_names[size_t(c)] + "')" : std::string();
  OODKIT_FAIL(option, " '", spec, "': image ", first, " has class ", c, name, " (", outside, " of ", y.size(),
              " images outside), but the classifier has ", num_classes, " classes (0..", num_classes - 1,
              "): the set must have the classes the classifier was trained on");
}

std::string ash_problem(const std::string& method, int64_t d, const ood::Settings& settings) {
  const ood::DetectorInfo& info = ood::detector_info(method);
  for (const std::string& c : info.components)
    if (const std::string why = ash_problem(c, d, settings); !why.empty()) return "fuses " + c + ", which " + why;
  if (method.rfind("ash_", 0) != 0) return "";
  std::vector<double> ps;
  for (const auto& [key, values] : info.grid)
    if (key == "p") ps = values;
  if (const auto it = info.defaults.find("p"); it != info.defaults.end()) ps.push_back(it->second);
  if (const auto it = settings.find(method); it != settings.end() && it->second.count("p")) ps = it->second.at("p");
  for (double p : ps)
    try {
      ood::ash_keep_count(d, p);
    } catch (const Error&) {
      std::ostringstream os;
      os << "its percentile p = " << p << " keeps none of the " << d << " features (k = D - round(D * p / 100) < 1; "
         << "set lower ones, e.g. --set " << method << ".p=50)";
      return os.str();
    }
  return "";
}

}  // namespace oodkit::run
