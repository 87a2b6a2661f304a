#include "ood/heatmap_targets.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "framework/error.h"
#include "framework/safetensors.h"
#include "ood/knn_by_class.h"

namespace oodkit::ood {

namespace {

constexpr const char* kOp = "nearest_id_targets";

void check_features_and_pred(const Tensor& f, const Tensor& pred, const char* fname, const char* pname) {
  check_defined(f, kOp, fname);
  check_ndim(f, 2, kOp, fname);
  check_dtype(f, DType::F32, kOp, fname);
  check_defined(pred, kOp, pname);
  check_dtype(pred, DType::I64, kOp, pname);
  check_ndim(pred, 1, kOp, pname);
  OODKIT_CHECK(pred.size(0) == f.size(0), kOp, ": ", fname, " has ", f.size(0), " rows but ", pname, " has ",
               pred.size(0), " entries");
}

}  // namespace

HeatmapTargets nearest_id_targets(const Tensor& id_features, const Tensor& id_pred, const Tensor& oe_features,
                                  const Tensor& oe_pred, std::vector<std::string> oe_images, const Tensor& id_rows) {
  check_features_and_pred(id_features, id_pred, "id_features", "id_pred");
  check_features_and_pred(oe_features, oe_pred, "oe_features", "oe_pred");
  OODKIT_CHECK(oe_images.empty() || int64_t(oe_images.size()) == oe_features.size(0), kOp, ": ", oe_images.size(),
               " OE image names for ", oe_features.size(0), " OE rows");
  const int64_t n_id = id_features.size(0);
  std::vector<int64_t> rows;
  if (id_rows.defined()) {
    check_dtype(id_rows, DType::I64, kOp, "id_rows");
    check_ndim(id_rows, 1, kOp, "id_rows");
    OODKIT_CHECK(id_rows.size(0) == n_id, kOp, ": id_rows has ", id_rows.size(0), " entries for ", n_id, " ID rows");
    rows = id_rows.cpu().to_vector<int64_t>();
    for (size_t i = 0; i < rows.size(); ++i)
      OODKIT_CHECK(rows[i] >= 0 && (i == 0 || rows[i] > rows[i - 1]), kOp, ": id_rows must be increasing and >= 0; id_rows[",
                   i, "] = ", rows[i]);
  } else {
    for (int64_t i = 0; i < n_id; ++i) rows.push_back(i);
  }
  const KnnResult nn = knn_search_by_class(oe_features, oe_pred, id_features, id_pred, 1);
  HeatmapTargets t;
  t.id_features = id_features.cpu();
  t.id_pred = id_pred.cpu();
  t.id_rows = Tensor::from_vector(rows, {n_id});
  t.oe_features = oe_features.cpu();
  t.oe_pred = oe_pred.cpu();
  std::vector<int64_t> idx = nn.indices.cpu().to_vector<int64_t>();
  for (int64_t& i : idx) i = rows[size_t(i)];
  t.oe_nn_index = Tensor::from_vector(idx, {oe_features.size(0)});
  t.oe_nn_distance = nn.distances.cpu().reshape({oe_features.size(0)});
  t.oe_images = std::move(oe_images);
  return t;
}

Tensor oe_heatmap_targets(const Tensor& id_images, const Tensor& oe_images, const Tensor& nn_index) {
  const char* op = "oe_heatmap_targets";
  check_defined(id_images, op, "id_images");
  check_defined(oe_images, op, "oe_images");
  check_ndim(id_images, 4, op, "id_images");
  check_ndim(oe_images, 4, op, "oe_images");
  check_dtype(id_images, DType::F32, op, "id_images");
  check_dtype(oe_images, DType::F32, op, "oe_images");
  check_dtype(nn_index, DType::I64, op, "nn_index");
  check_ndim(nn_index, 1, op, "nn_index");
  OODKIT_CHECK(!id_images.is_cuda() && !oe_images.is_cuda(), op, ": images must be on the CPU");
  const int64_t b = oe_images.size(0), n_id = id_images.size(0);
  OODKIT_CHECK(nn_index.size(0) == b, op, ": nn_index has ", nn_index.size(0), " entries for ", b, " OE images");
  for (int d = 1; d < 4; ++d)
    OODKIT_CHECK(id_images.size(d) == oe_images.size(d), op, ": id_images ", shape_str(id_images.shape()),
                 " and oe_images ", shape_str(oe_images.shape()), " differ in image shape");
  const int64_t per = oe_images.numel() / std::max<int64_t>(b, 1);
  const std::vector<int64_t> idx = nn_index.cpu().to_vector<int64_t>();
  Tensor out = Tensor::empty(oe_images.shape(), DType::F32, Device::cpu());
  const float* xi = id_images.data<float>();
  const float* xo = oe_images.data<float>();
  float* y = out.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t n = idx[size_t(i)];
    OODKIT_CHECK(n >= 0 && n < n_id, op, ": nn_index[", i, "] = ", n, " is outside [0, ", n_id, ")");
    for (int64_t e = 0; e < per; ++e) y[i * per + e] = xi[n * per + e] - xo[i * per + e];
  }
  return out;
}

