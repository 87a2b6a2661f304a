// bench_ood_fit_score: the phases of issue 24's CPU speed check (fit + score of KNN, Mahalanobis
// and ViM on bench/bench_python_vs_pytorch_ood.py's shapes), timed in C++ so that the phases can be
// compared on a loaded machine. Features: a seeded ReLU'd Gaussian mixture (10 classes), float32.
//   knn   fit = normalise the bank; score = normalise the queries + knn_search (k = 50);
//         phases: the tiled float32 GEMM alone (knn.cpp's query block x database tile), the rest
//         (norms, distances, top-k selection) is score - GEMM.
//   mahalanobis  fit (class means, double scatter, pinvh); phases: detail::scatter, detail::pinvh
//         and (for comparison) the full SelfAdjointEigenSolver it replaced; score.
//   vim   fit (origin, double scatter, eigen-solve, residual norm + max-logit pass); phases:
//         detail::scatter, SelfAdjointEigenSolver; the residual pass is fit - scatter - eigen;
//         score, and its GEMM alone: ops::linear (Eigen's own OpenMP GEMM) against the same
//         product split into 256-row blocks over threads (single-threaded Eigen each).
// Each phase: median (and min) seconds over --reps runs; Gflop/s where the flop count is exact.
// --dump FILE writes the results (KNN [Q, k] distances + indices, Mahalanobis and ViM scores)
// as raw little-endian arrays, so that two builds can be compared bitwise (--compare FILE).
//
// Usage: bench_ood_fit_score [--bank 50000] [--queries 10000] [--dim 512] [--reps 3]
//                            [--only knn,mahalanobis,vim] [--dump FILE] [--compare FILE]
#include <omp.h>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <ctime>
#include <vector>

#include "bench/common/bench.h"
#include "framework/ops/linear.h"
#include "framework/tensor.h"
#include "ood/fit_util.h"
#include "ood/input_ops.h"
#include "ood/knn.h"
#include "ood/mahalanobis.h"
#include "ood/vim.h"

using namespace oodkit;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Process CPU time (all threads): on a shared machine it tracks the work done better than the
// wall time, which other processes stretch.
double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Stat {
  double median = 0, min = 0, cpu_median = 0;
};

Stat time_reps(int reps, const std::function<void()>& fn) {
  std::vector<double> t, c;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s(), c0 = cpu_s();
    fn();
    t.push_back(now_s() - t0);
    c.push_back(cpu_s() - c0);
  }
  std::sort(t.begin(), t.end());
  std::sort(c.begin(), c.end());
  return {t[t.size() / 2], t[0], c[c.size() / 2]};
}

void report(const char* name, const Stat& s, double flop = 0) {
  std::printf("%-34s median %8.4f s  min %8.4f s  cpu %8.4f s", name, s.median, s.min, s.cpu_median);
  if (flop > 0) std::printf("  %6.1f Gflop/s wall-min, %5.1f per cpu-s", flop / s.min * 1e-9, flop / s.cpu_median * 1e-9);
  std::printf("\n");
  std::fflush(stdout);
}

// The bench's features: bank [n, d], labels [n], queries [q, d], head W [c, d], b [c].
struct Data {
  Tensor bank, labels, queries, w, b;
};

Data make_data(int64_t n, int64_t nq, int64_t d, int64_t classes) {
  std::mt19937_64 g(0);
  std::normal_distribution<float> nrm(0.f, 1.f);
  std::uniform_int_distribution<int64_t> cls(0, classes - 1);
  std::vector<float> means(size_t(classes * d));
  for (float& m : means) m = nrm(g) + 0.5f;
  Data x{Tensor::empty({n, d}), Tensor::empty({n}, DType::I64), Tensor::empty({nq, d}), Tensor::empty({classes, d}),
         Tensor::empty({classes})};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = cls(g);
    x.labels.data<int64_t>()[i] = c;
    for (int64_t j = 0; j < d; ++j) x.bank.data<float>()[i * d + j] = std::max(0.f, means[size_t(c * d + j)] + nrm(g));
  }
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t c = cls(g);
    for (int64_t j = 0; j < d; ++j)
      x.queries.data<float>()[i * d + j] = std::max(0.f, means[size_t(c * d + j)] + 1.3f * nrm(g));
  }
  for (int64_t i = 0; i < classes * d; ++i) x.w.data<float>()[i] = nrm(g) / std::sqrt(float(d));
  for (int64_t i = 0; i < classes; ++i) x.b.data<float>()[i] = 0.1f * nrm(g);
  return x;
}

