// Small file helpers shared by the data loaders: whole-file reads and gzip decompression.
// Every error names the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace oodkit::data {

// The whole file. Throws "cannot open '<path>'" / "cannot read '<path>'", and OutOfMemoryError
// naming the file when its bytes do not fit in host memory.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// True when `bytes` start with the gzip magic 1f 8b.
bool is_gzip(const std::vector<uint8_t>& bytes);

// The most bytes gunzip produces unless told otherwise (a few hundred bytes of gzip can expand to
// gigabytes; the largest file oodkit reads, Tiny ImageNet's IDX-sized arrays, is far below it).
constexpr size_t kMaxGunzipBytes = size_t(4) << 30;

// Decompresses a gzip stream (one or more concatenated members, as gzip(1) writes them).
// `path` only names the source in errors: a corrupt stream ("... is not a valid gzip stream:
// <zlib message>"), a CRC mismatch, a truncated stream, or trailing garbage. At most max_bytes are
// produced: more is an error naming the file and the limit ("decompresses to more than N bytes"),
// or, with prefix_only, the first max_bytes are returned (the stream is not checked further: for
// reading a header before the whole file).
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& bytes, const std::string& path,
                            size_t max_bytes = kMaxGunzipBytes, bool prefix_only = false);

// read_file_bytes, then gunzip when the content is gzip (by magic, not by file name).
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

// Lower-cased file extension with the dot (".png"), or "" when there is none.
std::string lower_extension(const std::string& path);

}  // namespace oodkit::data
