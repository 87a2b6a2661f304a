#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "framework/dtype.h"

namespace oodkit::tools {

struct TrainOptions {
  std::string arch = "resnet18";
  std::string dataset = "cifar10";
  int64_t limit = -1;            // first `limit` training images only (-1: all)
  double val_fraction = 0.0;     // held out of the training set (stratified) and evaluated each epoch
  int epochs = 100;
  int64_t batch = 128;
  std::string optimizer = "sgd"; // sgd | adam | adamw
  double lr = 0.1, momentum = 0.9, weight_decay = 5e-4;
  bool nesterov = false;
  std::string schedule = "cosine";  // cosine | step | multistep | constant (per epoch)
  int64_t step_size = 30;
  std::string milestones = "50,75";
  double gamma = 0.1;
  int warmup_epochs = 0;
  bool augment = true;           // random crop (pad 4) + horizontal flip
  bool tf32 = false;
  uint64_t seed = 0;
  Device device = Device::cpu();
  std::string out_dir = "runs/train";
  bool resume = false;
  int stop_after = 0;            // > 0: stop after this epoch (as if killed), for testing --resume
};

int run_train(const TrainOptions& o);

}  // namespace oodkit::tools
