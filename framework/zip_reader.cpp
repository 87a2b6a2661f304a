#include "framework/zip_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "framework/error.h"

namespace oodkit {

#define OODKIT_ZIP_CHECK(cond, ...) OODKIT_CHECK(cond, prefix(), __VA_ARGS__)
#define OODKIT_ZIP_FAIL(...) OODKIT_FAIL(prefix(), __VA_ARGS__)

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20;
// The largest central directory read (a few hundred bytes per entry: millions of entries).
constexpr uint64_t kMaxCentralDirectory = uint64_t(256) << 20;

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
uint64_t u64(const uint8_t* p) { return uint64_t(u32(p)) | (uint64_t(u32(p + 4)) << 32); }

// a + b <= limit, without overflow.
bool fits(uint64_t a, uint64_t b, uint64_t limit) { return a <= limit && b <= limit - a; }

uint32_t crc_of(const uint8_t* p, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    crc = crc32(crc, p, uInt(chunk));
    p += chunk;
    n -= chunk;
  }
  return uint32_t(crc);
}

}  // namespace

std::string ZipReader::prefix() const { return what_ + " '" + path_ + "': "; }

ZipReader::ZipReader(const std::string& path, std::string what) : path_(path), what_(std::move(what)) {
  do {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  OODKIT_ZIP_CHECK(fd_ >= 0, "cannot open for reading: ", std::strerror(errno));
  try {
    struct stat st;
    OODKIT_ZIP_CHECK(::fstat(fd_, &st) == 0, "cannot stat: ", std::strerror(errno));
    OODKIT_ZIP_CHECK(S_ISREG(st.st_mode), "not a regular file");
    file_size_ = uint64_t(st.st_size);
    OODKIT_ZIP_CHECK(file_size_ >= kEndSize, "file is ", file_size_,
                     " bytes, too short for a ZIP archive (truncated?)");

    // The end-of-central-directory record: the last one in the final 22 + 65535 bytes (its
    // comment is at most 65535 bytes) whose comment ends within the file.
    const size_t tail_size = size_t(std::min<uint64_t>(file_size_, kEndSize + 0xffff));
    std::vector<uint8_t> tail(tail_size);
    read_at(tail.data(), tail_size, file_size_ - tail_size);
    size_t end_pos = SIZE_MAX;
    for (size_t i = tail_size - kEndSize + 1; i-- > 0;) {
      if (u32(&tail[i]) == kEndSig && i + kEndSize + u16(&tail[i + 20]) <= tail_size) {
        end_pos = i;
        break;
      }
    }
    OODKIT_ZIP_CHECK(end_pos != SIZE_MAX, "no ZIP end-of-central-directory record (truncated or not a ZIP archive)");
    const uint8_t* end = &tail[end_pos];
    const uint64_t end_offset = file_size_ - tail_size + end_pos;
    uint64_t disk = u16(end + 4), cd_disk = u16(end + 6), count_here = u16(end + 8), count = u16(end + 10);
    uint64_t cd_size = u32(end + 12), cd_offset = u32(end + 16);

    // ZIP64: a locator right before the record points at the ZIP64 end record.
    if (end_offset >= kZip64LocatorSize) {
      uint8_t loc[kZip64LocatorSize];
      read_at(loc, kZip64LocatorSize, end_offset - kZip64LocatorSize);
      if (u32(loc) == kZip64LocatorSig) {
        const uint64_t z_offset = u64(loc + 8);
        OODKIT_ZIP_CHECK(fits(z_offset, kZip64EndSize, end_offset - kZip64LocatorSize),
                         "ZIP64 end record offset ", z_offset, " lies outside the file");
        uint8_t z[kZip64EndSize];
        read_at(z, kZip64EndSize, z_offset);
        OODKIT_ZIP_CHECK(u32(z) == kZip64EndSig, "no ZIP64 end record at offset ", z_offset, " (corrupted archive)");
        disk = u32(z + 16);
        cd_disk = u32(z + 20);
        count_here = u64(z + 24);
        count = u64(z + 32);
        cd_size = u64(z + 40);
        cd_offset = u64(z + 48);
      }
    }
    OODKIT_ZIP_CHECK(disk == 0 && cd_disk == 0 && count_here == count,
                     "multi-disk (split) ZIP archives are not supported");
    OODKIT_ZIP_CHECK(fits(cd_offset, cd_size, file_size_), "central directory [", cd_offset, ", +", cd_size,
                     ") lies outside the file of ", file_size_, " bytes (truncated or corrupted archive)");
    OODKIT_ZIP_CHECK(cd_size <= kMaxCentralDirectory, "central directory of ", cd_size, " bytes exceeds the limit of ",
                     kMaxCentralDirectory);
    OODKIT_ZIP_CHECK(count <= cd_size / kCentralSize, "central directory of ", cd_size, " bytes cannot hold ", count,
                     " entries (corrupted archive)");
    std::vector<uint8_t> cd(static_cast<size_t>(cd_size));
    read_at(cd.data(), cd.size(), cd_offset);

    entries_.reserve(size_t(count));
    size_t pos = 0;
    for (uint64_t k = 0; k < count; ++k) {
      OODKIT_ZIP_CHECK(fits(pos, kCentralSize, cd.size()) && u32(&cd[pos]) == kCentralSig, "central directory entry ",
                       k, " is damaged (no signature at offset ", cd_offset + pos, ")");
      const uint8_t* h = &cd[pos];
      const size_t name_len = u16(h + 28), extra_len = u16(h + 30), comment_len = u16(h + 32);
      OODKIT_ZIP_CHECK(fits(pos + kCentralSize, name_len + extra_len + comment_len, cd.size()),
                       "central directory entry ", k, " runs past the directory's end");
      ZipEntry e;
      const uint16_t flags = u16(h + 8);
      OODKIT_ZIP_CHECK(!(flags & 1), "entry ", k, " is encrypted (not supported)");
      e.method = u16(h + 10);
      e.crc32 = u32(h + 16);
      e.compressed_size = u32(h + 20);
      e.size = u32(h + 24);
      e.local_header_offset = u32(h + 42);
      const uint32_t entry_disk = u16(h + 34);
      e.name.assign(reinterpret_cast<const char*>(h + kCentralSize), name_len);
      // ZIP64 extra field (id 1): the 64-bit values of the fields saturated at 0xffffffff, in order.
      const uint8_t* x = h + kCentralSize + name_len;
      for (size_t xp = 0; xp + 4 <= extra_len;) {
        const uint16_t id = u16(x + xp), len = u16(x + xp + 2);
        OODKIT_ZIP_CHECK(xp + 4 + len <= extra_len, "entry '", e.name, "': extra field runs past its end");
        if (id == 1) {
          const uint8_t* v = x + xp + 4;
          size_t used = 0;
          auto take = [&](uint64_t& field, const char* what) {
            OODKIT_ZIP_CHECK(used + 8 <= len, "entry '", e.name, "': ZIP64 extra field lacks the ", what);
            field = u64(v + used);
            used += 8;
          };
          if (e.size == 0xffffffffu) take(e.size, "uncompressed size");
          if (e.compressed_size == 0xffffffffu) take(e.compressed_size, "compressed size");
          if (e.local_header_offset == 0xffffffffu) take(e.local_header_offset, "local header offset");
        }
        xp += 4 + size_t(len);
      }
      OODKIT_ZIP_CHECK(entry_disk == 0 || entry_disk == 0xffff, "entry '", e.name, "' lies on another disk");
      OODKIT_ZIP_CHECK(fits(e.local_header_offset, kLocalSize, cd_offset), "entry '", e.name, "': local header offset ",
                       e.local_header_offset, " lies outside the file's entries (corrupted archive)");
      OODKIT_ZIP_CHECK(e.compressed_size <= cd_offset, "entry '", e.name, "': compressed size ", e.compressed_size,
                       " exceeds the file (corrupted archive)");
      OODKIT_ZIP_CHECK(e.method != 0 || e.size == e.compressed_size, "entry '", e.name, "' is stored with size ",
                       e.size, " but occupies ", e.compressed_size, " bytes (corrupted archive)");
      OODKIT_ZIP_CHECK(index_.emplace(e.name, entries_.size()).second, "duplicate entry '", e.name, "'");
      entries_.push_back(std::move(e));
      pos += kCentralSize + name_len + extra_len + comment_len;
    }
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

ZipReader::~ZipReader() {
  if (fd_ >= 0) ::close(fd_);
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipReader::read_at(void* dst, size_t n, uint64_t offset) const {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    const size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    const ssize_t r = ::pread(fd_, p, chunk, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    OODKIT_ZIP_CHECK(r >= 0, "read failed at byte ", offset, ": ", std::strerror(errno));
    OODKIT_ZIP_CHECK(r > 0, "unexpected end of file at byte ", offset, " (truncated?)");
    p += r;
    n -= size_t(r);
    offset += uint64_t(r);
  }
}

uint64_t ZipReader::data_offset(const ZipEntry& e) const {
  uint8_t h[kLocalSize];
  read_at(h, kLocalSize, e.local_header_offset);
  OODKIT_ZIP_CHECK(u32(h) == kLocalSig, "entry '", e.name, "': no local header at offset ", e.local_header_offset,
                   " (corrupted archive)");
  const uint64_t name_len = u16(h + 26), extra_len = u16(h + 28);
  const uint64_t start = e.local_header_offset + kLocalSize + name_len + extra_len;
  OODKIT_ZIP_CHECK(fits(start, e.compressed_size, file_size_), "entry '", e.name, "': data [", start, ", +",
                   e.compressed_size, ") runs past the end of the file (", file_size_, " bytes; truncated?)");
  std::string local_name(size_t(name_len), '\0');
  read_at(local_name.data(), local_name.size(), e.local_header_offset + kLocalSize);
  OODKIT_ZIP_CHECK(local_name == e.name, "entry '", e.name, "': its local header names '", local_name,
                   "' (corrupted archive)");
  return start;
}

std::vector<uint8_t> ZipReader::read(const ZipEntry& e) const {
  OODKIT_ZIP_CHECK(e.method == 0 || e.method == 8, "entry '", e.name, "' uses compression method ", e.method,
                   " (only stored and deflated entries are supported)");
  const uint64_t start = data_offset(e);
  std::vector<uint8_t> out;
  if (e.method == 0) {
    out.resize(size_t(e.size));
    read_at(out.data(), out.size(), start);
  } else {
    // Deflate expands at most about 1032:1; a larger declared size is a corrupted header.
    OODKIT_ZIP_CHECK(e.size / 1032 <= e.compressed_size + 1, "entry '", e.name, "': declared size ", e.size,
                     " is impossible for ", e.compressed_size, " deflated bytes (corrupted archive)");
    std::vector<uint8_t> in(static_cast<size_t>(e.compressed_size));
    read_at(in.data(), in.size(), start);
    z_stream zs{};
    OODKIT_ZIP_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, "inflateInit2 failed");
    struct Guard {
      z_stream* s;
      ~Guard() { inflateEnd(s); }
    } guard{&zs};
    // Grown as output arrives (never beyond the declared size), not allocated from the header.
    out.resize(size_t(std::min<uint64_t>(e.size, std::max<uint64_t>(in.size() * 4, 4096))));
    size_t in_pos = 0, out_pos = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      if (zs.avail_in == 0 && in_pos < in.size()) {
        const size_t n = std::min<size_t>(in.size() - in_pos, size_t(1) << 30);
        zs.next_in = in.data() + in_pos;
        zs.avail_in = uInt(n);
        in_pos += n;
      }
      if (out_pos == out.size()) {
        // One byte past the declared size detects a stream that is longer than declared.
        const uint64_t want = std::min<uint64_t>(e.size + 1, std::max<uint64_t>(out.size() * 2, 4096));
        out.resize(size_t(want));
      }
      const size_t room = std::min<size_t>(out.size() - out_pos, size_t(1) << 30);
      zs.next_out = out.data() + out_pos;
      zs.avail_out = uInt(room);
      rc = inflate(&zs, Z_NO_FLUSH);
      out_pos += room - zs.avail_out;
      OODKIT_ZIP_CHECK(!(rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos == in.size()), "entry '", e.name,
                       "': deflate data ends early (truncated?)");
      OODKIT_ZIP_CHECK(rc == Z_OK || rc == Z_STREAM_END, "entry '", e.name, "': deflate data is damaged (",
                       zs.msg ? zs.msg : "zlib error", ")");
      OODKIT_ZIP_CHECK(out_pos <= e.size, "entry '", e.name, "' inflates past its declared size ", e.size);
    }
    OODKIT_ZIP_CHECK(out_pos == e.size, "entry '", e.name, "' inflates to ", out_pos, " bytes, not its declared ",
                     e.size);
    out.resize(out_pos);
  }
  if (e.crc32 != 0)
    OODKIT_ZIP_CHECK(crc_of(out.data(), out.size()) == e.crc32, "entry '", e.name,
                     "' fails its CRC-32 check (corrupted archive)");
  return out;
}

bool has_zip_magic(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return false;
  unsigned char magic[4] = {0, 0, 0, 0};
  ssize_t r;
  do {
    r = ::pread(fd, magic, 4, 0);
  } while (r < 0 && errno == EINTR);
  ::close(fd);
  return r == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

}  // namespace oodkit
