// The two error kinds (framework/error.h): user errors (OODKIT_CHECK/OODKIT_FAIL) whose what() is
// the message alone, with the source location kept in where(); internal invariants
// (OODKIT_ASSERT/OODKIT_UNREACHABLE) whose what() keeps it. Plus which kind a few real library
// checks raise. tests/cli/check_errors.py checks what the command line prints.
#include <cstdlib>
#include <typeinfo>
#include <string>

#include "framework/autograd.h"
#include "framework/error.h"
#include "framework/ops/elementwise.h"
#include "framework/tensor.h"
#include "testing.h"

using namespace oodkit;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Calls `f`, which must throw exactly `E` (an InternalError is not an Error here), and returns it.
template <class E, class F>
E caught(F f) {
  try {
    f();
  } catch (const E& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << "thrown: " << e.what();
    return e;
  }
  ADD_FAILURE() << "no exception of the expected type";
  return E("none", "");
}

// Sets OODKIT_DEBUG for one scope (unset: nullptr) and restores the previous value.
class DebugEnv {
 public:
  explicit DebugEnv(const char* value) {
    if (const char* old = std::getenv("OODKIT_DEBUG")) old_ = old, had_ = true;
    if (value) ::setenv("OODKIT_DEBUG", value, 1);
    else ::unsetenv("OODKIT_DEBUG");
  }
  ~DebugEnv() {
    if (had_) ::setenv("OODKIT_DEBUG", old_.c_str(), 1);
    else ::unsetenv("OODKIT_DEBUG");
  }

 private:
  std::string old_;
  bool had_ = false;
};

}  // namespace

TEST(Errors, CheckMessageIsWhatAndLocationIsWhere) {
  const int n = 3;
  const int line = __LINE__ + 1;
  const Error e = caught<Error>([&] { OODKIT_CHECK(n == 4, "--count must be 4, got ", n); });
  EXPECT_EQ(std::string(e.what()), "--count must be 4, got 3");
  EXPECT_EQ(e.where(), "`n == 4` at " __FILE__ ":" + std::to_string(line));
}

TEST(Errors, FailHasALocationWithoutExpression) {
  const int line = __LINE__ + 1;
  const Error e = caught<Error>([] { OODKIT_FAIL("unknown thing 'x' (known: a, b)"); });
  EXPECT_EQ(std::string(e.what()), "unknown thing 'x' (known: a, b)");
  EXPECT_EQ(e.where(), "at " __FILE__ ":" + std::to_string(line));
}

TEST(Errors, AssertIsAnInternalErrorWithItsLocationInWhat) {
  const int line = __LINE__ + 1;
  const InternalError e = caught<InternalError>([] { OODKIT_ASSERT(1 + 1 == 3, "arithmetic broke"); });
  const std::string where = "`1 + 1 == 3` at " __FILE__ ":" + std::to_string(line);
  EXPECT_EQ(e.where(), where);
  EXPECT_EQ(std::string(e.what()), "internal error: arithmetic broke (" + where + "); please report this");
  // Still an oodkit::Error: callers that catch Error see it.
  try {
    OODKIT_UNREACHABLE("no branch");
  } catch (const Error& base) {
    EXPECT_TRUE(contains(base.what(), "internal error: no branch")) << base.what();
  }
}

TEST(Errors, ErrorTextAddsTheLocationOnlyWhenAsked) {
  const Error user = caught<Error>([] { OODKIT_CHECK(false, "bad --x"); });
  EXPECT_EQ(error_text(user, false), "bad --x");
  EXPECT_EQ(error_text(user, true), "bad --x (" + user.where() + ")");
  // An internal error already shows its location: not twice.
  const InternalError internal = caught<InternalError>([] { OODKIT_UNREACHABLE("oops"); });
  EXPECT_EQ(error_text(internal, true), std::string(internal.what()));
  EXPECT_EQ(error_text(internal, false), std::string(internal.what()));
  // Errors without a location (thrown directly) and other exceptions: what() alone.
  EXPECT_EQ(error_text(Error("plain"), true), "plain");
  EXPECT_EQ(error_text(std::runtime_error("json"), true), "json");
}

TEST(Errors, DebugFlagFromTheEnvironment) {
  {
    DebugEnv env(nullptr);
    EXPECT_FALSE(debug_errors_requested());
  }
  {
    DebugEnv env("0");
    EXPECT_FALSE(debug_errors_requested());
  }
  {
    DebugEnv env("");
    EXPECT_FALSE(debug_errors_requested());
  }
  {
    DebugEnv env("1");
    EXPECT_TRUE(debug_errors_requested());
  }
}

// A public API's argument check is a user error: its message stands alone.
TEST(Errors, LibraryArgumentCheckIsAUserError) {
  const Tensor t = Tensor::zeros({2, 3});
  const Error e = caught<Error>([&] { (void)t.reshape({4, 2}); });
  EXPECT_TRUE(contains(e.what(), "reshape: cannot reshape")) << e.what();
  EXPECT_FALSE(contains(e.what(), ".cpp")) << e.what();
  EXPECT_TRUE(contains(e.where(), "tensor_autograd.cpp:")) << e.where();
}

// Graph consistency is an internal invariant: a backward that returns the wrong number of
// gradients is an oodkit bug, reported with its location.
TEST(Errors, AutogradGradientCountIsAnInvariant) {
  Tensor x = Tensor::ones({2});
  x.set_requires_grad(true);
  Tensor y = x.detach().clone();
  autograd::record(y, "broken", {x}, [](const Tensor&) { return std::vector<Tensor>{}; });
  Tensor s = ops::sum(y);
  const InternalError e = caught<InternalError>([&] { autograd::backward(s); });
  EXPECT_TRUE(contains(e.what(), "internal error: autograd: broken returned 0 gradients for 1 inputs")) << e.what();
  EXPECT_TRUE(contains(e.what(), "autograd.cpp:")) << e.what();
}
