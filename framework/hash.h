// The one digest oodkit stores in files (classifier fingerprints in heatmap decoders, heatmap fit's
// row and skipped-file keys): FNV-1a's 64-bit step over bytes. Not cryptographic; the same value on
// every run and every little-endian machine for the same bytes.
#pragma once
#include <cstddef>
#include <cstdint>

namespace oodkit {

// The start value (the digest of no bytes). NOT the standard FNV-1a offset basis
// 14695981039346656037 (kFnv1aStandardBasis): the first code had it with its last digit lost, and
// the fingerprints in every decoder file written since use this value, so it stays.
constexpr uint64_t kDigestStart = 1469598103934665603ULL;
constexpr uint64_t kFnv1aStandardBasis = 14695981039346656037ULL;  // for tests against the published vectors

// Continues digest `h` over `n` bytes at `data`: h = (h ^ byte) * 1099511628211 for each byte.
inline uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

}  // namespace oodkit
