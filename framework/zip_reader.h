// A minimal read-only ZIP reader, enough for PyTorch checkpoints (framework/torch_file.h): the
// end-of-central-directory record (ZIP64 too), the central directory (ZIP64 extra fields) and each
// entry's local header. Entries may be STORED or DEFLATED (zlib); encrypted entries, other methods
// and multi-disk archives are refused. Every offset and size read from the file is checked against
// the file's size before it is used, and every read entry is checked against its CRC-32 (a CRC of
// 0 is taken as "not recorded", as torch.save writes with its CRC option off). Every error names
// the file: "<what> '<path>': <message>", <what> given by the caller (e.g. "PyTorch file").
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace oodkit {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;            // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;              // uncompressed
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // Opens `path` and reads its central directory; `what` starts every error message.
  explicit ZipReader(const std::string& path, std::string what = "ZIP file");
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // The entry named `name`, or nullptr.
  const ZipEntry* find(const std::string& name) const;
  // The whole uncompressed content of `entry` (checked against its size and CRC-32).
  std::vector<uint8_t> read(const ZipEntry& entry) const;

  // The error prefix, "<what> '<path>': ".
  std::string prefix() const;

 private:
  void read_at(void* dst, size_t n, uint64_t offset) const;
  uint64_t data_offset(const ZipEntry& entry) const;  // past the local header

  std::string path_, what_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// True when the first bytes of `path` are a ZIP local file header ("PK\x03\x04"); false for a
// missing, unreadable or shorter file.
bool has_zip_magic(const std::string& path);

}  // namespace oodkit