// The tiled GEMM of knn.cpp alone (query block qb x database tile mt, OpenMP over query blocks).
void knn_gemm_only(const Tensor& q, const Tensor& db, int64_t qb, int64_t mt) {
  using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t nq = q.size(0), nd = db.size(0), d = q.size(1);
  const Eigen::Map<const RowMatF> Q(q.data<float>(), nq, d), DB(db.data<float>(), nd, d);
  const int64_t nblocks = (nq + qb - 1) / qb;
#pragma omp parallel
  {
    RowMatF dots(qb, mt);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t q0 = b * qb, nqb = std::min(qb, nq - q0);
      for (int64_t m0 = 0; m0 < nd; m0 += mt) {
        const int64_t nmb = std::min(mt, nd - m0);
        dots.topLeftCorner(nqb, nmb).noalias() = Q.middleRows(q0, nqb) * DB.middleRows(m0, nmb).transpose();
      }
    }
  }
}

// Y = X W^T + b (X [n, in], W [out, in], float32) as ops::linear computes it on the CPU, but with
// the rows split into 256-row blocks over OpenMP threads, each a single-threaded Eigen GEMM.
Tensor linear_row_blocks(const Tensor& x, const Tensor& w, const Tensor& b) {
  using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t n = x.size(0), in = x.size(1), out = w.size(0);
  Tensor y = Tensor::empty({n, out});
  const Eigen::Map<const RowMatF> X(x.data<float>(), n, in), W(w.data<float>(), out, in);
  Eigen::Map<RowMatF> Y(y.data<float>(), n, out);
  const Eigen::Map<const Eigen::RowVectorXf> B(b.data<float>(), out);
  const int64_t blocks = (n + 255) / 256;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t r0 = i * 256, rows = std::min<int64_t>(256, n - r0);
    Y.middleRows(r0, rows).rowwise() = B;
    Y.middleRows(r0, rows).noalias() += X.middleRows(r0, rows) * W.transpose();
  }
  return y;
}

struct Dump {
  std::vector<char> bytes;
  void add(const Tensor& t) {
    const Tensor c = t.cpu();  // results are contiguous
    const char* p = static_cast<const char*>(c.raw_data());
    bytes.insert(bytes.end(), p, p + c.numel() * int64_t(dtype_size(c.dtype())));
  }
};

