// Fusions of any number of detectors (ood/multi_fusion.h) against hand-worked values and naive
// loops written here: the empirical p-value with ties, the z, Fisher and mean-p combinations,
// the simplex grid, the greedy selection of `fused`, NaN handling, --fuse parsing and the saved
// state. The protocol side (scales fitted on held-out ID only, selection blind to test sets) is in
// test_protocol.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <unistd.h>

#include "ood/state_io.h"

#include "ood/detectors.h"
#include "ood/multi_fusion.h"
#include "testing.h"

using namespace oodkit;

namespace {

using Parts = std::vector<const std::vector<double>*>;

// Runs f, expects an oodkit::Error whose message contains `part`.
template <class F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}
#define EXPECT_THROW_MSG(expr, part) expect_error([&] { (void)(expr); }, part)

ood::ComponentScale scale_of(const std::vector<double>& h) { return ood::fit_component_scale(h, "test"); }

// ---- naive references: plain loops over the documented formulas ------------------------------

double naive_mean(const std::vector<double>& h) {
  double s = 0;
  for (double v : h) s += v;
  return s / double(h.size());
}
double naive_std(const std::vector<double>& h) {
  const double m = naive_mean(h);
  double s = 0;
  for (double v : h) s += (v - m) * (v - m);
  const double sd = std::sqrt(s / double(h.size()));
  return sd > 0 ? sd : 1.0;
}
double naive_p(double s, const std::vector<double>& h) {
  int at_or_below = 0;
  for (double v : h) at_or_below += v <= s;
  return double(1 + at_or_below) / double(h.size() + 1);
}
// One image's fused score from its component scores s[i] and the held-out ID scores h[i].
double naive_fused(ood::Combination c, const std::vector<double>& w, const std::vector<std::vector<double>>& h,
                   const std::vector<double>& s) {
  const double k = double(s.size());
  double out = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (c == ood::Combination::Z) out += k * w[i] * (s[i] - naive_mean(h[i])) / naive_std(h[i]);
    if (c == ood::Combination::Fisher) out += 2 * k * w[i] * std::log(naive_p(s[i], h[i]));
    if (c == ood::Combination::PMean) out += w[i] * naive_p(s[i], h[i]);
  }
  return out;
}
double naive_auroc(const std::vector<double>& id, const std::vector<double>& ood) {
  double s = 0;
  for (double a : id)
    for (double b : ood) s += a > b ? 1.0 : a == b ? 0.5 : 0.0;
  return s / (double(id.size()) * double(ood.size()));
}

std::vector<double> randoms(Generator& g, size_t n, double scale, double shift) {
  std::vector<double> v;
  const Tensor t = Tensor::randn({int64_t(n)}, g).to(DType::F64);
  for (double x : t.to_vector<double>()) v.push_back(shift + scale * x);
  return v;
}

// ---- the empirical p-value -----------------------------------------------------------------------

TEST(MultiFusion, EmpiricalPHandWorkedWithTies) {
  // Held-out ID {1, 2, 2, 3} (n = 4): p(s) = (1 + #{x <= s}) / 5; the tied 2s both count at s = 2.
  const std::vector<double> h{3, 2, 1, 2};
  const ood::ComponentScale sc = scale_of(h);
  EXPECT_EQ(sc.sorted, (std::vector<double>{1, 2, 2, 3}));
  EXPECT_DOUBLE_EQ(ood::empirical_p(0.5, sc.sorted), 1.0 / 5);
  EXPECT_DOUBLE_EQ(ood::empirical_p(1.0, sc.sorted), 2.0 / 5);
  EXPECT_DOUBLE_EQ(ood::empirical_p(1.999, sc.sorted), 2.0 / 5);
  EXPECT_DOUBLE_EQ(ood::empirical_p(2.0, sc.sorted), 4.0 / 5);  // both ties count: 1 + 3
  EXPECT_DOUBLE_EQ(ood::empirical_p(2.5, sc.sorted), 4.0 / 5);
  EXPECT_DOUBLE_EQ(ood::empirical_p(3.0, sc.sorted), 1.0);
  EXPECT_DOUBLE_EQ(ood::empirical_p(1e9, sc.sorted), 1.0);
  EXPECT_DOUBLE_EQ(ood::empirical_p(-std::numeric_limits<double>::infinity(), sc.sorted), 1.0 / 5);
  EXPECT_DOUBLE_EQ(ood::empirical_p(std::numeric_limits<double>::infinity(), sc.sorted), 1.0);
  EXPECT_TRUE(std::isnan(ood::empirical_p(std::nan(""), sc.sorted)));
  // All held-out scores equal: below them 1/(n+1), at or above them 1.
  const ood::ComponentScale flat = scale_of({5, 5, 5});
  EXPECT_DOUBLE_EQ(ood::empirical_p(4.9, flat.sorted), 0.25);
  EXPECT_DOUBLE_EQ(ood::empirical_p(5.0, flat.sorted), 1.0);
  EXPECT_EQ(flat.z.std, 1.0);  // a constant score keeps std 1 (as the pairwise fusions' scales)
}

