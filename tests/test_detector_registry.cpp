// The method registry (ood/detectors.h): every registered name constructs, saves and reloads with
// identical scores; grids come from the registration and --set overrides them; feature columns
// follow the declared needs; the README's method list is the registry's; fusions load as detectors.
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "models/resnet_cifar.h"
#include "ood/detectors.h"
#include "ood/fusion.h"
#include "ood/heatmap.h"
#include "ood/protocol.h"
#include "ood/state_io.h"
#include "testing.h"

using namespace oodkit;

namespace {

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "oodkit_registry_" + name; }

// Runs f, expects an oodkit::Error whose message holds every one of `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << parts.front();
  } catch (const Error& e) {
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

// A small random network, its features and images.
struct Fixture {
  Generator gen{5};
  models::ResNetCifar net{8, 4, gen};
  ood::FeatureOptions fo;
  Fixture() {
    net.eval();
    fo.ta_thresholds = {0.1, 0.2};
  }
  Tensor images(int64_t n, double shift) {
    Tensor x = Tensor::randn({n, 3, 16, 16}, gen);
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = float(p[i] * (1.0 + shift) + shift);
    return x;
  }
  // Training labels 0, 1, 2, 3, 0, ... for n images.
  static Tensor labels(int64_t n) {
    Tensor y = Tensor::empty({n}, DType::I64);
    for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = i % 4;
    return y;
  }
};

TEST(DetectorRegistry, ExpandGridIsTheProductFirstAxisOutermost) {
  const std::vector<ood::Params> g = ood::expand_grid({{"a", {1, 2}}, {"b", {3, 4, 5}}});
  const std::vector<ood::Params> want{{{"a", 1}, {"b", 3}}, {{"a", 1}, {"b", 4}}, {{"a", 1}, {"b", 5}},
                                      {{"a", 2}, {"b", 3}}, {{"a", 2}, {"b", 4}}, {{"a", 2}, {"b", 5}}};
  EXPECT_EQ(g, want);
  EXPECT_EQ(ood::expand_grid({}), std::vector<ood::Params>{ood::Params{}});
  EXPECT_THROW(ood::expand_grid({{"a", {}}}), Error);
}

TEST(DetectorRegistry, NamesAreUniqueAndListsDeriveFromTheTable) {
  std::vector<std::string> all;
  for (const ood::DetectorInfo& d : ood::detector_registry()) {
    EXPECT_EQ(std::count(all.begin(), all.end(), d.name), 0) << d.name;
    all.push_back(d.name);
    for (const std::string& c : d.components) EXPECT_TRUE(ood::is_registered(c)) << d.name << " -> " << c;
  }
  EXPECT_EQ(ood::all_method_names(true), all);
  const std::vector<std::string> plain = ood::all_method_names(false);
  for (const std::string& n : plain) EXPECT_FALSE(ood::detector_info(n).needs_decoder) << n;
  EXPECT_EQ(plain.size() + 5, all.size());  // heatmap and its four fusions
  // The protocol's image-based methods are the registered ones (and fusions with one).
  for (const char* m : {"odin", "mahalanobis_noise", "fsta_odin"}) EXPECT_TRUE(ood::needs_images({m})) << m;
  for (const char* m : {"msp", "knn", "fsta_energy", "nap_e", "heatmap_nap"}) EXPECT_FALSE(ood::needs_images({m})) << m;
  expect_error([] { ood::make_detector("bogus"); }, {"bogus", "msp", "heatmap_energy"});
}

// The family each method is reported under (results.json "family", the report's grouping),
// written out by hand from what each detector reads (docs/methods.md).
TEST(DetectorRegistry, FamiliesAreWhatEachDetectorReads) {
  const std::map<std::string, std::string> expected = {
      {"msp", "logit"},         {"maxlogit", "logit"},          {"energy", "logit"},    {"odin", "logit"},
      {"mahalanobis", "feature"}, {"mahalanobis_noise", "feature"}, {"react", "feature"}, {"ash_p", "feature"},
      {"ash_b", "feature"},     {"ash_s", "feature"},           {"dice", "feature"},    {"knn", "feature"},
      {"gradnorm", "feature"},  {"vim", "feature"},             {"nap", "feature map"}, {"nap_mean", "feature map"},
      {"fs", "feature map"},    {"fs_ta", "feature map"},       {"heatmap", "heatmap"}};
  for (const ood::DetectorInfo& d : ood::detector_registry()) {
    const std::string family = ood::family_name(d.family);
    if (!d.components.empty()) {
      EXPECT_EQ(family, "fusion") << d.name;
    } else {
      ASSERT_TRUE(expected.count(d.name)) << d.name << " (" << family << ") is not in this test's list";
      EXPECT_EQ(family, expected.at(d.name)) << d.name;
    }
  }
}

TEST(DetectorRegistry, GridsAndDefaultsComeFromTheRegistration) {
  for (const std::string& n : ood::all_method_names(true)) {
    const ood::DetectorInfo& info = ood::detector_info(n);
    const std::unique_ptr<ood::Detector> d = ood::make_detector(n);
    EXPECT_EQ(d->name(), n);
    EXPECT_EQ(d->axes(), info.grid) << n;
    if (n != "fs_ta") EXPECT_EQ(d->grid(), ood::expand_grid(info.grid)) << n;  // fs_ta: the extracted thresholds
  }
  // Hand-written: ODIN's 4 x 6 grid, T outermost, and its official default.
  const std::unique_ptr<ood::Detector> odin = ood::make_detector("odin");
  const std::vector<ood::Params> g = odin->grid();
  ASSERT_EQ(g.size(), 24u);
  EXPECT_EQ(g[1], (ood::Params{{"T", 1.0}, {"eps", 0.0005}}));
  EXPECT_EQ(g[6], (ood::Params{{"T", 10.0}, {"eps", 0.0}}));
  EXPECT_EQ(odin->defaults(), (ood::Params{{"T", 1000.0}, {"eps", 0.0014}}));
  EXPECT_EQ(ood::make_detector("mahalanobis_noise")->defaults(), (ood::Params{{"eps", 0.0}}));
  EXPECT_EQ(ood::make_detector("nap_e")->grid().size(), 11u);
  EXPECT_EQ(ood::make_detector("fsta_msp")->grid().front(), (ood::Params{{"lambda", 0.001}}));
}

TEST(DetectorRegistry, SetParsesGoodEntries) {
  const ood::Settings s = ood::parse_settings({"react.p=80,90", "odin.T=1000", "nap_e.w=0.25", "knn.k=1e1"});
  EXPECT_EQ(s.at("react").at("p"), (std::vector<double>{80, 90}));
  EXPECT_EQ(s.at("odin").at("T"), (std::vector<double>{1000}));
  EXPECT_EQ(s.at("nap_e").at("w"), (std::vector<double>{0.25}));
  EXPECT_EQ(s.at("knn").at("k"), (std::vector<double>{10}));

  // A list is the grid (the default stays); a single value fixes the key (grid and default).
  std::unique_ptr<ood::Detector> react = ood::make_detector("react");
  ood::apply_settings(*react, s);
  EXPECT_EQ(react->grid(), (std::vector<ood::Params>{{{"p", 80}}, {{"p", 90}}}));
  EXPECT_EQ(react->defaults(), (ood::Params{{"p", 90}}));
  std::unique_ptr<ood::Detector> odin = ood::make_detector("odin");
  ood::apply_settings(*odin, s);
  ASSERT_EQ(odin->grid().size(), 6u);  // T fixed, eps still tuned
  for (const ood::Params& p : odin->grid()) EXPECT_EQ(p.at("T"), 1000);
  EXPECT_EQ(odin->defaults(), (ood::Params{{"T", 1000.0}, {"eps", 0.0014}}));
  std::unique_ptr<ood::Detector> fixed = ood::make_detector("react");
  ood::apply_settings(*fixed, ood::parse_settings({"react.p=85"}));
  EXPECT_EQ(fixed->grid(), (std::vector<ood::Params>{{{"p", 85}}}));
  EXPECT_EQ(fixed->defaults(), (ood::Params{{"p", 85}}));
  std::unique_ptr<ood::Detector> msp = ood::make_detector("msp");
  ood::apply_settings(*msp, s);  // no entry for msp: unchanged
  EXPECT_EQ(msp->grid(), std::vector<ood::Params>{ood::Params{}});
}

TEST(DetectorRegistry, SetRefusesBadEntriesNamingTheValidOnes) {
  expect_error([] { ood::parse_settings({"bogus.p=1"}); }, {"--set 'bogus.p=1'", "unknown method 'bogus'", "react"});
  expect_error([] { ood::parse_settings({"react.q=1"}); }, {"react.q=1", "no setting 'q'", "its settings: p"});
  expect_error([] { ood::parse_settings({"odin.p=1"}); }, {"odin.p=1", "T, eps"});
  expect_error([] { ood::parse_settings({"msp.T=1"}); }, {"msp.T=1", "no settings"});
  expect_error([] { ood::parse_settings({"fsta_msp.w=1"}); }, {"fsta_msp.w=1", "lambda"});
  for (const char* bad : {"react.p=", "react.p=abc", "react.p=1,,2", "react.p=80,", "react.p=9x", "react.p=inf"})
    expect_error([&] { ood::parse_settings({bad}); }, {bad});
  for (const char* bad : {"reactp=1", "react=1", "react.p"}) expect_error([&] { ood::parse_settings({bad}); }, {"expected"});
  expect_error([] { ood::parse_settings({"react.p=80", "react.p=90"}); }, {"twice"});
}

// Every registered method: fitted (a fusion: on component scores), configured at a non-first
// setting where it has one, saved, reloaded by load_detector without fitting: the same scores.
TEST(DetectorRegistry, EveryMethodSavesAndReloadsWithIdenticalScores) {
  Fixture f;
  const ood::Features train = ood::extract_features(f.net, f.images(48, 0.0), f.fo);
  const ood::Features held = ood::extract_features(f.net, f.images(16, 0.0), f.fo);
  const ood::FitContext fit{&train, Fixture::labels(48), &held, f.net.head().weight, f.net.head().bias};
  const Tensor test_images = f.images(12, 0.3);
  const ood::Features test = ood::extract_features(f.net, test_images, f.fo);
  const ood::ImageContext ic{&f.net, {0.5f, 0.5f, 0.5f}};
  ood::HeatmapModelInfo info;
  info.config = {train.z.size(1), 4, 8, {8, 4}};
  info.norm = ood::fit_feature_norm(train.z);
  Generator g(3);
  auto decoder = std::make_shared<ood::HeatmapModel>(info, g);
  std::vector<double> a(12), b(12);
  for (int i = 0; i < 12; ++i) {
    a[size_t(i)] = 0.5 + 0.1 * i;
    b[size_t(i)] = 2.0 - 0.07 * i * i;
  }

  for (const std::string& n : ood::all_method_names(true)) {
    SCOPED_TRACE(n);
    std::unique_ptr<ood::Detector> d =
        n == "heatmap" ? std::make_unique<ood::HeatmapDetector>(decoder) : ood::make_detector(n);
    auto* fusion = dynamic_cast<ood::Fusion*>(d.get());
    ASSERT_EQ(fusion != nullptr, !ood::detector_info(n).components.empty());
    if (fusion) fusion->fit_components(a, b);
    else d->fit(fit);
    const std::vector<ood::Params> grid = d->grid();
    d->configure(grid[grid.size() > 1 ? 1 : 0]);
    const auto scores = [&](const ood::Detector& x) {
      if (const auto* fu = dynamic_cast<const ood::Fusion*>(&x)) return fu->combine(a, b);
      return ood::to_doubles(x.uses_images() ? x.score_images(ic, test_images) : x.score(test));
    };
    const std::vector<double> before = scores(*d);
    ASSERT_EQ(before.size(), 12u);
    const std::string path = temp_path("save_" + n);
    d->save(path);
    const std::unique_ptr<ood::Detector> loaded = ood::load_detector(path);
    EXPECT_EQ(loaded->name(), n);
    EXPECT_EQ(loaded->params(), d->params());
    EXPECT_EQ(loaded->components(), d->components());
    EXPECT_EQ(loaded->uses_images(), d->uses_images());
    EXPECT_EQ(scores(*loaded), before);
  }
}

// A fusion state written by an older run (no fusion_kind: geometric by the `geometric` flag)
// loads through load_detector and fuses as s_a^w s_b^(1-w).
TEST(DetectorRegistry, OlderFusionStateLoads) {
  const std::string path = temp_path("old_fusion");
  ood::StateWriter w("fusion");
  w.text("name", "nap_e").text("a", "energy").text("b", "nap").integer("geometric", 1).number("w", 0.25);
  w.save(path);
  const std::unique_ptr<ood::Detector> d = ood::load_detector(path);
  EXPECT_EQ(d->components(), (std::vector<std::string>{"energy", "nap"}));
  EXPECT_EQ(d->params(), (ood::Params{{"w", 0.25}}));
  const std::vector<double> s = dynamic_cast<const ood::Fusion&>(*d).combine({16.0}, {1.0});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_NEAR(s[0], std::pow(16.0, 0.25), 1e-12);  // 2
}

TEST(DetectorRegistry, ExtractionComputesOnlyTheDeclaredColumns) {
  Fixture f;
  const Tensor x = f.images(6, 0.0);
  EXPECT_FALSE(ood::feature_needs({"msp", "odin", "knn", "heatmap"}).nap);
  const ood::FeatureNeeds fsta = ood::feature_needs({"fsta_energy"});
  EXPECT_TRUE(fsta.fs_ta && !fsta.nap && !fsta.fs);
  const ood::FeatureNeeds nap = ood::feature_needs({"nap_r", "fs"});
  EXPECT_TRUE(nap.nap && nap.fs && !nap.fs_ta);

  const ood::Features all = ood::extract_features(f.net, x, f.fo);
  ood::FeatureOptions only_logits = f.fo;
  only_logits.needs = ood::feature_needs({"msp", "energy"});
  const ood::Features few = ood::extract_features(f.net, x, only_logits);
  EXPECT_TRUE(few.fs_ta.empty());  // no TA tail pass
  EXPECT_FALSE(few.nap.defined() || few.fs.defined());
  EXPECT_EQ(ood::to_doubles(few.logits), ood::to_doubles(all.logits));
  EXPECT_EQ(ood::to_doubles(few.z), ood::to_doubles(all.z));
  const ood::Features joined = ood::concat_features({few, few});
  EXPECT_EQ(joined.size(), 12);
  EXPECT_FALSE(joined.nap.defined());
  ood::FeatureOptions with_nap = f.fo;
  with_nap.needs = ood::feature_needs({"nap"});
  const ood::Features n = ood::extract_features(f.net, x, with_nap);
  EXPECT_EQ(ood::to_doubles(n.nap), ood::to_doubles(all.nap));
  EXPECT_TRUE(n.fs_ta.empty());
  expect_error([&] { ood::make_detector("nap")->score(few); }, {"nap", "without the NAP"});
}

// --set inside the protocol: a fixed value is the reported setting; a list is the grid tried.
TEST(DetectorRegistry, ProtocolUsesSetOverrides) {
  Fixture f;
  const ood::Features train = ood::extract_features(f.net, f.images(64, 0.0), f.fo);
  const ood::Features held = ood::extract_features(f.net, f.images(16, 0.0), f.fo);
  ood::ProtocolInput in;
  in.model = &f.net;
  in.tuning = ood::Tuning::All;
  in.fit = {&train, Fixture::labels(64), &held, f.net.head().weight, f.net.head().bias};
  const auto set = [&](const std::string& name, int64_t n, double shift) {
    const Tensor x = f.images(n, shift);
    return ood::ScoredSet{name, ood::extract_features(f.net, x, f.fo), x};
  };
  in.val_id = set("val_id", 20, 0.0);
  in.val_ood = set("val_ood", 20, 0.7);
  in.test_id = set("test_id", 12, 0.0);
  in.test_ood = {set("far", 12, 1.5)};
  in.settings = ood::parse_settings({"react.p=85", "knn.k=1,10", "nap_e.w=0.3"});
  std::vector<std::string> progress;
  const std::vector<ood::MethodResult> r =
      ood::run_protocol(in, {"react", "knn", "nap_e"}, [&](const std::string& s) { progress.push_back(s); });
  EXPECT_EQ(r[0].chosen, (ood::Params{{"p", 85}}));
  EXPECT_TRUE(r[1].chosen.at("k") == 1 || r[1].chosen.at("k") == 10);
  EXPECT_EQ(r[2].chosen, (ood::Params{{"w", 0.3}}));
  // Settings tried: react once, knn twice, energy 1, nap 1, nap_e once.
  EXPECT_EQ(progress.size(), 6u);
}

// The README's method list (a block between markers) is the registry's, in registry order.
TEST(DetectorRegistry, ReadmeListsExactlyTheRegisteredMethods) {
  const std::string path = std::string(OODKIT_SOURCE_DIR) + "/README.md";  // tests/CMakeLists.txt
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string readme = ss.str();
  const std::string begin = "<!-- methods: generated from the registry", end = "<!-- /methods -->";
  const size_t b = readme.find(begin), e = readme.find(end);
  ASSERT_TRUE(b != std::string::npos && e != std::string::npos && b < e) << "README.md has no method block";
  const std::string block = readme.substr(readme.find('\n', b) + 1, e - readme.find('\n', b) - 1);
  const auto words = [](const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : " ") + n;
    return s;
  };
  std::vector<std::string> detectors, fusions, decoder;
  for (const ood::DetectorInfo& d : ood::detector_registry())
    (d.needs_decoder ? decoder : d.components.empty() ? detectors : fusions).push_back(d.name);
  const std::string want = "- detectors: `" + words(detectors) + "`\n- fusions: `" + words(fusions) +
                           "`\n- with a trained decoder (`--heatmap DIR`): `" + words(decoder) + "`\n";
  EXPECT_EQ(block, want) << "README.md's method block should read:\n" << want;
}

}  // namespace
