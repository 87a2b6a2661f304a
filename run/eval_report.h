// The report writers of `oodkit eval` (and `oodkit study`'s evaluation): results.md, results.json,
// results.csv and scores.safetensors from one evaluation's results. Pure functions of EvalSummary:
// the command writes the files (atomically) in its order.
//
// Test sets drawn from the validation set's dataset (or the heatmap decoder's OE set's) are "seen":
// every report adds an average without them when both kinds are present.
//
// A benchmark run (`eval --benchmark`, run/benchmark.h) adds one average per group of test sets
// (near-OOD, far-OOD): the plain mean of each figure over the group's sets, marked partial when
// some of the benchmark's sets were not installed.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/safetensors.h"
#include "ood/protocol.h"
#include "run/benchmark.h"

namespace oodkit::run {

struct EvalSummary {
  std::string arch, id, checkpoint, val_ood;  // as the command line named them
  double accuracy = 0;                        // ID test accuracy in [0, 1]
  int64_t n_id_test = 0;
  std::string decoder_oe;                     // the heatmap decoder's OE set spec ("" without a decoder)
  std::vector<std::string> test_sets;         // the OOD test sets, in results' per_set order
  std::vector<std::string> warnings;          // shown first in results.md, listed in results.json
  // Methods not run, each with the reason (`eval --features`: those needing more than features,
  // logits and the head); listed in results.md after the warnings (the caller puts them in json_header).
  std::vector<std::pair<std::string, std::string>> unavailable;
  std::vector<ood::MethodResult> results;
  // --benchmark: its name, its groups (every set a name in test_sets) and notes; empty otherwise.
  std::string benchmark;
  std::vector<SetGroup> groups;
  std::vector<std::string> benchmark_notes;
  // results.json's leading fields (provenance, data counts, run settings), in order; "seen_sets",
  // then `heatmap` (when not null), then "methods" follow.
  nlohmann::ordered_json json_header;
  nlohmann::ordered_json heatmap;
};

std::string eval_markdown(const EvalSummary& s);
nlohmann::ordered_json eval_json(const EvalSummary& s);
std::string eval_csv(const EvalSummary& s);
// <method>/<set> -> float64 [N] scores of the ID test set (named s.id) and each OOD test set.
NamedTensors eval_scores(const EvalSummary& s);

std::string pct(double fraction);  // 0.1234 -> "12.34"

// One method's runs (e.g. with five heatmap decoders) as one result: the mean of every metric per set
// and of the averages and validation AUROCs, with their sample standard deviations (n - 1); the first
// run's chosen setting, threshold and scores. Every run must cover the same sets.
ood::MethodResult average_runs(const std::vector<ood::MethodResult>& runs);

}  // namespace oodkit::run
