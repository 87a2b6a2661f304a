// The plan checks of run/plan.h that `heatmap fit`, `train` and `study` make before any work
// (check_predicted_classes_covered, check_batch_fits, check_image_size), against hand-worked
// cases. The commands' refusals end to end: tests/cli/check_plan_commands.py.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/error.h"
#include "run/plan.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::error_of;

namespace {

Tensor classes(const std::vector<int64_t>& c) { return Tensor::from_vector(c, {int64_t(c.size())}); }

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(PlanChecks, PredictedClassesCoveredWhenEveryQueryClassHasRows) {
  // Database classes {0, 2}; queries of classes 2 and 0 only: each has a row of its class.
  EXPECT_EQ(error_of([] {
              run::check_predicted_classes_covered(classes({0, 0, 2}), classes({2, 0, 2}), "ID rows", "OE images",
                                                   "--id-limit");
            }),
            "");
  // A database class no query has is fine too; no queries at all as well.
  EXPECT_EQ(error_of([] {
              run::check_predicted_classes_covered(classes({0, 1, 2}), classes({1}), "ID rows", "OE images", "--x");
            }),
            "");
}

TEST(PlanChecks, PredictedClassesNotCoveredNamesTheOptionTheFirstClassAndTheCounts) {
  // Database {0, 2}; queries 1, 3, 1, 0, 3, 3: classes 1 (2 queries) and 3 (3) have no rows.
  const std::string msg = error_of([] {
    run::check_predicted_classes_covered(classes({2, 0}), classes({1, 3, 1, 0, 3, 3}), "ID rows", "OE images",
                                         "--id-limit");
  });
  EXPECT_TRUE(has(msg, "--id-limit leaves no ID rows predicted as class 1, the predicted class of 2 of the 6 OE images "
                       "(2 such classes; 2 ID rows)")) << msg;
  EXPECT_TRUE(has(msg, "give a larger --id-limit or -1 (all)")) << msg;
}

TEST(PlanChecks, BatchFitsUpToTheTrainingSize) {
  EXPECT_EQ(error_of([] { run::check_batch_fits(10, 10, "s", "--batch"); }), "");
  EXPECT_EQ(error_of([] { run::check_batch_fits(1, 10, "s", "--batch"); }), "");
  const std::string msg = error_of([] { run::check_batch_fits(11, 10, "cifar10:train", "--batch"); });
  EXPECT_TRUE(has(msg, "--batch 11 is larger than the 10 training images of 'cifar10:train'")) << msg;
  EXPECT_TRUE(has(msg, "give a --batch of 10 or less")) << msg;
}

TEST(PlanChecks, ImageSizeMustBeSquare32Or64) {
  const auto with = [](int64_t h, int64_t w) {
    data::Dataset ds;
    ds.images = Tensor::zeros({2, 3, h, w}, DType::U8);
    return ds;
  };
  EXPECT_EQ(error_of([&] { run::check_image_size(with(32, 32), "a", "--id"); }), "");
  EXPECT_EQ(error_of([&] { run::check_image_size(with(64, 64), "a", "--id"); }), "");
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{28, 28}, {32, 64}, {48, 48}, {64, 32}}) {
    const std::string msg = error_of([&, h = h, w = w] { run::check_image_size(with(h, w), "folder:x", "--id"); });
    EXPECT_TRUE(has(msg, "--id 'folder:x': the images are " + std::to_string(h) + "x" + std::to_string(w) +
                             " pixels; the classifiers take 32x32 or 64x64 images"))
        << h << "x" << w << ": " << msg;
  }
}
