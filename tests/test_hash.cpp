// framework/hash.h. The FNV-1a step from the standard basis against its authors' published test
// vectors ("" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c, "foobar" -> 85944171f73967e8); from
// oodkit's start value against the same loop in Python (the digests stored in decoder files);
// continuing a digest equals digesting the joined bytes.
#include <gtest/gtest.h>

#include <cstring>

#include "framework/hash.h"

using namespace oodkit;

namespace {
uint64_t digest(uint64_t start, const char* s) { return fnv1a(start, s, std::strlen(s)); }
}  // namespace

TEST(Hash, StepFromTheStandardBasisMatchesThePublishedVectors) {
  EXPECT_EQ(digest(kFnv1aStandardBasis, ""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(digest(kFnv1aStandardBasis, "a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(digest(kFnv1aStandardBasis, "foobar"), 0x85944171f73967e8ULL);
}

// python3: h = 1469598103934665603; for c in b"foobar": h = ((h ^ c) * 1099511628211) % 2**64
TEST(Hash, OodkitStartValueGivesTheStoredDigests) {
  EXPECT_EQ(digest(kDigestStart, ""), 0x14650fb0739d0383ULL);
  EXPECT_EQ(digest(kDigestStart, "a"), 0x44bd8ad473cd9906ULL);
  EXPECT_EQ(digest(kDigestStart, "foobar"), 0x88fad7c0a8ff07f2ULL);
}

TEST(Hash, ContinuingADigestEqualsDigestingTheJoinedBytes) {
  EXPECT_EQ(fnv1a(digest(kDigestStart, "foo"), "bar", 3), digest(kDigestStart, "foobar"));
}
