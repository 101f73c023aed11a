#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "base/unique_fd.h"

namespace clusweb::http {

// Writes access-log lines off the request path: serving threads append to an
// in-memory buffer under a short lock; one writer thread drains the buffers
// to their files. Files are opened by someone with the right privileges (the
// web master) and handed over as descriptors; reopen() swaps one in place,
// which is how log rotation (SIGUSR1) works. Thread-safe.
class AccessLogWriter {
 public:
  AccessLogWriter();
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Registers or replaces the file of log `name` (a site).
  void set_file(const std::string& name, UniqueFd fd);
  void remove(const std::string& name);
  // Appends one line (without the newline). Drops the line when the buffer
  // of that log is over its bound (a stuck disk must not grow memory).
  void append(const std::string& name, std::string_view line);
  // Blocks until everything appended so far has been written (tests, shutdown).
  void flush();
  std::uint64_t dropped_lines() const;

 private:
  struct Sink {
    UniqueFd fd;
    std::string pending;
  };
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::unordered_map<std::string, Sink> sinks_;
  bool stopping_ = false;
  bool writing_ = false;
  std::uint64_t dropped_ = 0;
  std::thread thread_;
};

// One line in the combined log format:
// 127.0.0.1 - - [25/Nov/2026:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 "ref" "agent"
struct AccessRecord {
  std::string_view remote;
  std::string_view method;
  std::string_view target;
  int version = 11;
  int status = 0;
  std::uint64_t bytes = 0;
  std::string_view referer;
  std::string_view user_agent;
  std::int64_t unix_time = 0;
};
std::string format_combined(const AccessRecord& record);

}  // namespace clusweb::http
