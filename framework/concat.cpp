#include "framework/concat.h"

#include "framework/error.h"

namespace oodkit {

Tensor concat_rows(const std::vector<Tensor>& parts) {
  OODKIT_CHECK(!parts.empty(), "concat_rows: no parts");
  Shape shape = parts[0].shape();
  int64_t rows = 0;
  for (const Tensor& p : parts) {
    OODKIT_CHECK(p.ndim() == int(shape.size()) && p.dtype() == parts[0].dtype() && p.device() == parts[0].device(),
                 "concat_rows: part ", p.describe(), " does not match ", parts[0].describe());
    for (size_t d = 1; d < shape.size(); ++d)
      OODKIT_CHECK(p.shape()[d] == shape[d], "concat_rows: part ", p.describe(), " does not match ",
                   parts[0].describe());
    rows += p.size(0);
  }
  shape[0] = rows;
  Tensor out = Tensor::empty(shape, parts[0].dtype(), parts[0].device());
  int64_t at = 0;
  for (const Tensor& p : parts) {
    if (p.size(0) == 0) continue;
    out.narrow(at, p.size(0)).copy_(p.detach());
    at += p.size(0);
  }
  return out;
}

}  // namespace oodkit
