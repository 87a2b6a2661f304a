// oodkit._oodkit: the native layer of the Python package (python/oodkit/__init__.py is the API;
// docs/python.md). Arrays come in through nanobind's ndarray (NumPy arrays, PyTorch tensors, any
// DLPack producer) and are read in place (Tensor::from_external): a C-contiguous float32 input on
// the CPU (or on the GPU of a CUDA build) is never copied; nanobind makes a contiguous copy of a
// strided one before the call, float64 features are cast to float32 (the detectors' compute
// type, as in the CLI), metrics read float64 as is. Results go back as NumPy arrays that own the
// result tensor (no copy for CPU results). oodkit::Error -> oodkit.Error (a ValueError),
// oodkit::InternalError -> oodkit.InternalError (a RuntimeError), OutOfMemoryError -> MemoryError.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/ops/linear.h"
#include "framework/ops/reduce.h"
#include "framework/tensor.h"
#include "ood/detectors.h"
#include "ood/heatmap.h"
#include "ood/method_scores.h"
#include "ood/metrics.h"
#include "ood/multi_fusion.h"
#include "ood/protocol.h"
#include "ood/scores.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace oodkit::python {
namespace {

// Any array; C-contiguous (nanobind copies a strided input into a contiguous one first), read-only.
using Array = nb::ndarray<nb::ro, nb::c_contig>;
using OptArray = std::optional<Array>;

// ---- arrays in ------------------------------------------------------------------------------

DType dtype_of_array(const Array& a, const std::string& what) {
  const nb::dlpack::dtype t = a.dtype();
  if (t == nb::dtype<float>()) return DType::F32;
  if (t == nb::dtype<double>()) return DType::F64;
  if (t == nb::dtype<int64_t>()) return DType::I64;
  const char* kind = t.code == uint8_t(nb::dlpack::dtype_code::Int)    ? "int"
                     : t.code == uint8_t(nb::dlpack::dtype_code::UInt) ? "uint"
                     : t.code == uint8_t(nb::dlpack::dtype_code::Float) ? "float"
                     : t.code == uint8_t(nb::dlpack::dtype_code::Bool) ? "bool"
                                                                        : "other";
  OODKIT_FAIL(what, ": expected float32 or float64 values, got ", kind, int(t.bits));
}

Device device_of_array(const Array& a, const std::string& what) {
  if (a.device_type() == nb::device::cpu::value) return Device::cpu();
  if (a.device_type() == nb::device::cuda::value) {
    OODKIT_CHECK(OODKIT_WITH_CUDA, what, ": a CUDA tensor, but this oodkit build has no CUDA backend (build with "
                 "-DOODKIT_CUDA=ON, or pass .cpu())");
    return Device::cuda(int(a.device_id()));
  }
  OODKIT_FAIL(what, ": arrays on device type ", a.device_type(), " are not supported (CPU or CUDA)");
}

// The tensor over `a`'s memory (no copy). The array is held until the last tensor viewing it goes;
// the GIL is taken to release it (tensors may die in a thread that released the GIL).
Tensor wrap(const Array& a, const std::string& what) {
  const DType dt = dtype_of_array(a, what);
  const Device dev = device_of_array(a, what);
  Shape shape;
  for (size_t d = 0; d < a.ndim(); ++d) shape.push_back(int64_t(a.shape(d)));
  std::shared_ptr<void> owner(new Array(a), [](void* p) {
    nb::gil_scoped_acquire gil;
    delete static_cast<Array*>(p);
  });
  return Tensor::from_external(const_cast<void*>(a.data()), shape, dt, dev, std::move(owner));
}

// A float tensor of rank `ndim` named `what`, finite, as float32 (float64 is cast: a copy).
Tensor float_input(const Array& a, const std::string& what, int ndim, const char* layout) {
  Tensor t = wrap(a, what);
  OODKIT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, what, ": expected float32 or float64 values, got ",
               dtype_name(t.dtype()));
  OODKIT_CHECK(t.ndim() == ndim, what, ": expected ", ndim, "-D ", layout, ", got shape ", shape_str(t.shape()));
  if (t.dtype() == DType::F64) t = t.to(DType::F32);
  // One vectorised pass (on the array's device); the first bad row is looked for only on failure.
  if (ops::all_finite({t}).item() == 0.0) {
    const Tensor h = t.cpu();
    const int64_t n = h.numel(), per_row = h.size(0) > 0 ? n / h.size(0) : 1;
    const float* p = h.data<float>();
    int64_t i = 0;
    while (i < n && std::isfinite(p[i])) ++i;
    OODKIT_FAIL(what, ": row ", i / per_row, " holds a non-finite value (", p[i], ")");
  }
  return t;
}

