#pragma once

#include "base/atomic_file.h"

namespace clusweb::testing {

// Forwards to a real FileSystem, counting the steps that change the disk
// (create, write, sync, rename, sync_directory), and dies at step
// `crash_at`: that step has at most a partial effect (a write stores the
// first half of its data) and fails, and so does every call after it, as if
// the process had been killed there.
class CrashingFileSystem final : public FileSystem {
 public:
  explicit CrashingFileSystem(FileSystem& real) : real_(real) {}

  // 1-based; 0 = never.
  void crash_at(int step) {
    crash_at_ = step;
    steps_ = 0;
    crashed_ = false;
  }
  int steps() const { return steps_; }
  bool crashed() const { return crashed_; }

  Result<UniqueFd> create(const std::filesystem::path& path, mode_t mode) override {
    if (!step()) return dead(path);
    return real_.create(path, mode);
  }
  Status write(int fd, std::string_view data, const std::filesystem::path& path) override {
    if (!step()) {
      if (!crashed_before_) (void)real_.write(fd, data.substr(0, data.size() / 2), path);
      return dead(path);
    }
    return real_.write(fd, data, path);
  }
  Status sync(int fd, const std::filesystem::path& path) override {
    if (!step()) return dead(path);
    return real_.sync(fd, path);
  }
  Status rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (!step()) return dead(to);
    return real_.rename(from, to);
  }
  Status sync_directory(const std::filesystem::path& directory) override {
    if (!step()) return dead(directory);
    return real_.sync_directory(directory);
  }
  Result<std::string> read(const std::filesystem::path& path) override {
    if (crashed_) return dead(path);
    return real_.read(path);
  }

 private:
  // False from the crash on; crashed_before_ tells the crashing step apart
  // from the ones after it.
  bool step() {
    crashed_before_ = crashed_;
    if (crashed_) return false;
    ++steps_;
    if (crash_at_ != 0 && steps_ == crash_at_) {
      crashed_ = true;
      return false;
    }
    return true;
  }
  static Error dead(const std::filesystem::path& path) {
    return Error{"injected crash", path.string(), EIO};
  }

  FileSystem& real_;
  int crash_at_ = 0;
  int steps_ = 0;
  bool crashed_ = false;
  bool crashed_before_ = false;
};

}  // namespace clusweb::testing
