// `oodkit convert IN.pt OUT.safetensors`: a PyTorch checkpoint's state dict (framework/torch_file.h)
// written as safetensors (atomically). With --arch, the names are first mapped to oodkit's and the
// state dict checked against that architecture (load_classifier: torchvision ResNet names, 'module.'
// prefixes, the 7x7 stem picking <arch>_imagenet), and the architecture built is recorded in the
// metadata, so that `--arch` is not needed when the file is used. Without --arch the names are kept.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "framework/safetensors.h"
#include "framework/torch_file.h"
#include "models/registry.h"
#include "tools/command.h"
#include "tools/common.h"

namespace oodkit::tools {

namespace {

struct ConvertOptions {
  std::string in, out, arch;
};

int run_convert(const ConvertOptions& o) {
  std::error_code ec;
  OODKIT_CHECK(!std::filesystem::equivalent(o.in, o.out, ec), "oodkit convert: the output '", o.out,
               "' is the input file; give another path");
  std::map<std::string, std::string> meta{{"format", "pt"},
                                          {"converted_from", std::filesystem::path(o.in).filename().string()}};
  if (!o.arch.empty()) {
    const std::vector<std::string> known = models::classifier_names();
    std::string names;
    for (const std::string& n : known) names += (names.empty() ? "" : ", ") + n;
    OODKIT_CHECK(std::find(known.begin(), known.end(), o.arch) != known.end(), "--arch '", o.arch,
                 "': not an oodkit architecture (", names, ")");
  }
  NamedTensors state = load_torch_file(o.in);
  std::string arch;
  if (!o.arch.empty()) {
    // PyTorch's names mapped to oodkit's and checked against the architecture (tools/common.h).
    LoadedClassifier loaded = load_classifier(o.in, o.arch, 0, 32);
    state = std::move(loaded.state);
    arch = loaded.arch;
    meta["arch"] = arch;
  }
  save_safetensors(o.out, state, meta);
  int64_t elements = 0;
  for (const auto& [name, t] : state) elements += t.numel();
  const std::string arch_note = arch.empty() ? "" : " (arch " + arch + ")";
  std::printf("oodkit convert: %zu tensors (%lld values) from '%s' written to '%s'%s\n", state.size(),
              static_cast<long long>(elements), o.in.c_str(), o.out.c_str(), arch_note.c_str());
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, CommandList& commands) {
  const auto opts = std::make_shared<ConvertOptions>();
  Command c;
  auto* cmd = c.app = app.add_subcommand(
      "convert", "Write a PyTorch checkpoint's state dict (torch.save .pt/.pth) as safetensors; float16/bfloat16 "
                 "become float32, bool uint8; nothing in the file is executed");
  cmd->add_option("input", opts->in, "PyTorch checkpoint (torch.save's ZIP format)")->required();
  cmd->add_option("output", opts->out, "safetensors file to write (replaced atomically)")->required();
  cmd->add_option("--arch", opts->arch, "map the names to this oodkit architecture's, check that they fit, and record it "
                                       "in the metadata (then eval needs no --arch)");
  c.run = [opts](Device) { return run_convert(*opts); };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
