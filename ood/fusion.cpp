#include "ood/fusion.h"

#include "ood/method_scores.h"
#include "ood/state_io.h"

namespace oodkit::ood {

std::string fusion_kind_name(FusionKind k) {
  switch (k) {
    case FusionKind::Geometric: return "geometric";
    case FusionKind::Linear: return "linear";
    case FusionKind::Standardized: return "standardized";
  }
  OODKIT_FAIL("unknown fusion kind");
}

FusionKind parse_fusion_kind(const std::string& name) {
  for (FusionKind k : {FusionKind::Geometric, FusionKind::Linear, FusionKind::Standardized})
    if (fusion_kind_name(k) == name) return k;
  OODKIT_FAIL("unknown fusion kind '", name, "' (geometric, linear or standardized)");
}

void Fusion::fit_components(const std::vector<double>& a_val_id, const std::vector<double>& b_val_id) {
  if (spec_.kind != FusionKind::Standardized) return;
  a_scale_ = score_scale(a_val_id);
  b_scale_ = score_scale(b_val_id);
}

std::vector<double> Fusion::combine(const std::vector<double>& a, const std::vector<double>& b) const {
  OODKIT_CHECK(a.size() == b.size(), name(), ": component scores of different lengths (", a.size(), " and ",
               b.size(), ")");
  return to_doubles(fuse(spec_, Tensor::from_vector(a, {int64_t(a.size())}), Tensor::from_vector(b, {int64_t(b.size())}),
                         param(spec_.key()), a_scale_, b_scale_));
}

void Fusion::fit_components(const ScoreList& val_id) {
  OODKIT_CHECK(val_id.size() == 2 && val_id[0] && val_id[1], name(), ": a fusion has two components, got ",
               val_id.size(), " score lists");
  fit_components(*val_id[0], *val_id[1]);
}

std::vector<double> Fusion::combine(const ScoreList& parts) const {
  OODKIT_CHECK(parts.size() == 2 && parts[0] && parts[1], name(), ": a fusion has two components, got ",
               parts.size(), " score lists");
  return combine(*parts[0], *parts[1]);
}

void Fusion::save(const std::string& path) const {
  const char* key = spec_.key();
  StateWriter w("fusion");
  w.text("name", spec_.name).text("a", spec_.a).text("b", spec_.b).text("fusion_kind", fusion_kind_name(spec_.kind));
  w.integer("geometric", spec_.kind == FusionKind::Geometric).number(key, param(key));
  if (spec_.kind == FusionKind::Standardized)
    w.number("a_mean", a_scale_.mean).number("a_std", a_scale_.std).number("b_mean", b_scale_.mean).number("b_std", b_scale_.std);
  w.save(path);
}

void Fusion::load(const std::string& path) {
  StateReader r(path, "fusion");
  const FusionKind kind = r.has("fusion_kind")      ? parse_fusion_kind(r.text("fusion_kind"))
                          : r.integer("geometric") != 0 ? FusionKind::Geometric
                                                        : FusionKind::Linear;
  FusionSpec spec{r.text("name"), r.text("a"), r.text("b"), kind, {}};
  spec.grid = spec_.grid;
  const double v = r.number(spec.key());
  ScoreScale sa, sb;
  if (kind == FusionKind::Standardized) {
    sa = {r.number("a_mean"), r.number("a_std")};
    sb = {r.number("b_mean"), r.number("b_std")};
  }
  r.expect_no_other_tensors();
  spec_ = spec;
  a_scale_ = sa;
  b_scale_ = sb;
  params_ = {{spec_.key(), v}};
}

std::unique_ptr<Fusion> Fusion::load_state(const std::string& path) {
  auto f = std::make_unique<Fusion>(FusionSpec{});
  f->load(path);
  return f;
}

}  // namespace oodkit::ood