Tensor labels_input(const Array& a, const std::string& what) {
  Tensor t = wrap(a, what);
  OODKIT_CHECK(t.dtype() == DType::I64, what, ": expected int64 class indices, got ", dtype_name(t.dtype()));
  OODKIT_CHECK(t.ndim() == 1, what, ": expected a 1-D array [N], got shape ", shape_str(t.shape()));
  return t;
}

// ---- results out ----------------------------------------------------------------------------

// A NumPy array owning (a CPU copy of) `t`: no copy when `t` is on the CPU.
nb::object to_numpy(Tensor t) {
  t = t.cpu();
  auto* keep = new Tensor(t);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
  std::vector<size_t> shape;
  for (int64_t s : keep->shape()) shape.push_back(size_t(s));
  nb::dlpack::dtype dt = nb::dtype<float>();
  switch (keep->dtype()) {
    case DType::F32: dt = nb::dtype<float>(); break;
    case DType::F64: dt = nb::dtype<double>(); break;
    case DType::I64: dt = nb::dtype<int64_t>(); break;
    case DType::I32: dt = nb::dtype<int32_t>(); break;
    case DType::U8: dt = nb::dtype<uint8_t>(); break;
  }
  return nb::cast(nb::ndarray<nb::numpy>(keep->raw_data(), shape.size(), shape.data(), owner, nullptr, dt));
}

nb::object to_numpy(const std::vector<double>& v) { return to_numpy(Tensor::from_vector(v, {int64_t(v.size())})); }

// ---- the native time of the calls (a debug hook) ---------------------------------------------

// Seconds spent in the native detector calls (fit, configure, score) of this process so far,
// excluding the argument conversion, checks and result wrapping around them; read by
// _oodkit._native_seconds() so that a benchmark can tell a call's overhead (wall time - native
// time). Updated with the GIL held (after each call), so Python threads never race on it.
double g_native_seconds = 0.0;

