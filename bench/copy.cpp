// bench_copy: the memory-bandwidth baseline. Device-to-device copy (Tensor::copy_, i.e.
// cudaMemcpyAsync on oodkit's stream on CUDA, memcpy on the CPU) over a range of sizes, in GB/s
// counting bytes read + written, and a write-only fill (Tensor::fill_) counting bytes written.
// The largest copy is the "100%" of the "% of copy bandwidth" column of the other benches.
//
// Usage: bench_copy [--device cuda|cpu] [--min-mb 1] [--max-mb 4096 (CUDA) / 256 (CPU)]
//                   [--json FILE] [--repeats R] [--flush-l2]
#include <cstdio>
#include <string>

#include "bench/common/bench.h"
#include "framework/tensor.h"

using namespace oodkit;

int main(int argc, char** argv) {
  try {
    bench::Args args(argc, argv);
    const bench::CommonOptions common = bench::read_common(args);
    const bool cuda = common.device.is_cuda();
    const int64_t min_mb = args.get_int("min-mb", 1, "smallest copy in MiB");
    const int64_t max_mb = args.get_int("max-mb", cuda ? 4096 : 256, "largest copy in MiB");
    bench::Reporter rep(args, "bench_copy", common.device);
    if (args.finish()) return 0;
    OODKIT_CHECK(min_mb >= 1 && max_mb >= min_mb, "bench_copy: need 1 <= --min-mb <= --max-mb");

    for (int64_t mb = min_mb; mb <= max_mb; mb *= 4) {
      const int64_t n = mb * (int64_t(1) << 20) / 4;
      Tensor src = Tensor::full({n}, 1.5, DType::F32, common.device);
      Tensor dst = Tensor::empty({n}, DType::F32, common.device);
      bench::Record r;
      r.name = "copy_d2d/" + std::to_string(mb) + "MiB";
      r.bytes = 2.0 * double(n) * 4;
      r.timing = bench::time_fn(common.device, [&] { dst.copy_(src); }, common.time);
      rep.add(r);
      bench::Record f;
      f.name = "fill/" + std::to_string(mb) + "MiB";
      f.bytes = double(n) * 4;
      f.timing = bench::time_fn(common.device, [&] { dst.fill_(2.5); }, common.time);
      rep.add(f);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_copy: error: %s\n", e.what());
    return 1;
  }
}