std::vector<int64_t> oe_nn_positions(const HeatmapTargets& t) {
  const std::vector<int64_t> rows = t.id_rows.to_vector<int64_t>(), nn = t.oe_nn_index.to_vector<int64_t>();
  std::vector<int64_t> pos(nn.size());
  for (size_t i = 0; i < nn.size(); ++i) {
    const auto it = std::lower_bound(rows.begin(), rows.end(), nn[i]);
    OODKIT_CHECK(it != rows.end() && *it == nn[i], "heatmap targets: oe_nn_index[", i, "] = ", nn[i],
                 " is not one of the ID rows (id_rows)");
    pos[i] = it - rows.begin();
  }
  return pos;
}

void save_heatmap_targets(const std::string& path, const HeatmapTargets& t,
                          const std::map<std::string, std::string>& meta) {
  const NamedTensors tensors = {{"id_features", t.id_features}, {"id_pred", t.id_pred}, {"id_rows", t.id_rows},
                                {"oe_features", t.oe_features}, {"oe_pred", t.oe_pred},
                                {"oe_nn_index", t.oe_nn_index}, {"oe_nn_distance", t.oe_nn_distance}};
  std::map<std::string, std::string> all = meta;
  all["format"] = "oodkit-heatmap-targets-1";
  all["oe_images"] = nlohmann::json(t.oe_images).dump();
  save_safetensors(path, tensors, all);
}

HeatmapTargets load_heatmap_targets(const std::string& path, std::map<std::string, std::string>* meta_out) {
  std::map<std::string, std::string> meta;
  const NamedTensors loaded = load_safetensors(path, &meta);
  std::map<std::string, Tensor> by_name(loaded.begin(), loaded.end());
  const auto get = [&](const char* name, DType dtype, int ndim) {
    const auto it = by_name.find(name);
    OODKIT_CHECK(it != by_name.end(), "heatmap targets ", path, ": no tensor '", name, "'");
    OODKIT_CHECK(it->second.dtype() == dtype && it->second.ndim() == ndim, "heatmap targets ", path, ": '", name,
                 "' is ", it->second.describe(), ", expected ", dtype_name(dtype), " with ", ndim, " dimensions");
    return it->second;
  };
  HeatmapTargets t;
  t.id_features = get("id_features", DType::F32, 2);
  t.id_pred = get("id_pred", DType::I64, 1);
  if (by_name.count("id_rows")) {
    t.id_rows = get("id_rows", DType::I64, 1);
  } else {
    std::vector<int64_t> r(size_t(t.id_features.size(0)));
    for (size_t i = 0; i < r.size(); ++i) r[i] = int64_t(i);
    t.id_rows = Tensor::from_vector(r, {t.id_features.size(0)});
  }
  t.oe_features = get("oe_features", DType::F32, 2);
  t.oe_pred = get("oe_pred", DType::I64, 1);
  t.oe_nn_index = get("oe_nn_index", DType::I64, 1);
  t.oe_nn_distance = get("oe_nn_distance", DType::F32, 1);
  const int64_t n_id = t.id_features.size(0), n_oe = t.oe_features.size(0);
  OODKIT_CHECK(t.id_pred.size(0) == n_id && t.id_rows.size(0) == n_id && t.oe_pred.size(0) == n_oe && t.oe_nn_index.size(0) == n_oe &&
                   t.oe_nn_distance.size(0) == n_oe && t.oe_features.size(1) == t.id_features.size(1),
               "heatmap targets ", path, ": inconsistent sizes (", n_id, " ID rows, ", n_oe, " OE rows)");
  const std::vector<int64_t> nn = t.oe_nn_index.to_vector<int64_t>();
  const std::vector<int64_t> id_pred = t.id_pred.to_vector<int64_t>(), oe_pred = t.oe_pred.to_vector<int64_t>();
  const std::vector<int64_t> rows = t.id_rows.to_vector<int64_t>();
  for (size_t i = 0; i < rows.size(); ++i)
    OODKIT_CHECK(rows[i] >= 0 && (i == 0 || rows[i] > rows[i - 1]), "heatmap targets ", path,
                 ": id_rows must be increasing and >= 0; id_rows[", i, "] = ", rows[i]);
  for (size_t i = 0; i < nn.size(); ++i) {
    const auto it = std::lower_bound(rows.begin(), rows.end(), nn[i]);
    OODKIT_CHECK(it != rows.end() && *it == nn[i], "heatmap targets ", path, ": oe_nn_index[", i, "] = ", nn[i],
                 " is not one of the ID rows (id_rows)");
    const size_t p = size_t(it - rows.begin());
    OODKIT_CHECK(id_pred[p] == oe_pred[i], "heatmap targets ", path, ": OE row ", i, " (class ", oe_pred[i],
                 ") points to ID row ", nn[i], " of class ", id_pred[p]);
  }
  const auto it = meta.find("oe_images");
  if (it != meta.end()) {
    try {
      t.oe_images = nlohmann::json::parse(it->second).get<std::vector<std::string>>();
    } catch (const std::exception& e) {
      OODKIT_FAIL("heatmap targets ", path, ": metadata 'oe_images' is not a JSON list of strings (", e.what(), ")");
    }
    OODKIT_CHECK(t.oe_images.empty() || int64_t(t.oe_images.size()) == n_oe, "heatmap targets ", path, ": ",
                 t.oe_images.size(), " OE image names for ", n_oe, " OE rows");
  }
  if (meta_out) *meta_out = meta;
  return t;
}

}  // namespace oodkit::ood
