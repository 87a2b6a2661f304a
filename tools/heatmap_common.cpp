#include "tools/heatmap_common.h"

#include <CLI/CLI.hpp>

#include "data/registry.h"
#include "run/normalization.h"
#include "ood/protocol.h"
#include "ood/scores.h"

namespace oodkit::tools {

ClassifierSetup setup_classifier(const std::string& checkpoint, const std::string& arch, const std::string& id,
                                 Device device) {
  ClassifierSetup s;
  s.checkpoint = checkpoint.empty() ? shipped_weights_path() : checkpoint;
  const std::string a = checkpoint.empty() && arch.empty() ? "resnet20" : arch;
  data::LoadOptions lo;
  lo.limit = 1;
  const data::Dataset probe = data::load_dataset(id, "", lo);
  s.image_size = probe.images.size(2);
  s.lc = load_classifier(s.checkpoint, a, probe.num_classes, int(s.image_size));
  s.fingerprint = ood::module_fingerprint(*s.lc.model);
  s.lc.model->to(device);
  s.lc.model->eval();
  s.norm = run::choose_normalization("", "", s.lc.metadata, s.checkpoint, id).norm;
  return s;
}

HeatmapSetup setup_heatmap(const std::string& heatmap, const std::string& checkpoint, Device device) {
  OODKIT_CHECK(!heatmap.empty(), "--heatmap is required (a folder written by `oodkit heatmap fit`)");
  HeatmapSetup h;
  h.decoder_path = heatmap_decoder_path(heatmap);
  h.model = ood::HeatmapModel::load(h.decoder_path);
  const ood::HeatmapModelInfo& info = h.model->info();
  const std::string ckpt = checkpoint.empty() ? info.classifier_checkpoint : checkpoint;
  h.classifier = setup_classifier(ckpt, info.classifier_arch, info.id_dataset, device);
  h.model->check_classifier(h.classifier.fingerprint, "the heatmap decoder '" + h.decoder_path + "'");
  return h;
}

std::vector<double> heatmap_scores(ood::HeatmapModel& model, const ood::Features& f) {
  return ood::to_doubles(ood::heatmap_score(model.heatmaps(f.z, f.logits)));
}

void add_heatmap_fit_options(CLI::App* c, HeatmapFitOptions& f, Command& command) {
  c->add_option("--checkpoint", f.checkpoint, "classifier safetensors, or a torch.save .pt/.pth state dict (default: the shipped ResNet-20)");
  c->add_option("--arch", f.arch, "architecture (default: the checkpoint's, else resnet20)");
  c->add_option("--id", f.id, "ID dataset (its train split)")->capture_default_str();
  c->add_option("--oe", f.oe, "outlier-exposure set name[:split]")->capture_default_str();
  c->add_option("--oe-skip", f.oe_skip, "first OE images left out (eval's validation images)")->capture_default_str();
  c->add_option("--oe-limit", f.oe_limit, "OE images drawn at random from the rest (-1: all)")->capture_default_str();
  c->add_option("--id-limit", f.id_limit, "ID training images drawn at random (-1: all)")->capture_default_str();
  c->add_option("--heldout", f.heldout, "ID training images held out (as eval --heldout)")->capture_default_str();
  c->add_option("--val-ood", f.val_ood, "OOD validation set (AUROC after each epoch; '' = none)")->capture_default_str();
  c->add_option("--val-ood-limit", f.val_ood_limit)->capture_default_str();
  add_image_fit_option(c);
  c->add_option("--epochs", f.epochs)->capture_default_str()->check(positive_count());
  c->add_option("--batch", f.batch)->capture_default_str()->check(positive_count());
  c->add_option("--lr", f.lr, "Adam learning rate (betas 0.5, 0.999)")->capture_default_str();
  c->add_option("--width", f.width, "decoder channel multiplier")->capture_default_str()->check(positive_number());
  c->add_option("--oe-resize", f.oe_resize,
                "how OE images are shrunk to the classifier's size: box (area mean; the official code) or "
                "pil-bilinear (Pillow's antialiased bilinear, as torchvision on PIL images; smoother)")
      ->capture_default_str();
  c->add_option("--loss-weight", f.loss_weight,
                "what the loss weight 1 + 5|.| reads: target (the target image y, as the official code) or heatmap "
                "(the defined heatmap y - x, as the paper's text: ID pixels weigh 1)")
      ->capture_default_str();
  c->add_option("--max-minutes", f.max_minutes, "stop after the first epoch ending past this much training time")
      ->capture_default_str();
  c->add_option("--seed", f.seed, "ID/OE draws, decoder initialisation, batch order")->capture_default_str();
  c->add_option("--split-seed", f.split_seed,
                "seed of the held-out ID split (as `oodkit eval --split-seed`: eval refuses a decoder whose "
                "training rows are its validation rows)")
      ->capture_default_str();
  add_device_option(c, command);
  c->add_flag("--tf32", f.tf32, "TF32 math in cuDNN/cuBLAS");
  c->add_option("--out", f.out_dir, "output folder")->capture_default_str();
  c->add_flag("--resume", f.resume, "continue from <out>/last.safetensors (bit-exact on the CPU)");
  c->add_option("--stop-after", f.stop_after, "stop after this epoch, as if killed (tests --resume)");
}

void add_heatmap_command(CLI::App& app, CommandList& commands) {
  auto* heatmap_cmd = app.add_subcommand("heatmap", "The heatmap detector: train its decoder, show heatmaps, experiments");
  heatmap_cmd->require_subcommand(1);
  add_heatmap_fit_command(*heatmap_cmd, commands);
  add_heatmap_show_command(*heatmap_cmd, commands);
  add_heatmap_lighting_command(*heatmap_cmd, commands);
  add_heatmap_oe_size_command(*heatmap_cmd, commands);
}

}  // namespace oodkit::tools
