#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace clusweb {

// The file-system calls an atomic rewrite makes, as one seam: tests wrap it
// to inject crashes and faults at any step (base/testing/crashing_file_system.h).
class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Creates or truncates `path` for writing.
  virtual Result<UniqueFd> create(const std::filesystem::path& path, mode_t mode) = 0;
  // Writes all of `data`.
  virtual Status write(int fd, std::string_view data, const std::filesystem::path& path) = 0;
  virtual Status sync(int fd, const std::filesystem::path& path) = 0;
  virtual Status rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  virtual Status sync_directory(const std::filesystem::path& directory) = 0;
  // The whole file; an Error with sys_errno ENOENT when it does not exist.
  virtual Result<std::string> read(const std::filesystem::path& path) = 0;
};

// The operating system's file system.
FileSystem& os_file_system();

// Replaces `path` with `payload` so that a crash at any moment leaves either
// the old or the new contents: write `path`.tmp with a header (format
// version, length, CRC-32), fsync it, rename it over `path`, fsync the
// directory. Returns only once the new contents are durable.
Status write_file_atomically(FileSystem& fs, const std::filesystem::path& path,
                             std::string_view payload, mode_t mode = 0600);

// Replaces `path` with exactly `contents` the same way (temporary file, fsync, rename,
// directory fsync), without the header: for files other programs read (PEM files, exports).
Status replace_file(FileSystem& fs, const std::filesystem::path& path, std::string_view contents,
                    mode_t mode = 0600);

// Reads what write_file_atomically wrote: the payload, std::nullopt when the
// file does not exist, an Error naming the file when it is truncated or its
// checksum does not match (it is never silently taken as empty).
Result<std::optional<std::string>> read_file_checked(FileSystem& fs,
                                                     const std::filesystem::path& path);

// CRC-32 (IEEE 802.3, as zlib computes it).
std::uint32_t crc32(std::string_view data);

}  // namespace clusweb
