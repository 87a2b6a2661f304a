#include "data/inventory.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/registry.h"
#include "framework/error.h"
#include "framework/hash.h"

namespace fs = std::filesystem;

namespace oodkit::data {

namespace {

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

}  // namespace

std::string folder_digest(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(it->path());
  OODKIT_CHECK(!ec, "cannot list '", dir, "': ", ec.message());
  std::vector<std::string> rel;
  for (const fs::path& f : files) rel.push_back(fs::relative(f, dir).generic_string());
  std::sort(rel.begin(), rel.end());
  uint64_t h = kDigestStart;
  std::vector<char> buf(1 << 20);
  for (const std::string& r : rel) {
    h = fnv1a(h, r.c_str(), r.size() + 1);
    const uint64_t size = fs::file_size(dir + "/" + r, ec);
    OODKIT_CHECK(!ec, "cannot read '", dir, "/", r, "'");
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(size >> (8 * i));
    h = fnv1a(h, le, 8);
    std::ifstream in(dir + "/" + r, std::ios::binary);
    OODKIT_CHECK(in.good(), "cannot read '", dir, "/", r, "'");
    while (in) {
      in.read(buf.data(), std::streamsize(buf.size()));
      h = fnv1a(h, buf.data(), size_t(in.gcount()));
    }
  }
  char out[32];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a64:") + out;
}

std::string expected_layout(const std::string& name) {
  for (const DatasetInfo& row : dataset_registry())
    if (row.name == name) return row.layout;
  return kImageFolderLayout;
}

std::vector<DatasetStatus> dataset_inventory(bool with_digest) {
  std::vector<DatasetStatus> out;
  for (const DatasetInfo& row : dataset_registry()) {
    DatasetStatus s;
    s.name = row.name;
    s.layout = row.layout;
    if (row.kind == DatasetKind::AnyFolder) {
      s.state = "any folder";
    } else if (row.kind == DatasetKind::Generated) {
      s.state = "built in";
    } else {
      s.root = default_root(row.name);
      if (!is_dir(s.root)) {
        s.state = "not installed";
      } else {
        try {
          s.rows = row.count(s.root);
          for (const auto& [split, n] : s.rows) OODKIT_CHECK(n > 0, "no images in split ", split);
          s.state = "installed";
          if (with_digest) s.digest = folder_digest(s.root);
        } catch (const Error& e) {
          s.rows.clear();
          s.state = std::string("incomplete: ") + e.what();
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace oodkit::data
