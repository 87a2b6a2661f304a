// `oodkit eval --benchmark NAME`: the benchmark's ID set and its installed OOD sets become --id and
// --ood; the groups go into the reports (run/eval_report.h). See run/benchmark.h for the groups.
#include <cstdio>

#include "framework/error.h"
#include "tools/eval.h"

namespace oodkit::tools {

void apply_benchmark(EvalOptions& o, bool id_given, bool ood_given) {
  const run::Benchmark& b = run::find_benchmark(o.benchmark);
  // --benchmark chooses the OOD test sets itself: sets named beside it would make its averages
  // something else than the benchmark's, so the two do not compose.
  OODKIT_CHECK(!ood_given, "eval: --benchmark ", b.name, " chooses the OOD test sets itself; --ood '", o.ood,
               "' cannot be given with it (evaluate other sets in a separate run without --benchmark)");
  OODKIT_CHECK(!id_given || o.id == b.id, "eval: --benchmark ", b.name, " has the ID set ", b.id, ", not --id '", o.id,
               "' (leave --id out, or choose the benchmark of ", o.id, ")");
  o.benchmark_sets = run::choose_benchmark_sets(b);
  for (const run::MissingSet& m : o.benchmark_sets.missing)
    std::fprintf(stderr, "oodkit eval: --benchmark %s: %s\n", b.name.c_str(), m.line.c_str());
  o.id = b.id;
  o.ood.clear();
  for (const std::string& set : o.benchmark_sets.ood_sets()) o.ood += (o.ood.empty() ? "" : ",") + set;
}

}  // namespace oodkit::tools