// Max relative difference |a - b| / max(|b|, tiny) of two float32 arrays, and how many differ.
void compare_f32(const char* name, const float* a, const float* b, int64_t n) {
  double worst = 0;
  int64_t diff = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    ++diff;
    worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])) / std::max(std::fabs(double(b[i])), 1e-30));
  }
  std::printf("compare %-22s %lld of %lld differ, max rel %.3g\n", name, (long long)diff, (long long)n, worst);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv);
  const int64_t n = args.get_int("bank", 50000, "bank / training rows");
  const int64_t nq = args.get_int("queries", 10000, "query rows");
  const int64_t d = args.get_int("dim", 512, "feature dimension");
  const int reps = int(args.get_int("reps", 3, "repetitions per phase (median, min)"));
  const int score_reps = int(args.get_int("score-reps", 0, "repetitions of the score phases (0: --reps)"));
  const std::vector<std::string> only = args.get_list("only", "knn,mahalanobis,vim", "methods to run");
  const std::string dump_path = args.get("dump", "", "write the results to this file");
  const std::string compare_path = args.get("compare", "", "compare the results with this dump");
  const std::vector<std::string> tiles =
      args.get_list("gemm-tiles", "64x1024", "KNN GEMM-only variants: query block x database tile");
  const std::vector<std::string> search_tiles =
      args.get_list("search-tiles", "", "extra knn_search runs with these KnnTiling (query x database)");
  if (args.finish()) return 0;
  auto wants = [&](const char* m) { return std::find(only.begin(), only.end(), m) != only.end(); };
  const int64_t classes = 10, k = 50;
  std::printf("bank %lld x %lld, queries %lld, threads %d\n", (long long)n, (long long)d, (long long)nq,
              omp_get_max_threads());
  const Data x = make_data(n, nq, d, classes);
  Dump dump;
  std::vector<std::pair<std::string, int64_t>> parts;  // (name, float32 count or -1 for int64 count)

  if (wants("knn")) {
    Tensor bank_n, q_n;
    report("knn fit (normalise bank)", time_reps(reps, [&] { bank_n = ood::normalize_rows(x.bank); }));
    report("knn normalise queries", time_reps(reps, [&] { q_n = ood::normalize_rows(x.queries); }));
    const double flop = 2.0 * double(nq) * double(n) * double(d);
    auto parse = [](const std::string& t) {
      return std::pair<int64_t, int64_t>{std::stoll(t.substr(0, t.find('x'))), std::stoll(t.substr(t.find('x') + 1))};
    };
    for (const std::string& t : tiles) {
      const auto [qb, mt] = parse(t);
      report(("knn gemm only " + t).c_str(), time_reps(reps, [&] { knn_gemm_only(q_n, bank_n, qb, mt); }), flop);
    }
    for (const std::string& t : search_tiles) {
      const auto [qb, mt] = parse(t);
      report(("knn search " + t).c_str(), time_reps(reps, [&] { ood::knn_search(q_n, bank_n, k, {qb, mt}); }), flop);
    }
    ood::KnnResult r;
    report("knn search (gemm + selection)", time_reps(reps, [&] { r = ood::knn_search(q_n, bank_n, k); }), flop);
    dump.add(r.distances);
    dump.add(r.indices);
    parts.push_back({"knn distances", nq * k});
    parts.push_back({"knn indices", -nq * k});
  }
  if (wants("mahalanobis")) {
    ood::Mahalanobis m;
    report("mahalanobis fit", time_reps(reps, [&] { m.fit(x.bank, x.labels, classes); }));
    const Tensor zh = ood::detail::host_float(x.bank);
    const ood::detail::MatrixXdR mu = ood::detail::to_matrix(m.means());
    Eigen::MatrixXd s;
    report("  scatter (double SYRK)", time_reps(reps, [&] { s = ood::detail::scatter(zh, mu, x.labels.data<int64_t>()); }),
           double(n) * double(d) * double(d));
    const Eigen::MatrixXd sigma = s / double(n);
    int64_t rank = 0;
    report("  pinvh D x D",
           time_reps(reps, [&] { ood::detail::pinvh(sigma, double(d) * 2.220446049250313e-16, rank, "bench"); }));
    std::printf("    (rank %lld of %lld: %s)\n", (long long)rank, (long long)d,
                rank == d ? "every eigenvalue kept, the Cholesky inverse" : "eigenvectors");
    report("  full eigen-solve D x D (before)", time_reps(reps, [&] { Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(s); }));
    Tensor sc;
    report("mahalanobis score", time_reps(score_reps > 0 ? score_reps : reps, [&] { sc = m.score(x.queries); }),
           2.0 * double(nq) * double(d) * double(d));
    dump.add(sc);
    parts.push_back({"mahalanobis scores", nq});
  }
  if (wants("vim")) {
    ood::Vim v;
    report("vim fit", time_reps(reps, [&] { v.fit(x.bank, x.w, x.b); }));
    const Tensor zh = ood::detail::host_float(x.bank);
    ood::detail::MatrixXdR origin = ood::detail::to_matrix(v.origin().reshape({1, d}));
    Eigen::MatrixXd s;
    report("  scatter (double SYRK)", time_reps(reps, [&] { s = ood::detail::scatter(zh, origin, nullptr); }),
           double(n) * double(d) * double(d));
    report("  eigen-solve D x D", time_reps(reps, [&] { Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(s); }));
    Tensor sc;
    report("vim score (logits + score)", time_reps(score_reps > 0 ? score_reps : reps, [&] {
             sc = v.score(ops::linear(x.queries, x.w, x.b), x.queries);
           }), 2.0 * double(nq) * double(d) * double(d - v.principal_dim()));
    dump.add(sc);
    parts.push_back({"vim scores", nq});
    Tensor wp = Tensor::empty({d - v.principal_dim(), d}), bp = Tensor::empty({d - v.principal_dim()});
    {
      const ood::detail::MatrixXdR ns = ood::detail::to_matrix(v.null_space());
      for (int64_t i = 0; i < ns.cols(); ++i) {
        for (int64_t j = 0; j < d; ++j) wp.data<float>()[i * d + j] = float(ns(j, i));
        bp.data<float>()[i] = 0.5f;
      }
    }
    Tensor y1, y2;
    const double lf = 2.0 * double(nq) * double(d) * double(d - v.principal_dim());
    report("  ops::linear [Q,D]x[D,D-Dp]", time_reps(score_reps > 0 ? score_reps : reps, [&] {
             y1 = ops::linear(x.queries, wp, bp);
           }), lf);
    report("  same in 256-row blocks", time_reps(score_reps > 0 ? score_reps : reps, [&] {
             y2 = linear_row_blocks(x.queries, wp, bp);
           }), lf);
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < y1.numel(); ++i) {
      diff = std::max(diff, double(std::fabs(y1.data<float>()[i] - y2.data<float>()[i])));
      scale = std::max(scale, double(std::fabs(y1.data<float>()[i])));
    }
    // Bitwise equal with one thread; with more, Eigen's OpenMP GEMM splits the sum over k differently.
    std::printf("  row blocks vs ops::linear: max |diff| / max |y| = %.3g\n", diff / scale);
  }
  if (!dump_path.empty()) {
    std::ofstream f(dump_path, std::ios::binary);
    f.write(dump.bytes.data(), std::streamsize(dump.bytes.size()));
    OODKIT_CHECK(f.good(), "bench_ood_fit_score: cannot write '", dump_path, "'");
  }
  if (!compare_path.empty()) {
    std::ifstream f(compare_path, std::ios::binary);
    OODKIT_CHECK(f.good(), "bench_ood_fit_score: cannot read --compare '", compare_path, "'");
    std::vector<char> ref((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    OODKIT_CHECK(ref.size() == dump.bytes.size(), "bench_ood_fit_score: '", compare_path, "' holds ", ref.size(),
                 " bytes, this run ", dump.bytes.size(), " (same --only/--bank/--queries/--dim?)");
    size_t off = 0;
    for (const auto& [name, count] : parts) {
      if (count >= 0) {
        compare_f32(name.c_str(), reinterpret_cast<const float*>(dump.bytes.data() + off),
                    reinterpret_cast<const float*>(ref.data() + off), count);
        off += size_t(count) * 4;
      } else {
        const int64_t* a = reinterpret_cast<const int64_t*>(dump.bytes.data() + off);
        const int64_t* b = reinterpret_cast<const int64_t*>(ref.data() + off);
        int64_t diff = 0;
        for (int64_t i = 0; i < -count; ++i) diff += a[i] != b[i];
        std::printf("compare %-22s %lld of %lld differ\n", name.c_str(), (long long)diff, (long long)-count);
        off += size_t(-count) * 8;
      }
    }
  }
  return 0;
}
