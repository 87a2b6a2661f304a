// `oodkit heatmap fit | show | lighting | oe-size`: the heatmap detector's decoder (docs/heatmap.md).
#pragma once
#include <cstdint>
#include <string>

#include "framework/dtype.h"

namespace oodkit::tools {

struct HeatmapFitOptions {
  std::string checkpoint;            // classifier; "" = the shipped ResNet-20 weights
  std::string arch;                  // "" = from the checkpoint (resnet20 for the shipped weights)
  std::string id = "cifar10";        // ID set: its train split trains the decoder
  std::string oe = "tinyimagenet:val";
  int64_t oe_skip = 1000;            // first OE rows left out: the ones `oodkit eval` validates on
  int64_t oe_limit = -1;             // OE images drawn at random from the rest (-1: all)
  int64_t id_limit = -1;             // ID training images drawn at random (-1: all not held out)
  const char* id_limit_option = "--id-limit";  // named in refusals about id_limit (study: --train-limit)
  int64_t heldout = 1000;            // held out like `oodkit eval --heldout` (same split: --split-seed)
  std::string val_ood = "tinyimagenet:val";  // validation pair after each epoch: held-out ID vs these
  int64_t val_ood_limit = 1000;      // ... first rows (eval's validation images)
  int epochs = 150;
  int64_t batch = 200;
  double lr = 2e-4;
  double width = 1.0;                // decoder channel multiplier (CPU runs)
  std::string loss_weight = "target";
  // How OE images reach the classifier's size: box (the 2x2 mean at a 2x shrink: the official code's
  // tensor Resize of its time) or pil-bilinear (Pillow's antialiased BILINEAR, today's torchvision).
  std::string oe_resize = "box";  // target: 1 + 5|y| (official code) | heatmap: 1 + 5|y - x| (paper's text)
  double max_minutes = 0;            // > 0: stop after the first epoch ending past this training time
  uint64_t seed = 0;                 // ID/OE draws, decoder initialisation and batches
  uint64_t split_seed = 0;           // the held-out split's seed, as `oodkit eval --split-seed`
  Device device = Device::cpu();
  bool tf32 = false;
  int64_t feature_batch = 256;
  std::string out_dir = "runs/heatmap";
  bool resume = false;
  int stop_after = 0;                // > 0: stop after this epoch, as if killed (tests --resume)
};
int run_heatmap_fit(const HeatmapFitOptions& o);

struct HeatmapShowOptions {
  std::string heatmap;               // fit folder or decoder file
  std::string checkpoint;            // "" = the one the decoder records
  std::string data = "cifar10,isun"; // comma-separated sets; each gets a block of `limit` images
  int64_t limit = 16;
  int64_t scale = 3;                 // tile magnification
  Device device = Device::cpu();
  std::string out = "heatmaps.png";
};
int run_heatmap_show(const HeatmapShowOptions& o);

struct HeatmapLightingOptions {
  std::string heatmap;
  std::string checkpoint;
  int64_t limit = -1;                // ID test images (-1: all)
  std::string brightness = "1.2,1.5,2.0";  // x -> min(255, b x)
  std::string contrast = "0.8,0.6,0.4";    // x -> mean + c (x - mean), mean per image and channel
  Device device = Device::cpu();
  std::string out;                   // folder for lighting.{md,json} ("" = stdout only)
};
int run_heatmap_lighting(const HeatmapLightingOptions& o);

struct HeatmapOeSizeOptions {
  HeatmapFitOptions fit;             // out_dir is the parent folder: one fit per fraction in it
  std::string fractions = "0.05,0.1,0.2,0.5";  // OE size as a fraction of the ID training size
  std::string ood = "isun,tinyimagenet,mnist,fashion-mnist";
  int64_t ood_limit = -1;
};
int run_heatmap_oe_size(const HeatmapOeSizeOptions& o);

}  // namespace oodkit::tools
