#include "http/access_log.h"

#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <vector>

namespace clusweb::http {

namespace {

constexpr std::size_t kMaxPendingBytes = 8u << 20;

// Quotes a field for the log: '"' and '\\' escaped, control bytes as \xHH.
void append_quoted(std::string& out, std::string_view value) {
  out.push_back('"');
  if (value.empty()) out.push_back('-');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

}  // namespace

std::string format_combined(const AccessRecord& r) {
  std::time_t t = r.unix_time;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  std::string out;
  out.reserve(160 + r.target.size());
  out += r.remote.empty() ? std::string_view("-") : r.remote;
  out += " - - [";
  out += date;
  out += "] ";
  std::string request =
      fmt::format("{} {} HTTP/{}.{}", r.method, r.target, r.version / 10, r.version % 10);
  append_quoted(out, request);
  out += fmt::format(" {} {} ", r.status, r.bytes);
  append_quoted(out, r.referer);
  out.push_back(' ');
  append_quoted(out, r.user_agent);
  return out;
}

AccessLogWriter::AccessLogWriter() : thread_([this] { run(); }) {}

AccessLogWriter::~AccessLogWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void AccessLogWriter::set_file(const std::string& name, UniqueFd fd) {
  std::lock_guard lock(mutex_);
  sinks_[name].fd = std::move(fd);
}

void AccessLogWriter::remove(const std::string& name) {
  std::lock_guard lock(mutex_);
  sinks_.erase(name);
}

void AccessLogWriter::append(const std::string& name, std::string_view line) {
  std::lock_guard lock(mutex_);
  auto it = sinks_.find(name);
  if (it == sinks_.end() || !it->second.fd) return;
  auto& pending = it->second.pending;
  if (pending.size() + line.size() > kMaxPendingBytes) {
    ++dropped_;
    return;
  }
  bool was_empty = pending.empty();
  pending.append(line);
  pending.push_back('\n');
  if (was_empty) wake_.notify_one();
}

void AccessLogWriter::flush() {
  std::unique_lock lock(mutex_);
  wake_.notify_one();
  drained_.wait(lock, [this] {
    if (writing_) return false;
    for (const auto& [name, sink] : sinks_) {
      if (!sink.pending.empty()) return false;
    }
    return true;
  });
}

std::uint64_t AccessLogWriter::dropped_lines() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void AccessLogWriter::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] {
      if (stopping_) return true;
      for (const auto& [name, sink] : sinks_) {
        if (!sink.pending.empty()) return true;
      }
      return false;
    });
    // Take every pending buffer, write without the lock held. The fd is
    // duplicated so a concurrent set_file() cannot close it under us.
    std::vector<std::pair<UniqueFd, std::string>> batch;
    for (auto& [name, sink] : sinks_) {
      if (sink.pending.empty() || !sink.fd) continue;
      batch.emplace_back(UniqueFd(::dup(sink.fd.get())), std::move(sink.pending));
      sink.pending.clear();
    }
    writing_ = true;
    bool stop = stopping_;
    lock.unlock();
    for (auto& [fd, data] : batch) {
      std::string_view rest = data;
      while (!rest.empty() && fd) {
        ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        rest.remove_prefix(static_cast<std::size_t>(n));
      }
    }
    lock.lock();
    writing_ = false;
    drained_.notify_all();
    if (stop) {
      bool empty = true;
      for (const auto& [name, sink] : sinks_) empty = empty && sink.pending.empty();
      if (empty) return;
    }
  }
}

}  // namespace clusweb::http
