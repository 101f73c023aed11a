#include "web/clustered_sites.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace clusweb::web {

namespace {

constexpr std::string_view kBlanks = " \t\r\v\f";

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(kBlanks);
  return text.substr(first, last - first + 1);
}

}  // namespace

ClusteredSites parse_clustered_sites(std::string_view text, std::string_view path,
                                     const std::set<std::string>& configured) {
  ClusteredSites result;
  int number = 0;
  while (!text.empty()) {
    ++number;
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (line.find_first_of(kBlanks) != std::string_view::npos) {
      result.problems.push_back(
          fmt::format("{}:{}: expected one site name per line, found \"{}\"", path, number, line));
      continue;
    }
    std::string name(line);
    if (configured.count(name) == 0) {
      result.problems.push_back(
          fmt::format("{}:{}: site \"{}\" is not in the configuration", path, number, name));
      continue;
    }
    result.sites.insert(std::move(name));
  }
  return result;
}

Result<ClusteredSites> load_clustered_sites(const std::string& path,
                                            const std::set<std::string>& configured) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return ClusteredSites{};
    return errno_error("open", path);
  }
  std::string text;
  char buffer[4096];
  while (true) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno_error("read", path);
    if (got == 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  return parse_clustered_sites(text, path, configured);
}

}  // namespace clusweb::web