// ---- the combinations: hand-worked, then a naive loop on random data ------------------------------

TEST(MultiFusion, CombinationsHandWorked) {
  // a: held-out {1, 3} -> mean 2, std 1; b: held-out {0, 0, 6, 6} -> mean 3, std 3.
  const std::vector<double> ha{1, 3}, hb{0, 0, 6, 6};
  const std::vector<ood::ComponentScale> sc{scale_of(ha), scale_of(hb)};
  const std::vector<double> a{4, 2}, b{0, 6};
  // z, equal weights: (4-2)/1 + (0-3)/3 = 1; (2-2)/1 + (6-3)/3 = 1.
  std::vector<double> z = ood::combine_scaled(ood::Combination::Z, {0.5, 0.5}, sc, Parts{&a, &b});
  EXPECT_DOUBLE_EQ(z[0], 1.0);
  EXPECT_DOUBLE_EQ(z[1], 1.0);
  // Weights (0.75, 0.25): 2 * (0.75 * 2 + 0.25 * -1) = 2.5; 2 * (0 + 0.25 * 1) = 0.5.
  z = ood::combine_scaled(ood::Combination::Z, {0.75, 0.25}, sc, Parts{&a, &b});
  EXPECT_DOUBLE_EQ(z[0], 2.5);
  EXPECT_DOUBLE_EQ(z[1], 0.5);
  // p-values: a = 4 -> (1 + 2)/3 = 1, a = 2 -> (1 + 1)/3; b = 0 -> (1 + 2)/5 (the tied 0s count),
  // b = 6 -> 5/5. Fisher: 2 (ln 1 + ln 3/5), 2 (ln 2/3 + ln 1); mean p: (1 + 3/5)/2, (2/3 + 1)/2.
  const std::vector<double> f = ood::combine_scaled(ood::Combination::Fisher, {0.5, 0.5}, sc, Parts{&a, &b});
  EXPECT_DOUBLE_EQ(f[0], 2 * std::log(0.6));
  EXPECT_DOUBLE_EQ(f[1], 2 * std::log(2.0 / 3));
  const std::vector<double> m = ood::combine_scaled(ood::Combination::PMean, {0.5, 0.5}, sc, Parts{&a, &b});
  EXPECT_DOUBLE_EQ(m[0], 0.8);
  EXPECT_DOUBLE_EQ(m[1], 5.0 / 6);
}

TEST(MultiFusion, CombinationsMatchNaiveLoop) {
  Generator g(7);
  // Three components on very different scales, one with heavy ties (rounded to integers).
  std::vector<std::vector<double>> h{randoms(g, 57, 3.0, 10), randoms(g, 57, 0.01, -1), randoms(g, 57, 2.0, 0)};
  std::vector<std::vector<double>> s{randoms(g, 40, 4.0, 9), randoms(g, 40, 0.02, -1), randoms(g, 40, 2.0, 0.5)};
  for (double& v : h[2]) v = std::round(v);
  for (double& v : s[2]) v = std::round(v);
  std::vector<ood::ComponentScale> sc;
  for (const auto& x : h) sc.push_back(scale_of(x));
  for (ood::Combination c : {ood::Combination::Z, ood::Combination::Fisher, ood::Combination::PMean})
    for (const std::vector<double>& w : {std::vector<double>{1. / 3, 1. / 3, 1. / 3}, std::vector<double>{0.5, 0.0, 0.5},
                                         std::vector<double>{0.2, 0.3, 0.5}}) {
      const std::vector<double> got = ood::combine_scaled(c, w, sc, Parts{&s[0], &s[1], &s[2]});
      ASSERT_EQ(got.size(), 40u);
      for (size_t r = 0; r < 40; ++r) {
        const double want = naive_fused(c, w, h, {s[0][r], s[1][r], s[2][r]});
        EXPECT_NEAR(got[r], want, 1e-12 * std::max(1.0, std::fabs(want)))
            << ood::combination_name(c) << " row " << r;
      }
    }
}

