// `oodkit data`: every dataset name the registry knows, whether it is installed (images per split;
// with --digest a digest of its files) and the layout it expects (data/inventory.h). Reads no image.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "data/inventory.h"
#include "data/registry.h"
#include "tools/command.h"

namespace oodkit::tools {

namespace {

// "train 50000, test 1000"; "-" when none.
std::string rows_text(const data::DatasetStatus& s) {
  std::string out;
  for (const auto& [split, n] : s.rows) out += (out.empty() ? "" : ", ") + split + " " + std::to_string(n);
  return out.empty() ? "-" : out;
}

// `oodkit data --help`'s list of names: the registry's help line for each.
std::string names_help() {
  std::string out = "Dataset names (--id, --ood, --dataset, --oe; append :<split> for a split):\n";
  for (const data::DatasetInfo& row : data::dataset_registry()) {
    std::string name = row.name;
    name.resize(std::max<size_t>(name.size(), 30), ' ');
    out += "  " + name + " " + row.help + "\n";
  }
  return out;
}

int run_data(bool digest) {
  const std::string folder = std::filesystem::path(data::default_root("cifar10")).parent_path().string();
  std::printf("datasets are read from %s ($OODKIT_SHARED_DIR/datasets, else ../shared/datasets); docs/data.md, "
              "\"Getting the originals\", says where each comes from\n\n",
              folder.c_str());
  std::printf("| dataset | state | images | folder | expected layout |%s\n|---|---|---|---|---|%s\n",
              digest ? " digest |" : "", digest ? "---|" : "");
  for (const data::DatasetStatus& s : data::dataset_inventory(digest))
    std::printf("| %s | %s | %s | %s | %s |%s\n", s.name.c_str(), s.state.c_str(), rows_text(s).c_str(),
                s.root.empty() ? "-" : s.root.c_str(), s.layout.c_str(),
                digest ? (" " + (s.digest.empty() ? std::string("-") : s.digest) + " |").c_str() : "");
  return 0;
}

}  // namespace

void add_data_command(CLI::App& app, CommandList& commands) {
  const auto digest = std::make_shared<bool>(false);
  Command c;
  c.app = app.add_subcommand("data", "List every dataset name, whether it is installed (images per split) and its layout");
  c.app->footer(names_help());
  c.app->add_flag("--digest", *digest, "also a digest of each installed set's files (reads every file)");
  c.run = [digest](Device) { return run_data(*digest); };
  commands.push_back(std::move(c));
}

}  // namespace oodkit::tools
