#include "run/features_file.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "framework/hash.h"
#include "framework/ops/linear.h"
#include "framework/safetensors.h"
#include "ood/registry.h"
#include "run/plan.h"

namespace oodkit::run {

namespace {

// The three tensors a set may have, by their full names in the file ("" when absent).
struct SetNames {
  std::string features, logits, labels;
};

bool is_float(const std::string& stored) { return stored == "F32" || stored == "F16" || stored == "BF16"; }

// "<prefix>.<suffix>" split at the last dot; the prefix is a set's ("fit", "ood.svhn", ...).
std::pair<std::string, std::string> split_name(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

bool known_prefix(const std::string& prefix) {
  if (prefix == "fit" || prefix == "id_val" || prefix == "id_test") return true;
  for (const char* group : {"val_ood.", "ood."})
    if (prefix.rfind(group, 0) == 0 && prefix.size() > std::string(group).size()) return true;
  return false;
}

bool is_id_set(const std::string& prefix) { return prefix == "fit" || prefix == "id_val" || prefix == "id_test"; }

// The file's tensors by set, checked by name alone: every name is head.weight, head.bias or
// <set>.{features,logits,labels} with labels only on the ID sets.
std::map<std::string, SetNames> sets_of(const std::vector<TensorInfo>& infos, const std::string& path,
                                        std::vector<std::string>* order) {
  std::map<std::string, SetNames> sets;
  for (const TensorInfo& ti : infos) {
    if (ti.name == "head.weight" || ti.name == "head.bias") continue;
    const auto [prefix, suffix] = split_name(ti.name);
    const bool ok = known_prefix(prefix) &&
                    (suffix == "features" || suffix == "logits" || (suffix == "labels" && is_id_set(prefix)));
    OODKIT_CHECK(ok, "features file '", path, "': unknown tensor '", ti.name,
                 "'; expected head.weight, head.bias and <set>.features / <set>.logits (sets: fit, id_val, "
                 "id_test, val_ood.<name>, ood.<name>) and fit / id_val / id_test .labels (docs/data.md)");
    SetNames& s = sets[prefix];
    if (s.features.empty() && s.logits.empty() && s.labels.empty() && order) order->push_back(prefix);
    (suffix == "features" ? s.features : suffix == "logits" ? s.logits : s.labels) = ti.name;
  }
  return sets;
}

const TensorInfo& info_of(const std::vector<TensorInfo>& infos, const std::string& name, const std::string& path) {
  for (const TensorInfo& ti : infos)
    if (ti.name == name) return ti;
  OODKIT_FAIL("features file '", path, "': missing tensor '", name, "' (docs/data.md lists the names)");
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The head's dtype and shapes from the header: weight float [K, D], bias float [K].
std::pair<int64_t, int64_t> check_head(const std::vector<TensorInfo>& infos, const std::string& path) {
  const TensorInfo& w = info_of(infos, "head.weight", path);
  const TensorInfo& b = info_of(infos, "head.bias", path);
  for (const TensorInfo* t : {&w, &b})
    OODKIT_CHECK(is_float(t->stored_dtype), "features file '", path, "': tensor '", t->name, "' is ",
                 t->stored_dtype, "; it must be F32 (or F16/BF16): save it with .float()");
  OODKIT_CHECK(w.shape.size() == 2 && w.shape[0] >= 1 && w.shape[1] >= 1, "features file '", path,
               "': tensor 'head.weight' has shape ", shape_str(w.shape), "; it must be [classes, features]");
  OODKIT_CHECK(b.shape.size() == 1 && b.shape[0] == w.shape[0], "features file '", path, "': tensor 'head.bias' has shape ",
               shape_str(b.shape), "; head.weight ", shape_str(w.shape), " needs [", w.shape[0], "]");
  return {w.shape[0], w.shape[1]};
}

// One set's tensors from the header: features float [N, D]; logits float [N, K]; labels I64 [N].
void check_set_header(const std::vector<TensorInfo>& infos, const std::string& prefix, const SetNames& s, int64_t k,
                      int64_t d, bool labels_required, const std::string& path) {
  OODKIT_CHECK(!s.features.empty(), "features file '", path, "': missing tensor '", prefix,
               ".features' (the set has ", s.logits.empty() ? "labels" : "logits", " but no features)");
  const TensorInfo& f = info_of(infos, s.features, path);
  OODKIT_CHECK(is_float(f.stored_dtype), "features file '", path, "': tensor '", f.name, "' is ", f.stored_dtype,
               "; features must be F32 (or F16/BF16): save them with .float()");
  OODKIT_CHECK(f.shape.size() == 2 && f.shape[0] >= 1, "features file '", path, "': tensor '", f.name,
               "' has shape ", shape_str(f.shape), "; it must be [rows, features] with at least one row");
  OODKIT_CHECK(f.shape[1] == d, "features file '", path, "': tensor '", f.name, "' has ", f.shape[1],
               " features per row, but head.weight [", k, ", ", d, "] takes ", d);
  const int64_t n = f.shape[0];
  if (!s.logits.empty()) {
    const TensorInfo& l = info_of(infos, s.logits, path);
    OODKIT_CHECK(is_float(l.stored_dtype), "features file '", path, "': tensor '", l.name, "' is ", l.stored_dtype,
                 "; logits must be F32 (or F16/BF16): save them with .float()");
    OODKIT_CHECK(l.shape == Shape({n, k}), "features file '", path, "': tensor '", l.name, "' has shape ",
                 shape_str(l.shape), "; ", f.name, " and head.weight need [", n, ", ", k, "]");
  }
  OODKIT_CHECK(!labels_required || !s.labels.empty(), "features file '", path, "': missing tensor '", prefix,
               ".labels' (int64 classes of ", prefix, ".features)");
  if (!s.labels.empty()) {
    const TensorInfo& y = info_of(infos, s.labels, path);
    OODKIT_CHECK(y.stored_dtype == "I64", "features file '", path, "': tensor '", y.name, "' is ", y.stored_dtype,
                 "; labels must be I64: save them with .long()");
    OODKIT_CHECK(y.shape == Shape({n}), "features file '", path, "': tensor '", y.name, "' has shape ",
                 shape_str(y.shape), "; ", f.name, " has ", n, " rows, so it must be [", n, "]");
  }
}

Tensor tensor_named(const NamedTensors& all, const std::string& name) {
  for (const auto& [n, t] : all)
    if (n == name) return t;
  return Tensor();
}

// Every element finite, else an error naming the tensor and the first bad row.
void check_finite(const Tensor& t, const std::string& name, const std::string& path) {
  const float* p = t.data<float>();
  const int64_t cols = t.ndim() == 2 ? t.size(1) : 1, n = t.numel();
  for (int64_t i = 0; i < n; ++i)
    OODKIT_CHECK(std::isfinite(p[i]), "features file '", path, "': tensor '", name, "' holds ",
                 std::isnan(p[i]) ? "NaN" : "an infinity", t.ndim() == 2 ? " in row " + std::to_string(i / cols) : "",
                 "; every value must be finite");
}

// One set from the loaded tensors (its header already checked): labels in range, values finite,
// logits computed from the head, or checked against it.
FeatureSet build_set(const NamedTensors& all, const std::string& prefix, const SetNames& s, const Tensor& w,
                     const Tensor& b, const std::string& path) {
  FeatureSet out;
  out.name = prefix.rfind("val_ood.", 0) == 0 ? prefix.substr(8) : prefix.rfind("ood.", 0) == 0 ? prefix.substr(4) : prefix;
  const Tensor z = tensor_named(all, s.features);
  check_finite(z, s.features, path);
  const Tensor computed = ops::linear(z, w, b);
  out.features.z = z;
  out.features.logits = computed;
  if (!s.logits.empty()) {
    const Tensor given = tensor_named(all, s.logits);
    check_finite(given, s.logits, path);
    const int64_t n = given.size(0), k = given.size(1);
    const float* g = given.data<float>();
    const float* c = computed.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      double diff = 0, largest = 0;
      for (int64_t j = 0; j < k; ++j) {
        diff = std::max(diff, std::fabs(double(g[i * k + j]) - double(c[i * k + j])));
        largest = std::max(largest, std::fabs(double(c[i * k + j])));
      }
      OODKIT_CHECK(diff <= 0.01 * (1 + largest), "features file '", path, "': tensor '", s.logits, "' row ", i,
                   " differs from ", s.features, " · head.weightᵀ + head.bias by ", diff,
                   " (more than 1% of that row's largest |logit| ", largest,
                   "): head.* must be the layer that made these logits");
    }
    out.features.logits = given;
    out.logits_given = true;
  }
  if (!s.labels.empty()) {
    out.labels = tensor_named(all, s.labels);
    const int64_t* y = out.labels.data<int64_t>();
    for (int64_t i = 0; i < out.labels.numel(); ++i)
      OODKIT_CHECK(y[i] >= 0 && y[i] < w.size(0), "features file '", path, "': tensor '", s.labels, "' row ", i,
                   " is class ", y[i], "; head.weight has ", w.size(0), " classes (labels 0..", w.size(0) - 1, ")");
  }
  return out;
}

// The head from the loaded tensors, checked finite.
void load_head(const NamedTensors& all, FeaturesFile& f) {
  f.weight = tensor_named(all, "head.weight");
  f.bias = tensor_named(all, "head.bias");
  check_finite(f.weight, "head.weight", f.path);
  check_finite(f.bias, "head.bias", f.path);
}

void read_metadata(const std::map<std::string, std::string>& meta, FeaturesFile& f) {
  if (auto it = meta.find("id"); it != meta.end() && !it->second.empty()) f.id = it->second;
  if (auto it = meta.find("model"); it != meta.end() && !it->second.empty()) f.model = it->second;
}

}  // namespace

FeaturesFile read_features_file(const std::string& path) {
  FeaturesFile f;
  f.path = path;
  // The header first: names, dtypes and shapes, before any data is read.
  const std::vector<TensorInfo> infos = list_safetensors(path);
  const auto [k, d] = check_head(infos, path);
  std::vector<std::string> order;
  const std::map<std::string, SetNames> sets = sets_of(infos, path, &order);
  for (const char* required : {"fit", "id_val", "id_test"})
    OODKIT_CHECK(sets.count(required), "features file '", path, "': missing tensor '", required, ".features'",
                 std::string(required) == "id_val" ? " (held-out ID rows, not in fit: the validation pair's ID side)" : "");
  std::vector<std::string> val_ood, ood;
  for (const std::string& prefix : order) {
    if (prefix.rfind("val_ood.", 0) == 0) val_ood.push_back(prefix);
    if (prefix.rfind("ood.", 0) == 0) ood.push_back(prefix);
  }
  OODKIT_CHECK(val_ood.size() == 1, "features file '", path, "': ",
               val_ood.empty() ? std::string("missing tensor 'val_ood.<name>.features'")
                               : "more than one OOD validation set ('" + val_ood[0] + "', '" + val_ood[1] + "')",
               "; exactly one OOD validation set is needed (rows of an OOD set that is not a test set)");
  OODKIT_CHECK(!ood.empty(), "features file '", path, "': missing tensor 'ood.<name>.features' (no OOD test set)");
  for (const auto& [prefix, names] : sets)
    check_set_header(infos, prefix, names, k, d, prefix == "fit" || prefix == "id_test", path);
  const std::string val_name = val_ood[0].substr(8);
  for (const std::string& t : ood)
    OODKIT_CHECK(!same_images(val_name, t.substr(4)), "features file '", path, "': the OOD validation set '",
                 val_ood[0], "' is also an OOD test set ('", t,
                 "'): hyper-parameters would be chosen on test rows; validate on other rows");

  std::map<std::string, std::string> meta;
  const NamedTensors all = load_safetensors(path, &meta);
  read_metadata(meta, f);
  load_head(all, f);
  f.fit = build_set(all, "fit", sets.at("fit"), f.weight, f.bias, path);
  f.id_val = build_set(all, "id_val", sets.at("id_val"), f.weight, f.bias, path);
  f.id_test = build_set(all, "id_test", sets.at("id_test"), f.weight, f.bias, path);
  f.val_ood = build_set(all, val_ood[0], sets.at(val_ood[0]), f.weight, f.bias, path);
  for (const std::string& t : ood) f.ood.push_back(build_set(all, t, sets.at(t), f.weight, f.bias, path));
  // Every class needs fitting rows (class means, Mahalanobis' covariance).
  std::vector<int64_t> count(size_t(k), 0);
  for (int64_t y : f.fit.labels.to_vector<int64_t>()) ++count[size_t(y)];
  for (int64_t c = 0; c < k; ++c)
    OODKIT_CHECK(count[size_t(c)] > 0, "features file '", path, "': tensor 'fit.labels' has no row of class ", c,
                 " (head.weight has ", k, " classes; every class needs fitting rows)");
  return f;
}

std::pair<FeaturesFile, FeatureSet> read_features_set(const std::string& path, const std::string& set) {
  FeaturesFile f;
  f.path = path;
  const std::vector<TensorInfo> infos = list_safetensors(path);
  const auto [k, d] = check_head(infos, path);
  const std::map<std::string, SetNames> sets = sets_of(infos, path, nullptr);
  std::string known;
  for (const auto& [prefix, names] : sets) known += (known.empty() ? "" : ", ") + prefix;
  OODKIT_CHECK(sets.count(set), "features file '", path, "': no set '", set, "' (no tensor '", set,
               ".features'); the file has: ", known.empty() ? "none" : known);
  check_set_header(infos, set, sets.at(set), k, d, false, path);
  std::map<std::string, std::string> meta;
  const NamedTensors all = load_safetensors(path, &meta);
  read_metadata(meta, f);
  load_head(all, f);
  FeatureSet s = build_set(all, set, sets.at(set), f.weight, f.bias, path);
  return {std::move(f), std::move(s)};
}

std::string head_fingerprint(const Tensor& weight, const Tensor& bias) {
  uint64_t h = kDigestStart;
  for (const Tensor* t : {&weight, &bias}) {
    const Tensor c = t->detach().cpu();
    const std::string dt = dtype_name(c.dtype());
    h = fnv1a(h, dt.data(), dt.size() + 1);
    for (int64_t s : c.shape()) h = fnv1a(h, &s, sizeof(s));
    h = fnv1a(h, c.raw_data(), c.nbytes());
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a64:") + buf;
}

void write_features_file(const std::string& path, const Tensor& weight, const Tensor& bias,
                         const std::vector<std::pair<std::string, const FeatureSet*>>& sets,
                         const std::map<std::string, std::string>& metadata) {
  // A head without a bias is written with zeros (the file always has head.bias).
  NamedTensors out{{"head.weight", weight}, {"head.bias", bias.defined() ? bias : Tensor::zeros({weight.size(0)})}};
  for (const auto& [prefix, s] : sets) {
    out.emplace_back(prefix + ".features", s->features.z);
    out.emplace_back(prefix + ".logits", s->features.logits);
    if (s->labels.defined()) out.emplace_back(prefix + ".labels", s->labels);
  }
  save_safetensors(path, out, metadata);
}

std::string unavailable_on_features(const std::string& method) {
  const ood::DetectorInfo& info = ood::detector_info(method);
  for (const std::string& c : info.components)
    if (const std::string why = unavailable_on_features(c); !why.empty()) return "fuses " + c + ", which " + why;
  if (!info.components.empty()) return "";
  if (info.needs_decoder) return "needs a heatmap decoder trained on the images";
  if (info.uses_images) return "perturbs the input images, so it needs the network";
  if (info.needs.nap || info.needs.fs || info.needs.fs_ta) return "reads inner feature maps, not the penultimate vector";
  return "";
}

}  // namespace oodkit::run