// Runs fn() without the GIL and adds its wall time to g_native_seconds.
template <class Fn>
void run_native(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  {
    nb::gil_scoped_release nogil;
    fn();
  }
  g_native_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- features -------------------------------------------------------------------------------

// One set's feature columns (ood::Features) from arrays: z [N, D] ("features"), logits [N, K]
// (or z W^T + b from the head), feature maps [N, C, H, W] ("maps": NAP, FS and, without
// features, z as their spatial mean, as extraction computes them). allow_empty: no array at all
// is fine (fitting a detector that needs only the head, e.g. ASH).
struct PyFeatures {
  ood::Features f;
  int64_t rows = -1;
};

PyFeatures make_features(const std::string& what, const OptArray& z, const OptArray& logits, const OptArray& maps,
                         const OptArray& weight, const OptArray& bias, double nap_eps, bool allow_empty) {
  PyFeatures out;
  auto rows = [&](const Tensor& t, const std::string& name) {
    if (out.rows < 0) out.rows = t.size(0);
    OODKIT_CHECK(t.size(0) == out.rows, what, ": ", name, " has ", t.size(0), " rows but the other inputs have ",
                 out.rows, " (one row per image)");
  };
  if (z) {
    out.f.z = float_input(*z, what + " features", 2, "features [N, D]");
    rows(out.f.z, "features");
  }
  if (maps) {
    const Tensor m = float_input(*maps, what + " maps", 4, "feature maps [N, C, H, W]");
    rows(m, "maps");
    ood::FeatureMapScores fm;
    run_native([&] { fm = ood::feature_map_scores(m, nap_eps); });
    out.f.nap = fm.nap;
    out.f.nap_unsquared = fm.nap_unsquared;
    out.f.fs = fm.fs;
    if (!out.f.z.defined()) out.f.z = fm.z;
  }
  if (logits) {
    out.f.logits = float_input(*logits, what + " logits", 2, "logits [N, K]");
    rows(out.f.logits, "logits");
  } else if (weight && out.f.z.defined()) {
    const Tensor w = float_input(*weight, "head weight", 2, "weight [K, D]");
    const Tensor b = bias ? float_input(*bias, "head bias", 1, "bias [K]") : Tensor();
    OODKIT_CHECK(w.size(1) == out.f.z.size(1), "head weight: shape ", shape_str(w.shape()), " does not match ", what,
                 " features of dimension ", out.f.z.size(1), " (expected [K, ", out.f.z.size(1), "])");
    OODKIT_CHECK(!b.defined() || b.size(0) == w.size(0), "head bias: shape ", shape_str(b.shape()),
                 " does not match the weight's ", w.size(0), " classes");
    run_native([&] { out.f.logits = ops::linear(out.f.z, w, b); });
  }
  OODKIT_CHECK(out.rows >= 0 || allow_empty, what, ": no input (give features, logits or maps)");
  OODKIT_CHECK(out.rows != 0, what, ": no rows");
  return out;
}

// ---- detectors ------------------------------------------------------------------------------

// What each feature detector reads (the arrays named in errors before a detector touches a
// missing column). Detectors scoring images (odin, mahalanobis_noise) or the TA path (fs_ta) run
// the network and are not available on arrays.
struct Needs {
  bool fit = false;         // must be fitted (or loaded) before scoring
  bool fit_z = false, fit_labels = false, fit_logits = false, fit_heldout = false, fit_head = false;
  bool z = false, logits = false, maps = false;
};
const std::map<std::string, Needs>& needs_table() {
  static const std::map<std::string, Needs> t = [] {
    std::map<std::string, Needs> m;
    Needs logits_only;
    logits_only.logits = true;
    m["msp"] = m["maxlogit"] = m["energy"] = logits_only;
    Needs maha;
    maha.fit = maha.fit_z = maha.fit_labels = maha.fit_logits = maha.z = true;
    m["mahalanobis"] = maha;
    Needs react;
    react.fit = react.fit_heldout = react.fit_head = react.z = true;
    m["react"] = react;
    Needs ash;
    ash.fit = ash.fit_head = ash.z = true;
    m["ash_p"] = m["ash_b"] = m["ash_s"] = ash;
    Needs dice;
    dice.fit = dice.fit_z = dice.fit_head = dice.z = true;
    m["dice"] = dice;
    Needs knn;
    knn.fit = knn.fit_z = knn.z = true;
    m["knn"] = knn;
    Needs gradnorm;
    gradnorm.logits = gradnorm.z = true;
    m["gradnorm"] = gradnorm;
    Needs vim;
    vim.fit = vim.fit_z = vim.fit_head = vim.logits = vim.z = true;
    m["vim"] = vim;
    Needs maps;
    maps.maps = true;
    m["nap"] = m["nap_mean"] = m["fs"] = maps;
    Needs heatmap;  // loaded only (on_arrays)
    heatmap.z = heatmap.logits = true;
    m["heatmap"] = heatmap;
    return m;
  }();
  return t;
}

// The components of a method: a registered fusion's two, a --fuse name's (fuse_z(knn+energy)),
// none for a detector.
std::vector<std::string> components_of(const std::string& name) {
  if (ood::is_fuse_name(name)) return ood::parse_fuse_name(name).components;
  return ood::detector_info(name).components;
}

// A registered method usable on arrays: a detector, a fusion of two such, or a fusion of several
// (--fuse's fuse_<kind>(A+B...)). "heatmap" (and its fusions) only when loaded (a saved state
// carries its decoder; oodkit.Heatmap reads a decoder).
bool on_arrays(const std::string& name, bool loaded = false) {
  if (name == "heatmap") return loaded;
  if (needs_table().count(name)) return true;
  if (ood::is_fuse_name(name)) {
    for (const std::string& c : ood::parse_fuse_name(name).components)
      if (!on_arrays(c, loaded)) return false;
    return true;
  }
  if (!ood::is_registered(name)) return false;
  const ood::DetectorInfo& info = ood::detector_info(name);
  if (info.components.empty()) return false;
  for (const std::string& c : info.components)
    if (!on_arrays(c, loaded)) return false;
  return true;
}

std::vector<std::string> array_methods() {
  std::vector<std::string> out;
  for (const std::string& n : ood::all_method_names(false))
    if (on_arrays(n)) out.push_back(n);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void check_on_arrays(const std::string& name, bool loaded = false) {
  if (on_arrays(name, loaded)) return;
  if (!ood::is_registered(name) && !ood::is_fuse_name(name))
    OODKIT_FAIL("unknown detector '", name, "'; on arrays: ", join(array_methods()));
  OODKIT_FAIL("detector '", name, "' runs the network (input perturbation, the TA path or a heatmap decoder) and "
              "cannot score arrays; on arrays: ", join(array_methods()), " (and oodkit.Heatmap for a decoder)");
}

class PyDetector {
 public:
  // params: the detector's settings; for a fusion, its own (a registered fusion's weight, or
  // w1..wK of a fuse_<kind>(...)) and its components' as "component.key" (e.g. "knn.k").
  PyDetector(const std::string& name, const std::map<std::string, double>& params) : name_(name) {
    check_on_arrays(name);
    d_ = ood::make_detector(name);
    scaled_ = dynamic_cast<ood::MultiFusion*>(d_.get()) != nullptr;
    Params own;
    std::map<std::string, Params> of_part;
    for (const auto& [k, v] : params) {
      const size_t dot = k.find('.');
      if (dot == std::string::npos) {
        own[k] = v;
        continue;
      }
      const std::string c = k.substr(0, dot);
      const std::vector<std::string> comps = d_->components();
      OODKIT_CHECK(std::find(comps.begin(), comps.end(), c) != comps.end(), name, ": setting '", k, "' names '", c,
                   "', which is not ",
                   comps.empty() ? "a component (it has none)" : "one of its components: " + join(comps));
      of_part[c][k.substr(dot + 1)] = v;
    }
    for (const std::string& c : d_->components()) parts_.push_back(std::make_shared<PyDetector>(c, of_part[c]));
    const std::vector<std::string> keys = setting_keys();
    for (const auto& [k, v] : own) {
      OODKIT_CHECK(std::find(keys.begin(), keys.end(), k) != keys.end(), name, ": no setting '", k, "'",
                   keys.empty() ? " (it has none)" : "; its settings: " + join(keys));
      OODKIT_CHECK(std::isfinite(v), name, ": setting ", k, " = ", v, " is not finite");
    }
    overrides_ = own;
    check_weights();
    if (!needs().fit && parts_.empty()) configure_now();
    if (!parts_.empty()) configure_now();  // a fusion's weights; its components are fitted separately
  }
  // A saved detector or fusion (a fusion's components from the same folder, as `oodkit score`).
  explicit PyDetector(const std::string& path, bool) {
    d_ = ood::load_detector(path);
    name_ = d_->name();
    // The saved setting is this detector's: set_params then changes only the keys it is given
    // (not the registered defaults plus those keys).
    overrides_ = d_->params();
    scaled_ = dynamic_cast<ood::MultiFusion*>(d_.get()) != nullptr;
    if (scaled_) {  // also eval's "fused" (its chosen components are saved beside it)
      for (const std::string& c : d_->components()) check_on_arrays(c, /*loaded=*/true);
    } else {
      check_on_arrays(name_, /*loaded=*/true);
    }
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    for (const std::string& c : d_->components())
      parts_.push_back(std::make_shared<PyDetector>((dir / c).string(), true));
    fitted_ = true;
  }

  const std::string& name() const { return name_; }
  ood::Params params() const { return d_->params(); }
  std::vector<std::string> components() const { return d_->components(); }
  // Fitted (or loaded), or nothing to fit: a detector without fitted state, a fusion whose
  // components are all fitted (geometric and linear fusions fit nothing themselves; a
  // fuse_<kind>(...) fits its components' scales in fit()).
  bool fitted() const {
    if (fitted_ || scaled_) return fitted_;
    if (parts_.empty()) return !needs().fit;
    for (const auto& p : parts_)
      if (!p->fitted()) return false;
    return true;
  }
  std::vector<std::pair<std::string, std::vector<double>>> grid() const { return d_->axes(); }
  const std::vector<std::shared_ptr<PyDetector>>& parts() const { return parts_; }

  void fit(const PyFeatures& train, const OptArray& labels, const PyFeatures* heldout, const OptArray& weight,
           const OptArray& bias) {
    if (scaled_)
      OODKIT_CHECK(heldout, name_, ".fit: needs heldout= (held-out ID images: each component's score scale is "
                   "fitted on its scores there, as `oodkit eval --fuse` does on the validation ID set)");
    for (auto& p : parts_) p->fit(train, labels, heldout, weight, bias);
    if (scaled_) {
      std::vector<std::vector<double>> held;
      for (const auto& p : parts_) held.push_back(p->score_doubles(*heldout, "heldout"));
      ood::Detector::ScoreList list;
      for (const auto& v : held) list.push_back(&v);
      d_->fit_components(list);
    }
    if (parts_.empty()) {
      const Needs n = needs();
      OODKIT_CHECK(!n.fit_z || train.f.z.defined(), name_, ".fit: needs features (or maps) of the ID training set");
      OODKIT_CHECK(!n.fit_labels || labels, name_, ".fit: needs labels (int64 class indices of the training rows)");
      OODKIT_CHECK(!n.fit_logits || train.f.logits.defined(), name_,
                   ".fit: needs logits= or head= (the number of classes comes from them)");
      OODKIT_CHECK(!n.fit_head || weight, name_, ".fit: needs head=(W, b), the classifier's last layer");
      OODKIT_CHECK(!n.fit_heldout || (heldout && heldout->f.z.defined()), name_,
                   ".fit: needs heldout= features of held-out ID images (its activation percentile)");
      ood::FitContext ctx;
      ctx.train = &train.f;
      if (labels) {
        ctx.train_labels = labels_input(*labels, "labels");
        OODKIT_CHECK(ctx.train_labels.size(0) == train.rows, "labels: ", ctx.train_labels.size(0),
                     " entries but the training features have ", train.rows, " rows");
        if (n.fit_logits) {
          const int64_t k = train.f.logits.size(1);
          const int64_t* l = ctx.train_labels.data<int64_t>();
          for (int64_t i = 0; i < ctx.train_labels.size(0); ++i)
            OODKIT_CHECK(l[i] >= 0 && l[i] < k, "labels: entry ", i, " is ", l[i], ", outside the ", k,
                         " classes of the logits/head");
        }
      }
      ood::Features heldout_copy;
      if (heldout) {  // ReAct keeps it (for later settings): a copy, not the caller's array
        heldout_copy = heldout->f;
        heldout_copy.z = heldout->f.z.clone();
        ctx.heldout = &heldout_copy;
      }
      if (weight) {  // kept by the detectors that use the head: copies (small)
        ctx.weight = float_input(*weight, "head weight", 2, "weight [K, D]").clone();
        if (bias) ctx.bias = float_input(*bias, "head bias", 1, "bias [K]").clone();
        if (train.f.z.defined())
          OODKIT_CHECK(ctx.weight.size(1) == train.f.z.size(1), "head weight: shape ", shape_str(ctx.weight.shape()),
                       " does not match the features' dimension ", train.f.z.size(1));
      }
      ood::Features train_copy = train.f;
      if (name_ == "dice") train_copy.z = train.f.z.clone();  // DICE keeps it (for later settings)
      if (name_ == "dice") ctx.train = &train_copy;
      run_native([&] {
        d_->fit(ctx);
        if (n.fit) configure_locked();
      });
    }
    fitted_ = true;
  }

  void set_params(const std::map<std::string, double>& params) {
    const std::vector<std::string> keys = setting_keys();
    Params next = overrides_;
    for (const auto& [k, v] : params) {
      OODKIT_CHECK(std::find(keys.begin(), keys.end(), k) != keys.end(), name_, ": no setting '", k, "'");
      OODKIT_CHECK(std::isfinite(v), name_, ": setting ", k, " = ", v, " is not finite");
      next[k] = v;
    }
    OODKIT_CHECK(fitted() || !needs().fit, name_, ": fit it before choosing its settings");
    std::swap(overrides_, next);
    try {
      check_weights();
    } catch (...) {
      std::swap(overrides_, next);  // a refused setting leaves the detector as it was
      throw;
    }
    configure_now();
  }

  // [N] scores, higher = more ID: float32 from a detector, float64 from a fusion (it combines
  // its components' scores in double, as the CLI).
  nb::object score(const PyFeatures& x) const {
    OODKIT_CHECK(fitted(), name_, ": not fitted; call fit() first (or oodkit.load a saved one)");
    if (!parts_.empty()) return to_numpy(score_doubles(x));
    check_score_inputs(x);
    Tensor s;
    run_native([&] { s = d_->score(x.f); });
    return to_numpy(s);
  }

  void save(const std::string& path) const {
    OODKIT_CHECK(fitted(), name_, ": not fitted; nothing to save (call fit() first)");
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    for (const auto& p : parts_) p->save((dir / p->name()).string());
    d_->save(path);
  }

 private:
  using Params = std::map<std::string, double>;
  Needs needs() const {
    auto it = needs_table().find(name_);
    return it == needs_table().end() ? Needs{} : it->second;
  }
  void check_score_inputs(const PyFeatures& x, const char* what = "score") const {
    const Needs n = needs();
    OODKIT_CHECK(!n.z || x.f.z.defined(), name_, ".", what, ": needs features [N, D] (or maps)");
    OODKIT_CHECK(!n.logits || x.f.logits.defined(), name_, ".", what, ": needs logits= [N, K] or head=(W, b)");
    OODKIT_CHECK(!n.maps || x.f.nap.defined(), name_, ".", what, ": needs maps= [N, C, H, W] (the last feature maps)");
  }
  // The settings a user may give: the registered axes, or a fuse_<kind>(...)'s weights w1..wK.
  std::vector<std::string> setting_keys() const {
    std::vector<std::string> keys;
    if (scaled_) {
      for (size_t i = 0; i < d_->components().size(); ++i) keys.push_back("w" + std::to_string(i + 1));
    } else {
      for (const auto& [k, v] : d_->axes()) keys.push_back(k);
    }
    return keys;
  }
  // A fuse_<kind>(...)'s weights (given ones, the others from the defaults) are >= 0 and sum to 1.
  void check_weights() const {
    if (!scaled_) return;
    ood::Params p = d_->defaults();
    for (const auto& [k, v] : overrides_) p[k] = v;
    double sum = 0.0;
    for (const auto& [k, v] : p) {
      OODKIT_CHECK(v >= 0.0, name_, ": weight ", k, " = ", v, " is negative (weights lie on the simplex)");
      sum += v;
    }
    OODKIT_CHECK(std::fabs(sum - 1.0) <= 1e-9, name_, ": the weights sum to ", sum, ", not 1 (give all of w1..w",
                 p.size(), ")");
  }
  // `what` names the set in errors ("score", "heldout").
  std::vector<double> score_doubles(const PyFeatures& x, const char* what = "score") const {
    if (parts_.empty()) {
      check_score_inputs(x, what);
      std::vector<double> s;
      run_native([&] { s = ood::to_doubles(d_->score(x.f)); });
      return s;
    }
    std::vector<std::vector<double>> parts;
    for (const auto& p : parts_) parts.push_back(p->score_doubles(x, what));
    ood::Detector::ScoreList list;
    for (const auto& v : parts) list.push_back(&v);
    std::vector<double> s;
    run_native([&] { s = d_->combine(list); });
    return s;
  }
  void configure_now() {
    run_native([&] { configure_locked(); });
  }
  void configure_locked() {
    ood::Params p = d_->defaults();
    for (const auto& [k, v] : overrides_) p[k] = v;
    d_->configure(p);
  }

  std::string name_;
  std::unique_ptr<ood::Detector> d_;
  std::vector<std::shared_ptr<PyDetector>> parts_;
  Params overrides_;
  bool fitted_ = false;
  bool scaled_ = false;  // a MultiFusion: its scales are fitted on held-out ID scores (fit or load)
};

// ---- metrics --------------------------------------------------------------------------------

std::map<std::string, double> metrics(const Array& id_scores, const Array& ood_scores) {
  Tensor a = wrap(id_scores, "id_scores"), b = wrap(ood_scores, "ood_scores");
  for (const auto& [t, what] : {std::pair<const Tensor&, const char*>{a, "id_scores"}, {b, "ood_scores"}}) {
    OODKIT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, what, ": expected float32 or float64 scores, got ",
                 dtype_name(t.dtype()));
    OODKIT_CHECK(t.ndim() == 1, what, ": expected a 1-D array of scores, got shape ", shape_str(t.shape()));
  }
  ood::OodMetrics m;
  {
    nb::gil_scoped_release nogil;
    m = ood::compute_ood_metrics(a, b);
  }
  return {{"auroc", m.auroc},
          {"aupr_in", m.aupr_in},
          {"aupr_out", m.aupr_out},
          {"fpr95", m.fpr_at_95_tpr},
          {"fpr95_openood", m.fpr_at_95_tpr_openood},
          {"fpr95_threshold", m.classic_threshold},
          {"fpr95_tpr", m.classic_tpr},
          {"fpr95_openood_threshold", m.openood_threshold},
          {"fpr95_openood_tpr", m.openood_tpr},
          {"n_id", double(m.n_id)},
          {"n_ood", double(m.n_ood)}};
}

// ---- the protocol ---------------------------------------------------------------------------

nb::list evaluate(const PyFeatures& train, const Array& labels, const PyFeatures& val_id, const PyFeatures& val_ood,
                  const PyFeatures& test_id, const std::vector<std::pair<std::string, const PyFeatures*>>& test_ood,
                  const OptArray& weight, const OptArray& bias, const std::vector<std::string>& methods,
                  const std::vector<std::string>& settings, bool tune, const std::string& save_dir) {
  OODKIT_CHECK(!methods.empty(), "evaluate: no methods");
  for (const std::string& m : methods) check_on_arrays(m);
  OODKIT_CHECK(!test_ood.empty(), "evaluate: no OOD test set");
  ood::ProtocolInput in;
  in.tuning = tune ? ood::Tuning::All : ood::Tuning::None;
  in.settings = ood::parse_settings(settings);
  in.fit.train = &train.f;
  in.fit.train_labels = labels_input(labels, "labels");
  OODKIT_CHECK(in.fit.train_labels.size(0) == train.rows, "labels: ", in.fit.train_labels.size(0),
               " entries but the training features have ", train.rows, " rows");
  auto need_logits = [](const PyFeatures& s, const std::string& what) {
    OODKIT_CHECK(s.f.logits.defined() && s.f.z.defined(), "evaluate: ", what,
                 " needs features and logits (or head=(W, b) to compute them)");
  };
  need_logits(train, "train");
  need_logits(val_id, "val_id");
  need_logits(val_ood, "val_ood");
  need_logits(test_id, "test_id");
  in.val_id = {"val_id", val_id.f, {}};
  in.fit.heldout = &in.val_id.features;
  in.val_ood = {"val_ood", val_ood.f, {}};
  in.test_id = {"test_id", test_id.f, {}};
  for (const auto& [n, s] : test_ood) {
    need_logits(*s, n);
    in.test_ood.push_back({n, s->f, {}});
  }
  if (weight) {
    in.fit.weight = float_input(*weight, "head weight", 2, "weight [K, D]");
    if (bias) in.fit.bias = float_input(*bias, "head bias", 1, "bias [K]");
  }
  for (const std::string& m : methods) {
    const std::vector<std::string> comps = components_of(m);
    const std::vector<std::string> all = comps.empty() ? std::vector<std::string>{m} : comps;
    for (const std::string& c : all) {
      const Needs n = needs_table().at(c);
      OODKIT_CHECK(!n.fit_head || weight, "evaluate: ", m, " needs head=(W, b)");
      OODKIT_CHECK(!n.maps || train.f.nap.defined(), "evaluate: ", m, " needs maps= in every set");
    }
  }
  in.save_dir = save_dir;
  std::vector<ood::MethodResult> results;
  {
    nb::gil_scoped_release nogil;
    results = ood::run_protocol(in, methods);
  }
  nb::list rows;
  for (const ood::MethodResult& r : results)
    for (size_t i = 0; i < r.per_set.size(); ++i) {
      const ood::OodMetrics& m = r.per_set[i];
      nb::dict row;
      row["method"] = r.name;
      row["ood_set"] = in.test_ood[i].name;
      row["auroc"] = m.auroc;
      row["aupr_in"] = m.aupr_in;
      row["aupr_out"] = m.aupr_out;
      row["fpr95"] = m.fpr_at_95_tpr;
      row["fpr95_openood"] = m.fpr_at_95_tpr_openood;
      row["val_auroc"] = r.val_auroc;
      row["params"] = nb::cast(std::map<std::string, double>(r.chosen.begin(), r.chosen.end()));
      row["threshold"] = r.threshold;
      rows.append(row);
    }
  return rows;
}

// ---- the heatmap detector -------------------------------------------------------------------

class PyHeatmap {
 public:
  explicit PyHeatmap(const std::string& path) {
    std::string file = path;
    if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "decoder.safetensors").string();
    model_ = ood::HeatmapModel::load(file);
  }
  nb::object heatmaps(const PyFeatures& x, int64_t batch) {
    check(x);
    Tensor h;
    {
      nb::gil_scoped_release nogil;
      h = model_->heatmaps(x.f.z, x.f.logits, batch);
    }
    return to_numpy(h);
  }
  nb::object score(const PyFeatures& x, int64_t batch) {
    check(x);
    Tensor s;
    {
      nb::gil_scoped_release nogil;
      s = ood::heatmap_score(model_->heatmaps(x.f.z, x.f.logits, batch));
    }
    return to_numpy(s);
  }
  int64_t feature_dim() const { return model_->info().config.feature_dim; }
  int64_t num_classes() const { return model_->info().config.num_classes; }

 private:
  void check(const PyFeatures& x) const {
    OODKIT_CHECK(x.f.z.defined() && x.f.logits.defined(), "heatmap: needs features [N, D] and logits [N, K] (or head)");
    OODKIT_CHECK(x.f.z.size(1) == feature_dim(), "heatmap: features have dimension ", x.f.z.size(1),
                 " but the decoder was trained on ", feature_dim());
    OODKIT_CHECK(x.f.logits.size(1) == num_classes(), "heatmap: logits have ", x.f.logits.size(1),
                 " classes but the decoder was trained with ", num_classes());
  }
  std::shared_ptr<ood::HeatmapModel> model_;
};

