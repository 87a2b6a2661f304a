// The last files an `oodkit eval --out` run (images or --features) writes into its detectors/
// folder, read back by `oodkit score` (tools/protocol_file.h).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ood/protocol.h"

namespace oodkit::run {

// Writes <save_dir>/heldout_scores.safetensors (per method of `results`, its held-out ID scores:
// float64 [N], the ones its threshold came from), then <save_dir>/protocol.json: `protocol` (what
// `oodkit score` needs to reproduce the rows) with "thresholds" (per method, the score keeping 95%
// of held-out ID images: MethodResult::threshold) and "provenance" (run/provenance.h) added.
// Written last and atomically: a detectors/ folder without protocol.json is an unfinished run's.
void write_saved_protocol(const std::string& save_dir, nlohmann::json protocol,
                          const std::vector<ood::MethodResult>& results);

}  // namespace oodkit::run
