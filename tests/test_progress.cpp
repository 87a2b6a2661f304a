// tools/progress: the line formats of both modes (terminal, plain), rate, ETA and the final line,
// under a hand-driven clock (no timing in the test).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "run/progress.h"

namespace oodkit::run {
namespace {

// A Progress sink writing to memory, with a clock the test sets.
struct Captured {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  double now = 100.0;  // any origin: Progress measures from its construction
  ~Captured() {
    std::fclose(f);
    std::free(buf);
  }
  ProgressSink sink(bool tty) {
    ProgressSink s;
    s.out = f;
    s.tty = tty;
    s.seconds = [this] { return now; };
    return s;
  }
  std::string text() {
    std::fflush(f);
    return std::string(buf, len);
  }
};

TEST(ProgressTest, FormatDuration) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(-3), "0:00");
  EXPECT_EQ(format_duration(59.4), "0:59");
  EXPECT_EQ(format_duration(59.6), "1:00");
  EXPECT_EQ(format_duration(3599), "59:59");
  EXPECT_EQ(format_duration(3725), "1:02:05");  // 1 h 2 min 5 s
}

TEST(ProgressTest, PlainLinesEveryIntervalThenTheFinalLine) {
  Captured c;
  Progress p("features x", 200, "images", 10.0, c.sink(false));
  c.now += 4;
  p.update(20);  // 4 s < 10 s: nothing yet
  EXPECT_EQ(c.text(), "");
  c.now += 6;
  p.update(50, "loss 0.5000");  // 10 s: 5 images/s, 150 left -> 30 s
  EXPECT_EQ(c.text(), "features x 50/200  5.0 images/s  ETA 0:30  loss 0.5000\n");
  c.now += 5;
  p.update(80);  // 5 s since the last line: nothing
  c.now += 25;
  p.update(200);  // done: left to finish(), which gives the total time
  EXPECT_EQ(c.text(), "features x 50/200  5.0 images/s  ETA 0:30  loss 0.5000\n");
  p.finish("loss 0.2500");  // 40 s in all: 200 / 40 = 5 images/s
  p.finish("again");        // idempotent
  EXPECT_EQ(c.text(),
            "features x 50/200  5.0 images/s  ETA 0:30  loss 0.5000\n"
            "features x 200/200  5.0 images/s  0:40  loss 0.2500\n");
}

TEST(ProgressTest, TerminalLineUpdatesInPlaceAndEndsWithANewline) {
  Captured c;
  Progress p("epoch 1/3", 40, "batches", 10.0, c.sink(true));
  c.now += 0.1;
  p.update(1);  // 0.1 s < 0.2 s: nothing
  EXPECT_EQ(c.text(), "");
  c.now += 1.9;
  p.update(10, "loss 2.3000");  // 2 s: 5 batches/s, 30 left -> 6 s
  c.now += 0.1;
  p.update(11);  // too soon after the last line
  c.now += 2;
  p.update(40);  // 4.1 s: 40 / 4.1 = 9.756... batches/s, nothing left: no ETA
  c.now += 0.9;
  p.finish();  // 5 s in all
  EXPECT_EQ(c.text(),
            "\r\033[Kepoch 1/3 10/40  5.0 batches/s  ETA 0:06  loss 2.3000"
            "\r\033[Kepoch 1/3 40/40  9.8 batches/s"
            "\r\033[Kepoch 1/3 40/40  8.0 batches/s  0:05\n");
}

TEST(ProgressTest, FinishWithoutUpdatesReportsZero) {
  Captured c;
  Progress p("step", 7, "items", 10.0, c.sink(false));
  p.finish();
  EXPECT_EQ(c.text(), "step 0/7  0.0 items/s  0:00\n");
}

}  // namespace
}  // namespace oodkit::run
