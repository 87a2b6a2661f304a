#include "data/io.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cctype>
#include <fstream>
#include <new>

#include "framework/error.h"

namespace oodkit::data {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  errno = 0;
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  OODKIT_CHECK(f.good(), "cannot open '", path, "'", errno ? std::string(": ") + std::strerror(errno) : std::string());
  const std::streamsize size = f.tellg();
  OODKIT_CHECK(size >= 0, "cannot read '", path, "' (not a regular file?)");
  f.seekg(0);
  std::vector<uint8_t> bytes;
  try {
    bytes.resize(static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    throw OutOfMemoryError(detail::str_cat("out of host memory reading '", path, "' (", size, " bytes)"));
  }
  OODKIT_CHECK(size == 0 || f.read(reinterpret_cast<char*>(bytes.data()), size), "cannot read '", path, "'");
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& bytes, const std::string& path, size_t max_bytes,
                            bool prefix_only) {
  OODKIT_CHECK(is_gzip(bytes), "'", path, "' is not a gzip stream (no 1f 8b magic)");
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header and check the CRC-32 and length trailer.
  OODKIT_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "gunzip '", path, "': inflateInit2 failed");
  struct Guard {
    z_stream* s;
    ~Guard() { inflateEnd(s); }
  } guard{&zs};

  std::vector<uint8_t> out;
  out.reserve(std::min(bytes.size() * 4, max_bytes));
  size_t in_pos = 0;
  std::vector<uint8_t> chunk(1 << 18);
  while (true) {
    // zlib's avail_in is 32-bit: feed at most 1 GiB at a time.
    if (zs.avail_in == 0 && in_pos < bytes.size()) {
      const size_t n = std::min<size_t>(bytes.size() - in_pos, size_t(1) << 30);
      zs.next_in = const_cast<Bytef*>(bytes.data() + in_pos);
      zs.avail_in = uInt(n);
      in_pos += n;
    }
    zs.next_out = chunk.data();
    zs.avail_out = uInt(chunk.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), chunk.data(), chunk.data() + (chunk.size() - zs.avail_out));
    if (out.size() >= max_bytes && prefix_only) {
      out.resize(max_bytes);
      return out;
    }
    OODKIT_CHECK(out.size() <= max_bytes, "'", path, "' decompresses to more than ", max_bytes,
                 " bytes (the most expected of it); it is not a file oodkit can read");
    if (rc == Z_STREAM_END) {
      // Another member may follow (gzip(1) concatenation); anything else is garbage.
      const size_t consumed = in_pos - zs.avail_in;
      if (consumed == bytes.size()) break;
      const bool next_member = bytes.size() - consumed >= 2 && bytes[consumed] == 0x1f && bytes[consumed + 1] == 0x8b;
      OODKIT_CHECK(next_member, "'", path, "' has ", bytes.size() - consumed,
                   " bytes of trailing garbage after the gzip stream");
      OODKIT_CHECK(inflateReset(&zs) == Z_OK, "gunzip '", path, "': inflateReset failed");
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos == bytes.size())
      OODKIT_FAIL("'", path, "' is truncated: the gzip stream ends after ", bytes.size(),
                  " bytes without its end marker");
    OODKIT_CHECK(rc == Z_OK || rc == Z_BUF_ERROR, "'", path, "' is not a valid gzip stream: ",
                 zs.msg ? zs.msg : "zlib error", " (code ", rc, ")");
  }
  return out;
}

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return is_gzip(bytes) ? gunzip(bytes, path) : bytes;
}

std::string lower_extension(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}

}  // namespace oodkit::data