PyObject* g_error = nullptr;
PyObject* g_internal = nullptr;

}  // namespace
}  // namespace oodkit::python

NB_MODULE(_oodkit, m) {
  using namespace oodkit::python;
  m.doc() = "oodkit's native layer (use the oodkit package)";
  g_error = PyErr_NewExceptionWithDoc("oodkit.Error", "Bad input to oodkit (a ValueError): oodkit's one-line message.",
                                      PyExc_ValueError, nullptr);
  g_internal = PyErr_NewExceptionWithDoc("oodkit.InternalError", "A broken internal invariant (an oodkit bug).",
                                         PyExc_RuntimeError, nullptr);
  m.attr("Error") = nb::handle(g_error);
  m.attr("InternalError") = nb::handle(g_internal);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const oodkit::InternalError& e) {
      PyErr_SetString(g_internal, e.what());
    } catch (const oodkit::OutOfMemoryError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const oodkit::Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });
  m.attr("with_cuda") = bool(OODKIT_WITH_CUDA);

  nb::class_<PyFeatures>(m, "_Features").def_prop_ro("rows", [](const PyFeatures& f) { return f.rows; });
  m.def("_native_seconds", [] { return g_native_seconds; },
        "Seconds spent in native detector work (fit, score, logits from a head, feature-map scores) by "
        "this process so far, without the argument conversion and checks around it (a debug hook: "
        "a call's overhead is its wall time minus the growth of this total).");
  m.def("_features", &make_features, "what"_a, "features"_a.none(), "logits"_a.none(), "maps"_a.none(),
        "weight"_a.none(), "bias"_a.none(), "nap_eps"_a = 1.0, "allow_empty"_a = false);

  nb::class_<PyDetector>(m, "_Detector")
      .def(nb::init<const std::string&, const std::map<std::string, double>&>(), "name"_a, "params"_a)
      .def_static("load", [](const std::string& path) { return std::make_shared<PyDetector>(path, true); })
      .def_prop_ro("name", &PyDetector::name)
      .def_prop_ro("params", &PyDetector::params)
      .def_prop_ro("components", &PyDetector::components)
      .def_prop_ro("fitted", &PyDetector::fitted)
      .def_prop_ro("grid", &PyDetector::grid)
      .def("fit", &PyDetector::fit, "train"_a, "labels"_a.none(), "heldout"_a.none(), "weight"_a.none(),
           "bias"_a.none())
      .def("set_params", &PyDetector::set_params)
      .def("score", &PyDetector::score)
      .def("save", &PyDetector::save);

  nb::class_<PyHeatmap>(m, "_Heatmap")
      .def(nb::init<const std::string&>())
      .def("heatmaps", &PyHeatmap::heatmaps)
      .def("score", &PyHeatmap::score)
      .def_prop_ro("feature_dim", &PyHeatmap::feature_dim)
      .def_prop_ro("num_classes", &PyHeatmap::num_classes);

  m.def("metrics", &metrics, "id_scores"_a, "ood_scores"_a);
  m.def("evaluate", &evaluate);
  m.def("methods", &array_methods);
  m.def("all_methods", [] { return oodkit::ood::all_method_names(true); });
  // Debug hook for the no-copy contract: the address of the tensor an input becomes, exactly as
  // every function above converts it (wrap), and of its float32 form (float_input).
  m.def("_tensor_address", [](const Array& a) { return reinterpret_cast<uintptr_t>(wrap(a, "array").raw_data()); });
  // Debug hook for the error mapping: raises the oodkit error of `kind` ("user", "internal", "memory").
  m.def("_raise", [](const std::string& kind) {
    if (kind == "internal") OODKIT_UNREACHABLE("planted");
    if (kind == "memory") throw oodkit::OutOfMemoryError("planted");
    OODKIT_FAIL("planted");
  });
  m.def("_float_address", [](const Array& a) {
    return reinterpret_cast<uintptr_t>(float_input(a, "array", int(a.ndim()), "array").raw_data());
  });
}