TEST(MultiFusion, NanComponents) {
  // A NaN held-out ID score: the scale is refused, naming the component and the count.
  EXPECT_THROW_MSG(ood::fit_component_scale({1, std::nan(""), 3, std::numeric_limits<double>::infinity()}, "fuse_z(a+b) component 'b'"),
                   "fuse_z(a+b) component 'b': 2 of its 4 held-out ID scores are not finite");
  // A NaN component score of one image: that image's fused score is NaN, the others are not.
  const std::vector<ood::ComponentScale> sc{scale_of({1, 2, 3}), scale_of({0, 1})};
  const std::vector<double> a{2, std::nan(""), 3}, b{1, 0, std::nan("")};
  for (ood::Combination c : {ood::Combination::Z, ood::Combination::Fisher, ood::Combination::PMean}) {
    const std::vector<double> f = ood::combine_scaled(c, {0.5, 0.5}, sc, Parts{&a, &b});
    EXPECT_FALSE(std::isnan(f[0])) << ood::combination_name(c);
    EXPECT_TRUE(std::isnan(f[1])) << ood::combination_name(c);
    EXPECT_TRUE(std::isnan(f[2])) << ood::combination_name(c);
  }
}

// ---- the weight grid ------------------------------------------------------------------------------

TEST(MultiFusion, SimplexGrid) {
  // Equal weights first; then every composition of m into K parts (m = 10, 6, 4 for K = 2, 3, 4),
  // the equal point not repeated: 11, 28 and 35 settings.
  for (auto [k, m, count] : {std::tuple<size_t, int, size_t>{2, 10, 11}, {3, 6, 28}, {4, 4, 35}, {5, 4, 71}}) {
    const auto grid = ood::simplex_grid(k);
    EXPECT_EQ(grid.size(), count) << "K = " << k;
    std::set<std::vector<long>> seen;
    for (size_t i = 0; i < grid.size(); ++i) {
      ASSERT_EQ(grid[i].size(), k);
      double sum = 0;
      std::vector<long> key;
      for (double w : grid[i]) {
        sum += w;
        EXPECT_GE(w, 0.0);
        key.push_back(std::lround(w * 1e9));
        if (i > 0) EXPECT_NEAR(w * m, std::round(w * m), 1e-12);  // on the 1/m lattice
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
      EXPECT_TRUE(seen.insert(key).second) << "repeated point " << i;
    }
    for (double w : grid.front()) EXPECT_DOUBLE_EQ(w, 1.0 / double(k));
  }
  // K = 2: (1/2, 1/2), (1, 0), (0.9, 0.1), ..., (0, 1).
  const auto g2 = ood::simplex_grid(2);
  EXPECT_EQ(g2[1], (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(g2.back(), (std::vector<double>{0.0, 1.0}));
}

// ---- the greedy selection of `fused` ---------------------------------------------------------------

// The documented rule as a plain loop: start with the best single candidate (first on ties), add
// the candidate whose equal-weight fusion is best while it gains more than `margin`, at most `cap`.
std::vector<size_t> naive_greedy(ood::Combination c, const std::vector<std::vector<double>>& id,
                                 const std::vector<std::vector<double>>& ood, double margin, size_t cap) {
  std::vector<size_t> chosen;
  double current = -1;
  while (chosen.size() < cap) {
    double best = -1;
    size_t best_i = 0;
    for (size_t i = 0; i < id.size(); ++i) {
      if (std::find(chosen.begin(), chosen.end(), i) != chosen.end()) continue;
      std::vector<size_t> set = chosen;
      set.push_back(i);
      std::vector<std::vector<double>> h;
      for (size_t j : set) h.push_back(id[j]);
      const std::vector<double> w(set.size(), 1.0 / double(set.size()));
      std::vector<double> fid, food;
      for (size_t r = 0; r < id[0].size(); ++r) {
        std::vector<double> s;
        for (size_t j : set) s.push_back(id[j][r]);
        fid.push_back(naive_fused(c, w, h, s));
      }
      for (size_t r = 0; r < ood[0].size(); ++r) {
        std::vector<double> s;
        for (size_t j : set) s.push_back(ood[j][r]);
        food.push_back(naive_fused(c, w, h, s));
      }
      const double a = naive_auroc(fid, food);
      if (a > best) {
        best = a;
        best_i = i;
      }
    }
    if (best < 0 || (!chosen.empty() && !(best > current + margin))) break;
    chosen.push_back(best_i);
    current = best;
  }
  return chosen;
}

TEST(MultiFusion, GreedySelectionHandWorked) {
  // Four held-out ID and four OOD images. Candidate 0 alone: AUROC 12/16 (OOD 0, 1 sit between the
  // ID scores 0.9 and 1.1); candidate 1 is noise (8/16); candidate 2 also scores 12/16 alone but
  // misses the other two OOD images (0 is kept: first on ties). z0 + z2: ID {2, -2, 0, 0}, OOD all
  // -10: AUROC 1 (z0 + z1: 12/16). Adding 1 then cannot gain: selection {0, 2}.
  const std::vector<double> id0{1, 1, 1, 1}, ood0{1, 1, 0, 0};  // ties with ID: 0.5 each
  const std::vector<double> id1{0, 1, 0, 1}, ood1{0, 1, 0, 1};
  const std::vector<double> id2{1, 1, 1, 1}, ood2{0, 0, 1, 1};
  // Non-constant held-out scores keep the std informative: perturb ID by +-0.1 symmetrically.
  const std::vector<double> id0b{1.1, 0.9, 1.1, 0.9}, id2b{1.1, 0.9, 0.9, 1.1};
  const Parts vid{&id0b, &id1, &id2b}, vood{&ood0, &ood1, &ood2};
  const ood::FusedSelection s = ood::select_fused(ood::Combination::Z, vid, vood, 0.002, 4);
  EXPECT_EQ(s.chosen, (std::vector<size_t>{0, 2}));
  ASSERT_EQ(s.auroc.size(), 2u);
  EXPECT_DOUBLE_EQ(s.auroc[0], 0.75);
  EXPECT_DOUBLE_EQ(s.auroc[1], 1.0);
  // The cap and the margin stop it earlier.
  EXPECT_EQ(ood::select_fused(ood::Combination::Z, vid, vood, 0.002, 1).chosen, (std::vector<size_t>{0}));
  EXPECT_EQ(ood::select_fused(ood::Combination::Z, vid, vood, 0.25, 4).chosen, (std::vector<size_t>{0}));
  EXPECT_EQ(ood::select_fused(ood::Combination::Z, vid, vood, 0.2499, 4).chosen, (std::vector<size_t>{0, 2}));
}

TEST(MultiFusion, GreedySelectionMatchesNaiveLoop) {
  Generator g(11);
  for (ood::Combination c : {ood::Combination::Z, ood::Combination::Fisher, ood::Combination::PMean}) {
    // Six candidates of different strength and scale; the OOD side shifted by varying amounts.
    std::vector<std::vector<double>> id, ood;
    for (int i = 0; i < 6; ++i) {
      const double scale = std::pow(10.0, i - 3);
      id.push_back(randoms(g, 30, scale, 0));
      ood.push_back(randoms(g, 25, scale, -0.3 * scale * (i % 3)));
    }
    Parts vid, vood;
    for (int i = 0; i < 6; ++i) {
      vid.push_back(&id[size_t(i)]);
      vood.push_back(&ood[size_t(i)]);
    }
    for (size_t cap : {1u, 3u, 6u}) {
      const ood::FusedSelection s = ood::select_fused(c, vid, vood, 0.001, cap);
      EXPECT_EQ(s.chosen, naive_greedy(c, id, ood, 0.001, cap)) << ood::combination_name(c) << " cap " << cap;
    }
  }
}

// ---- --fuse entries and names -------------------------------------------------------------------------

TEST(MultiFusion, ParseFuseSpec) {
  ood::FuseSpec s = ood::parse_fuse_spec("knn+nap+energy");
  EXPECT_EQ(s.name(), "fuse_z(knn+nap+energy)");
  EXPECT_FALSE(s.tune_weights);
  s = ood::parse_fuse_spec("pw:msp+fs_ta");
  EXPECT_EQ(s.combination, ood::Combination::Fisher);
  EXPECT_TRUE(s.tune_weights);
  EXPECT_EQ(s.name(), "fuse_pw(msp+fs_ta)");
  EXPECT_EQ(ood::parse_fuse_spec("pmean:knn+nap_e").name(), "fuse_pmean(knn+nap_e)");
  EXPECT_EQ(ood::parse_fuse_name("fuse_pmeanw(knn+nap)").name(), "fuse_pmeanw(knn+nap)");
  EXPECT_TRUE(ood::is_fuse_name("fuse_z(knn+nap)"));
  EXPECT_FALSE(ood::is_fuse_name("fused"));
  EXPECT_FALSE(ood::is_fuse_name("knn"));
  EXPECT_THROW_MSG(ood::parse_fuse_spec("x:knn+nap"), "--fuse 'x:knn+nap': unknown combination 'x'");
  EXPECT_THROW_MSG(ood::parse_fuse_spec("z:knn+"), "--fuse 'z:knn+': an empty component name");
  EXPECT_THROW_MSG(ood::parse_fuse_spec("knn+bogus"), "--fuse 'knn+bogus': unknown method 'bogus'");
  EXPECT_THROW_MSG(ood::parse_fuse_spec("knn"), "--fuse 'knn': 1 component; a fusion combines 2 to 8");
  EXPECT_THROW_MSG(ood::parse_fuse_spec("knn+nap+knn"), "'knn' is named twice");
  EXPECT_THROW_MSG(ood::parse_fuse_spec("knn+fused"), "'fused' is itself a fusion");
  EXPECT_THROW_MSG(ood::parse_fuse_name("fuse_z(nap+ knn)"), "unknown method ' knn'");
  // The registry makes a --fuse name's detector and reads its components' needs.
  EXPECT_EQ(ood::make_detector("fuse_z(knn+nap)")->components(), (std::vector<std::string>{"knn", "nap"}));
  EXPECT_TRUE(ood::feature_needs({"fuse_z(knn+nap)"}).nap);
  EXPECT_TRUE(ood::needs_images({"fuse_p(odin+knn)"}));
  EXPECT_FALSE(ood::needs_images({"fuse_p(msp+knn)"}));
  EXPECT_TRUE(ood::needs_decoder({"fuse_z(heatmap+knn)"}));
}

// ---- the saved state ---------------------------------------------------------------------------------

TEST(MultiFusion, SaveLoadScoresTheSame) {
  Generator g(3);
  const std::vector<double> ha = randoms(g, 20, 1, 0), hb = randoms(g, 20, 5, 2), a = randoms(g, 9, 1, 0),
                            b = randoms(g, 9, 5, 1);
  const std::string dir = ::testing::TempDir() + "oodkit_multi_fusion_" + std::to_string(::getpid()) + "_";
  for (const char* spec : {"z:knn+energy", "p:knn+energy", "pmeanw:knn+energy"}) {
    ood::MultiFusion f(ood::parse_fuse_spec(spec));
    f.fit_components(Parts{&ha, &hb});
    f.configure(f.grid().back());
    const std::string path = dir + f.name();
    f.save(path);
    const std::unique_ptr<ood::Detector> back = ood::load_detector(path);
    EXPECT_EQ(back->name(), f.name());
    EXPECT_EQ(back->components(), f.components());
    EXPECT_EQ(back->params(), f.params());
    EXPECT_EQ(back->combine(Parts{&a, &b}), f.combine(Parts{&a, &b})) << spec;
    std::remove(ood::state_json_path(path).c_str());
    std::remove(ood::state_tensors_path(path).c_str());
  }
}

}  // namespace
