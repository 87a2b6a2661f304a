#include "framework/nn/init.h"

#include <cmath>

namespace oodkit::nn::init {

namespace {
int64_t receptive(const Tensor& w) {
  int64_t r = 1;
  for (int i = 2; i < w.ndim(); ++i) r *= w.size(i);
  return r;
}
void assign(Tensor& t, const Tensor& values) {
  t.copy_(values.to(t.dtype()).to(t.device()));
}
}  // namespace

int64_t fan_in(const Tensor& w) {
  OODKIT_CHECK(w.ndim() >= 2, "fan_in: weight needs at least 2 dimensions, got ", w.describe());
  return w.size(1) * receptive(w);
}

int64_t fan_out(const Tensor& w) {
  OODKIT_CHECK(w.ndim() >= 2, "fan_out: weight needs at least 2 dimensions, got ", w.describe());
  return w.size(0) * receptive(w);
}

void uniform_(Tensor& t, double lo, double hi, Generator& gen) {
  assign(t, Tensor::uniform(t.shape(), lo, hi, gen, DType::F64));
}

void normal_(Tensor& t, double mean, double std, Generator& gen) {
  Tensor v = Tensor::randn(t.shape(), gen, DType::F64);
  double* p = v.data<double>();
  for (int64_t i = 0, n = v.numel(); i < n; ++i) p[i] = mean + std * p[i];
  assign(t, v);
}

void constant_(Tensor& t, double value) { t.fill_(value); }

void kaiming_normal_(Tensor& w, bool fan_out_mode, Generator& gen) {
  const double fan = double(fan_out_mode ? fan_out(w) : fan_in(w));
  normal_(w, 0.0, std::sqrt(2.0 / fan), gen);
}

void default_uniform_(Tensor& w, Generator& gen) {
  const double bound = 1.0 / std::sqrt(double(fan_in(w)));
  uniform_(w, -bound, bound, gen);
}

}  // namespace oodkit::nn::init
