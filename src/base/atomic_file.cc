#include "base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>

namespace clusweb {

namespace {

constexpr std::string_view kMagic = "clusweb-file 1 ";

class OsFileSystem final : public FileSystem {
 public:
  Result<UniqueFd> create(const std::filesystem::path& path, mode_t mode) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) return errno_error("open", path.string());
    return fd;
  }

  Status write(int fd, std::string_view data, const std::filesystem::path& path) override {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error("write", path.string());
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok_status();
  }

  Status sync(int fd, const std::filesystem::path& path) override {
    if (::fsync(fd) != 0) return errno_error("fsync", path.string());
    return ok_status();
  }

  Status rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_error("rename", to.string());
    return ok_status();
  }

  Status sync_directory(const std::filesystem::path& directory) override {
    UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_error("open", directory.string());
    if (::fsync(fd.get()) != 0) return errno_error("fsync", directory.string());
    return ok_status();
  }

  Result<std::string> read(const std::filesystem::path& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error("open", path.string());
    std::string data;
    std::array<char, 65536> chunk;
    for (;;) {
      ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error("read", path.string());
      }
      if (n == 0) break;
      data.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return data;
  }
};

std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

}  // namespace

FileSystem& os_file_system() {
  static OsFileSystem fs;
  return fs;
}

std::uint32_t crc32(std::string_view data) {
  static const auto table = make_crc_table();
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : data) c = table[(c ^ byte) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

Status write_file_atomically(FileSystem& fs, const std::filesystem::path& path,
                             std::string_view payload, mode_t mode) {
  char header[64];
  int length =
      std::snprintf(header, sizeof header, "%.*s%zu %08x\n", static_cast<int>(kMagic.size()),
                    kMagic.data(), payload.size(), crc32(payload));
  std::string contents;
  contents.reserve(static_cast<std::size_t>(length) + payload.size());
  contents.append(header, static_cast<std::size_t>(length));
  contents.append(payload);
  return replace_file(fs, path, contents, mode);
}

Status replace_file(FileSystem& fs, const std::filesystem::path& path, std::string_view contents,
                    mode_t mode) {
  std::filesystem::path temp = path;
  temp += ".tmp";
  auto fd = fs.create(temp, mode);
  if (!fd) return fd.error();
  if (auto written = fs.write(fd->get(), contents, temp); !written) return written;
  if (auto synced = fs.sync(fd->get(), temp); !synced) return synced;
  fd->reset();
  if (auto renamed = fs.rename(temp, path); !renamed) return renamed;
  auto directory = path.parent_path();
  return fs.sync_directory(directory.empty() ? std::filesystem::path(".") : directory);
}

Result<std::optional<std::string>> read_file_checked(FileSystem& fs,
                                                     const std::filesystem::path& path) {
  auto data = fs.read(path);
  if (!data) {
    if (data.error().sys_errno == ENOENT) return std::optional<std::string>();
    return data.error();
  }
  std::string_view text = *data;
  auto corrupt = [&](std::string_view why) {
    return Error{fmt::format("not a valid state file: {}", why), path.string(), 0};
  };
  if (!text.starts_with(kMagic)) return corrupt("unknown header");
  text.remove_prefix(kMagic.size());
  auto newline = text.find('\n');
  if (newline == std::string_view::npos) return corrupt("truncated header");
  std::string_view header = text.substr(0, newline);
  auto space = header.find(' ');
  if (space == std::string_view::npos) return corrupt("bad header");
  std::size_t length = 0;
  std::uint32_t checksum = 0;
  auto [p1, e1] = std::from_chars(header.data(), header.data() + space, length);
  auto [p2, e2] =
      std::from_chars(header.data() + space + 1, header.data() + header.size(), checksum, 16);
  if (e1 != std::errc() || e2 != std::errc() || p1 != header.data() + space ||
      p2 != header.data() + header.size()) {
    return corrupt("bad header");
  }
  std::string_view payload = text.substr(newline + 1);
  if (payload.size() != length) {
    return corrupt(
        fmt::format("{} bytes of payload where the header says {}", payload.size(), length));
  }
  if (crc32(payload) != checksum) return corrupt("checksum mismatch");
  return std::optional<std::string>(std::string(payload));
}

}  // namespace clusweb
