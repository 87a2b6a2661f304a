// Weight initialisers (PyTorch's formulas). They fill an existing tensor in place (drawn on
// the CPU from `gen`, then copied to the tensor's device) and record no autograd history.
#pragma once
#include "framework/random.h"
#include "framework/tensor.h"

namespace oodkit::nn::init {

// fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (conv/linear
// weight layouts [out, in, ...]).
int64_t fan_in(const Tensor& w);
int64_t fan_out(const Tensor& w);

void uniform_(Tensor& t, double lo, double hi, Generator& gen);
void normal_(Tensor& t, double mean, double std, Generator& gen);
void constant_(Tensor& t, double value);
// N(0, gain^2 / fan) with gain sqrt(2) (ReLU): kaiming_normal_(w, mode="fan_out") of torch when fan_out_mode.
void kaiming_normal_(Tensor& w, bool fan_out_mode, Generator& gen);
// torch's default for nn.Linear / nn.Conv2d weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void default_uniform_(Tensor& w, Generator& gen);

}  // namespace oodkit::nn::init
