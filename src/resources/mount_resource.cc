#include "resources/mount_resource.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/chrono.h>
#include <netdb.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "base/duration.h"
#include "base/log.h"
#include "base/unique_fd.h"

namespace clusweb::resources {

namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr std::string_view kDeleted = " (deleted)";
constexpr size_t kReadCheckBytes = 4096;
// How long the first EBUSY retry waits, doubling up to the maximum: holders
// killed a moment ago may still be releasing their files.
constexpr milliseconds kFirstRetryDelay{20};
constexpr milliseconds kMaxRetryDelay{200};

bool is_octal(char c) { return c >= '0' && c <= '7'; }

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

template <class Number>
bool parse_number(std::string_view text, Number& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

std::string_view strip_deleted(std::string_view path) {
  if (path.ends_with(kDeleted)) path.remove_suffix(kDeleted.size());
  return path;
}

// The option names mount(8) turns into flags, with whether they set or clear.
struct FlagOption {
  std::string_view name;
  unsigned long flag;
  bool set;
};
constexpr std::array kFlagOptions{
    FlagOption{"ro", MS_RDONLY, true},
    FlagOption{"rw", MS_RDONLY, false},
    FlagOption{"noatime", MS_NOATIME, true},
    FlagOption{"atime", MS_NOATIME, false},
    FlagOption{"nodiratime", MS_NODIRATIME, true},
    FlagOption{"diratime", MS_NODIRATIME, false},
    FlagOption{"relatime", MS_RELATIME, true},
    FlagOption{"norelatime", MS_RELATIME, false},
    FlagOption{"strictatime", MS_STRICTATIME, true},
    FlagOption{"nostrictatime", MS_STRICTATIME, false},
    FlagOption{"lazytime", MS_LAZYTIME, true},
    FlagOption{"nolazytime", MS_LAZYTIME, false},
    FlagOption{"nodev", MS_NODEV, true},
    FlagOption{"dev", MS_NODEV, false},
    FlagOption{"nosuid", MS_NOSUID, true},
    FlagOption{"suid", MS_NOSUID, false},
    FlagOption{"noexec", MS_NOEXEC, true},
    FlagOption{"exec", MS_NOEXEC, false},
    FlagOption{"sync", MS_SYNCHRONOUS, true},
    FlagOption{"async", MS_SYNCHRONOUS, false},
    FlagOption{"dirsync", MS_DIRSYNC, true},
    FlagOption{"silent", MS_SILENT, true},
    FlagOption{"loud", MS_SILENT, false},
};

// Read by mount(8) itself (fstab and permission handling), never by the kernel.
constexpr std::array<std::string_view, 10> kUserspaceOptions{
    "defaults", "auto", "noauto", "nofail", "_netdev", "user", "users", "nouser", "owner", "group"};
constexpr std::array<std::string_view, 12> kRefusedOptions{
    "bind",   "rbind",   "move",  "remount", "private",    "rprivate",
    "shared", "rshared", "slave", "rslave",  "unbindable", "runbindable"};

// Splits on commas outside double quotes (SELinux contexts contain commas).
std::vector<std::string_view> split_options(std::string_view options) {
  std::vector<std::string_view> items;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i <= options.size(); ++i) {
    if (i == options.size() || (options[i] == ',' && !quoted)) {
      if (i > start) items.push_back(options.substr(start, i - start));
      start = i + 1;
    } else if (options[i] == '"') {
      quoted = !quoted;
    }
  }
  return items;
}

}  // namespace

std::string unescape_mount_field(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) &&
        is_octal(field[i + 2]) && is_octal(field[i + 3])) {
      out.push_back(static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) |
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

Result<MountEntry> parse_mountinfo_line(std::string_view line) {
  const std::vector<std::string_view> fields = split(line, ' ');
  // At least: id, parent, major:minor, root, mount point, options, "-",
  // fstype, source, super options.
  const auto separator = std::find(fields.begin(), fields.end(), "-");
  if (separator == fields.end()) return make_error("no \" - \" separator");
  if (separator - fields.begin() < 6) return make_error("fewer than 6 fields before \" - \"");
  if (fields.end() - separator < 3) return make_error("fewer than 2 fields after \" - \"");
  MountEntry entry;
  if (!parse_number(fields[0], entry.mount_id) || !parse_number(fields[1], entry.parent_id)) {
    return make_error("bad mount id \"{} {}\"", fields[0], fields[1]);
  }
  const size_t colon = fields[2].find(':');
  if (colon == std::string_view::npos || !parse_number(fields[2].substr(0, colon), entry.major) ||
      !parse_number(fields[2].substr(colon + 1), entry.minor)) {
    return make_error("bad major:minor \"{}\"", fields[2]);
  }
  entry.root = unescape_mount_field(fields[3]);
  entry.mount_point = unescape_mount_field(fields[4]);
  entry.mount_options = std::string(fields[5]);
  for (auto field = fields.begin() + 6; field != separator; ++field) {
    entry.optional_fields.emplace_back(*field);
  }
  entry.fstype = unescape_mount_field(separator[1]);
  entry.source = unescape_mount_field(separator[2]);
  // Older kernels had no super options; newer ones always have the field.
  if (fields.end() - separator > 3) entry.super_options = std::string(separator[3]);
  return entry;
}

Result<std::vector<MountEntry>> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> entries;
  int number = 0;
  for (std::string_view line : split(text, '\n')) {
    ++number;
    if (line.empty()) continue;
    auto entry = parse_mountinfo_line(line);
    if (!entry) return make_error("mountinfo line {}: {}", number, entry.error().message);
    entries.push_back(std::move(*entry));
  }
  return entries;
}

Result<MountOptions> parse_mount_options(std::string_view options) {
  MountOptions parsed;
  std::vector<std::string_view> data;
  for (std::string_view item : split_options(options)) {
    const auto flag = std::find_if(kFlagOptions.begin(), kFlagOptions.end(),
                                   [item](const FlagOption& o) { return o.name == item; });
    if (flag != kFlagOptions.end()) {
      parsed.flags = flag->set ? parsed.flags | flag->flag : parsed.flags & ~flag->flag;
      continue;
    }
    if (std::find(kUserspaceOptions.begin(), kUserspaceOptions.end(), item) !=
            kUserspaceOptions.end() ||
        item.starts_with("x-") || item.starts_with("comment=")) {
      continue;
    }
    if (std::find(kRefusedOptions.begin(), kRefusedOptions.end(), item) != kRefusedOptions.end() ||
        item.starts_with("make-")) {
      return make_error("option {} is not supported (plain mounts only)", item);
    }
    data.push_back(item);
  }
  parsed.data = fmt::format("{}", fmt::join(data, ","));
  return parsed;
}

bool path_on_mount(std::string_view path, std::string_view mount_point) {
  path = strip_deleted(path);
  while (mount_point.size() > 1 && mount_point.ends_with('/')) mount_point.remove_suffix(1);
  if (mount_point.empty() || !path.starts_with(mount_point)) return false;
  if (path.size() == mount_point.size()) return true;
  return mount_point == "/" || path[mount_point.size()] == '/';
}

std::vector<std::string> mapped_paths(std::string_view maps) {
  std::vector<std::string> paths;
  for (std::string_view line : split(maps, '\n')) {
    // address perms offset dev inode, then spaces, then the path (which may
    // itself contain spaces).
    size_t position = 0;
    for (int field = 0; field < 5 && position != std::string_view::npos; ++field) {
      position = line.find(' ', position);
      if (position != std::string_view::npos) position = line.find_first_not_of(' ', position);
    }
    if (position == std::string_view::npos || line[position] != '/') continue;
    paths.push_back(unescape_mount_field(line.substr(position)));
  }
  return paths;
}

namespace {

std::optional<std::string> read_link(const std::string& path) {
  std::array<char, 4096> buffer{};
  const ssize_t size = ::readlink(path.c_str(), buffer.data(), buffer.size());
  if (size < 0 || static_cast<size_t>(size) >= buffer.size()) return std::nullopt;
  return std::string(buffer.data(), static_cast<size_t>(size));
}

// A small /proc or sysfs-like file, whole; nullopt when it cannot be read.
std::optional<std::string> read_small_file(const std::string& path) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string text;
  std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t size = ::read(fd.get(), buffer.data(), buffer.size());
    if (size < 0 && errno == EINTR) continue;
    if (size < 0) return std::nullopt;
    if (size == 0) return text;
    text.append(buffer.data(), static_cast<size_t>(size));
  }
}

// What of process `dir` (/proc/<pid>) is on the mount, or "" when nothing.
// The fd's mount id, from the "mnt_id:" line of /proc/<pid>/fdinfo/<fd>.
std::optional<int> fd_mount_id(const std::string& fdinfo) {
  auto text = read_small_file(fdinfo);
  if (!text) return std::nullopt;
  for (std::string_view rest = *text; !rest.empty();) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (!line.starts_with("mnt_id:")) continue;
    line.remove_prefix(7);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    int id = 0;
    if (parse_number(std::string(line), id)) return id;
  }
  return std::nullopt;
}

std::string held_by(const std::string& dir, std::string_view mount_point,
                    const std::set<int>& mount_ids) {
  for (const char* link : {"cwd", "root"}) {
    if (auto target = read_link(dir + "/" + link); target && path_on_mount(*target, mount_point)) {
      return fmt::format("{} {}", link, *target);
    }
  }
  std::error_code ec;
  for (std::filesystem::directory_iterator fd(dir + "/fd", ec), end; !ec && fd != end;
       fd.increment(ec)) {
    if (auto target = read_link(fd->path()); target && path_on_mount(*target, mount_point)) {
      // The same path may name the directory underneath the mount, opened before it was
      // mounted (a web service's site root): the fd's mount id tells them apart.
      const std::string name = fd->path().filename().string();
      if (!mount_ids.empty()) {
        auto id = fd_mount_id(fmt::format("{}/fdinfo/{}", dir, name));
        if (id && !mount_ids.contains(*id)) continue;
      }
      return fmt::format("fd {} {}", name, *target);
    }
  }
  if (auto maps = read_small_file(dir + "/maps")) {
    for (const std::string& path : mapped_paths(*maps)) {
      if (path_on_mount(path, mount_point)) return fmt::format("map {}", path);
    }
  }
  return "";
}

}  // namespace

std::vector<MountHolder> find_mount_holders(const std::string& proc_root,
                                            std::string_view mount_point, pid_t skip_pid,
                                            const std::set<int>& mount_ids) {
  std::vector<MountHolder> holders;
  std::error_code ec;
  for (std::filesystem::directory_iterator entry(proc_root, ec), end; !ec && entry != end;
       entry.increment(ec)) {
    pid_t pid = 0;
    if (!parse_number(entry->path().filename().string(), pid) || pid == skip_pid) continue;
    const std::string dir = entry->path().string();
    std::string what = held_by(dir, mount_point, mount_ids);
    if (what.empty()) continue;
    std::string name = read_small_file(dir + "/comm").value_or("?");
    while (!name.empty() && name.back() == '\n') name.pop_back();
    holders.push_back(MountHolder{pid, std::move(name), std::move(what)});
  }
  std::sort(holders.begin(), holders.end(),
            [](const MountHolder& a, const MountHolder& b) { return a.pid < b.pid; });
  return holders;
}

namespace {

struct Config {
  std::string device;
  std::string directory;
  std::string fstype;
  MountOptions options;
  std::string status_file = std::string(MountResource::kDefaultStatusFile);
  bool write_check = false;
  milliseconds kill_grace = MountResource::kDefaultKillGrace;
};

bool has_dot_dot(const std::filesystem::path& path) {
  return std::any_of(path.begin(), path.end(), [](const auto& part) { return part == ".."; });
}

Result<Config> parse_config(const std::map<std::string, std::string>& parameters) {
  Config config;
  for (const auto& [name, value] : parameters) {
    if (name == "device") {
      if (value.starts_with("UUID=") || value.starts_with("LABEL=") ||
          value.starts_with("PARTUUID=") || value.starts_with("PARTLABEL=")) {
        return make_error(
            "parameter device: {} is not resolved; give the path (e.g. /dev/disk/by-uuid/…)",
            value);
      }
      config.device = value;
    } else if (name == "directory") {
      const std::filesystem::path path(value);
      if (!path.is_absolute() || has_dot_dot(path) || path.lexically_normal() == "/") {
        return make_error("parameter directory: not an absolute path other than /: \"{}\"", value);
      }
      std::string normal = path.lexically_normal().string();
      while (normal.size() > 1 && normal.ends_with('/')) normal.pop_back();
      config.directory = std::move(normal);
    } else if (name == "fstype") {
      config.fstype = value;
    } else if (name == "options") {
      auto options = parse_mount_options(value);
      if (!options) return make_error("parameter options: {}", options.error().message);
      config.options = std::move(*options);
    } else if (name == "statusFile") {
      const std::filesystem::path path(value);
      if (value.empty() || path.is_absolute() || has_dot_dot(path) || path.filename().empty()) {
        return make_error("parameter statusFile: not a file path inside the mount: \"{}\"", value);
      }
      config.status_file = path.lexically_normal().string();
    } else if (name == "writeCheck") {
      if (value != "true" && value != "false") {
        return make_error("parameter writeCheck: not true or false: \"{}\"", value);
      }
      config.write_check = value == "true";
    } else if (name == "killGrace") {
      Result<milliseconds> grace = parse_duration(value);
      if (!grace || *grace < milliseconds::zero()) {
        return make_error("parameter killGrace: not a duration: \"{}\"", value);
      }
      config.kill_grace = *grace;
    } else {
      return make_error(
          "unknown parameter {} (known: device, directory, fstype, options, statusFile, "
          "writeCheck, killGrace)",
          name);
    }
  }
  if (config.device.empty()) return make_error("missing parameter device");
  if (config.directory.empty()) return make_error("missing parameter directory");
  if (config.fstype.empty()) return make_error("missing parameter fstype");
  return config;
}

CallResult success(std::string detail = {}) {
  CallResult result;
  result.ok = true;
  result.detail = std::move(detail);
  return result;
}

CallResult failure(std::string detail,
                   cluster::FailureClass failure_class = cluster::FailureClass::kSoft) {
  CallResult result;
  result.detail = std::move(detail);
  result.failure = failure_class;
  return result;
}

std::string errno_text(int error) {
  return fmt::format("{} ({})", std::strerror(error), strerrorname_np(error));
}

// The device's st_rdev when `device` is a block device path; nullopt for
// everything else (nfs exports, "tmpfs"). A missing device path is an error.
Result<std::optional<dev_t>> block_device(const std::string& device) {
  if (!device.starts_with('/')) return std::optional<dev_t>();
  struct stat status {};
  if (::stat(device.c_str(), &status) != 0) {
    return errno_error("stat", device);
  }
  if (!S_ISBLK(status.st_mode)) return std::optional<dev_t>();
  return std::optional<dev_t>(status.st_rdev);
}

bool is_ours(const MountEntry& entry, const std::string& device, std::optional<dev_t> rdev) {
  if (entry.source == device) return true;
  if (!rdev) return false;
  if (makedev(entry.major, entry.minor) == *rdev) return true;
  // Filesystems such as btrfs report an anonymous major:minor; their source
  // is still the device, perhaps by another name (/dev/disk/by-uuid/…).
  struct stat status {};
  return entry.source.starts_with('/') && ::stat(entry.source.c_str(), &status) == 0 &&
         S_ISBLK(status.st_mode) && status.st_rdev == *rdev;
}

// The mounts of the calling thread's mount namespace (the agent has one; in
// tests a thread may have entered another).
Result<std::vector<MountEntry>> read_mounts() {
  auto text = read_small_file("/proc/thread-self/mountinfo");
  if (!text) return errno_error("read", "/proc/thread-self/mountinfo");
  return parse_mountinfo(*text);
}

// The ids of the mounts at or under `directory` (empty when mountinfo cannot
// be read: then holders are found by path alone).
std::set<int> mount_ids_on(const std::string& directory) {
  std::set<int> ids;
  if (auto mounts = read_mounts()) {
    for (const MountEntry& entry : *mounts) {
      if (path_on_mount(entry.mount_point, directory)) ids.insert(entry.mount_id);
    }
  }
  return ids;
}

// What is mounted at the directory: the top mount (the one path lookups
// see), and whether one of the mounts there, visible or not, is ours.
struct AtDirectory {
  std::optional<MountEntry> top;
  bool top_is_ours = false;
  bool ours_anywhere = false;
  std::vector<std::string> submounts;  // mounts below the directory
};

Result<AtDirectory> look_at_directory(const Config& config) {
  auto rdev = block_device(config.device);
  std::optional<dev_t> device_rdev = rdev ? *rdev : std::nullopt;
  auto mounts = read_mounts();
  if (!mounts) return mounts.error();
  AtDirectory at;
  for (const MountEntry& entry : *mounts) {
    if (entry.mount_point == config.directory) {
      at.top = entry;
      at.top_is_ours = is_ours(entry, config.device, device_rdev);
      at.ours_anywhere = at.ours_anywhere || at.top_is_ours;
    } else if (path_on_mount(entry.mount_point, config.directory)) {
      at.submounts.push_back(entry.mount_point);
    }
  }
  return at;
}

std::string describe_mount(const MountEntry& entry) {
  return fmt::format("{} ({})", entry.source, entry.fstype);
}

CallResult looks_alive(const Config& config) {
  auto at = look_at_directory(config);
  if (!at) return failure(at.error().describe());
  if (at->top_is_ours) return success();
  if (!at->top)
    return failure(fmt::format("{} not mounted on {}", config.device, config.directory));
  return failure(fmt::format("{} has {} mounted, not {}", config.directory,
                             describe_mount(*at->top), config.device));
}

std::string fstype_family(const std::string& fstype) {
  return fstype.starts_with("nfs") ? "nfs" : fstype;
}

// mount.nfs passes the server's address as addr=; the kernel does not
// resolve names itself.
Status add_nfs_address(const Config& config, std::string& data) {
  if (fstype_family(config.fstype) != "nfs") return ok_status();
  for (std::string_view item : split(data, ',')) {
    if (item.starts_with("addr=")) return ok_status();
  }
  const size_t colon = config.device.rfind(":/");
  if (colon == std::string::npos || colon == 0) {
    return make_error("device {}: not server:/path", config.device);
  }
  std::string host = config.device.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int error = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); error != 0) {
    return make_error("resolving nfs server {}: {}", host, ::gai_strerror(error));
  }
  std::array<char, NI_MAXHOST> address{};
  const int error = ::getnameinfo(found->ai_addr, found->ai_addrlen, address.data(), address.size(),
                                  nullptr, 0, NI_NUMERICHOST);
  ::freeaddrinfo(found);
  if (error != 0) return make_error("resolving nfs server {}: {}", host, ::gai_strerror(error));
  data += fmt::format("{}addr={}", data.empty() ? "" : ",", address.data());
  return ok_status();
}

// Facts the event loop hands to a call's thread: nothing there may read the
// agent's clock or call its functions.
struct Job {
  Config config;
  std::string resource;
  std::string group;
  std::string node;
  int64_t fencing_token = 0;
  std::chrono::system_clock::time_point wall_time;
  // The fencing deadline moved to the steady clock; none = the call had none.
  std::optional<SteadyTime> fencing_deadline;
  SteadyTime deadline;       // finish the work by then (before the call's timeout)
  SteadyTime turn_deadline;  // stop waiting for the turn lock then
};

CallResult online(const Job& job) {
  const Config& config = job.config;
  auto rdev = block_device(config.device);
  if (!rdev) {
    return failure(fmt::format("device {}: {}", config.device, errno_text(rdev.error().sys_errno)),
                   cluster::FailureClass::kHard);
  }
  std::error_code ec;
  std::filesystem::create_directories(config.directory, ec);
  if (ec) return failure(fmt::format("creating {}: {}", config.directory, ec.message()));
  // Mount points in mountinfo are resolved paths: a directory reached
  // through a symlink would never match.
  const auto canonical = std::filesystem::canonical(config.directory, ec);
  if (ec || canonical != config.directory) {
    return failure(fmt::format("directory {} goes through a symlink (to {})", config.directory,
                               canonical.string()),
                   cluster::FailureClass::kFatal);
  }
  auto at = look_at_directory(config);
  if (!at) return failure(at.error().describe());
  if (at->top_is_ours) return success("already mounted");
  if (at->top) {
    return failure(fmt::format("{} has {} mounted", config.directory, describe_mount(*at->top)),
                   cluster::FailureClass::kHard);
  }
  std::string data = config.options.data;
  if (Status resolved = add_nfs_address(config, data); !resolved) {
    return failure(resolved.error().message);
  }
  // As late as possible: taking over a disk past the fencing deadline could
  // mount it on two nodes.
  if (!job.fencing_deadline) {
    return failure(
        fmt::format("mount {} on {}: no fencing deadline", config.device, config.directory));
  }
  if (std::chrono::steady_clock::now() >= *job.fencing_deadline) {
    return failure(
        fmt::format("mount {} on {}: fencing deadline passed", config.device, config.directory));
  }
  if (::mount(config.device.c_str(), config.directory.c_str(), config.fstype.c_str(),
              config.options.flags, data.empty() ? nullptr : data.c_str()) != 0) {
    const int error = errno;
    // ENODEV: this node's kernel lacks the filesystem type; ENOTBLK and
    // ENXIO: the device is not usable here. Another node may do better.
    const bool node_problem = error == ENODEV || error == ENOTBLK || error == ENXIO;
    return failure(fmt::format("mount {} on {} ({}): {}", config.device, config.directory,
                               config.fstype, errno_text(error)),
                   node_problem ? cluster::FailureClass::kHard : cluster::FailureClass::kSoft);
  }
  logger("resources")
      ->info("mounted resource={} device={} directory={} fstype={}", job.resource, config.device,
             config.directory, config.fstype);
  return looks_alive(config);
}

std::string status_path(const Config& config) {
  return config.directory + "/" + config.status_file;
}

Status write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return errno_error("write", "");
    text.remove_prefix(static_cast<size_t>(written));
  }
  return ok_status();
}

Status read_check(const Config& config) {
  const std::string path = status_path(config);
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd) {
    std::array<char, kReadCheckBytes> buffer{};
    ssize_t size = 0;
    do {
      size = ::read(fd.get(), buffer.data(), buffer.size());
    } while (size < 0 && errno == EINTR);
    if (size < 0) return errno_error("read", path);
    return ok_status();
  }
  if (errno != ENOENT) return errno_error("open", path);
  // No status file (yet): a directory listing still goes to the filesystem.
  DIR* dir = ::opendir(config.directory.c_str());
  if (dir == nullptr) return errno_error("opendir", config.directory);
  errno = 0;
  const dirent* first = ::readdir(dir);
  const int error = errno;
  ::closedir(dir);
  if (first == nullptr && error != 0) return errno_error("readdir", config.directory, error);
  return ok_status();
}

Status write_check(const Job& job) {
  const std::string path = status_path(job.config);
  const std::string temporary = path + ".tmp";
  const std::string text =
      fmt::format("resource={}\ngroup={}\nnode={}\nfencing_token={}\ntime={:%Y-%m-%dT%H:%M:%SZ}\n",
                  job.resource, job.group, job.node, job.fencing_token,
                  fmt::gmtime(std::chrono::system_clock::to_time_t(job.wall_time)));
  {
    const UniqueFd fd(
        ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return errno_error("open", temporary);
    if (Status written = write_all(fd.get(), text); !written) {
      return errno_error("write", temporary, written.error().sys_errno);
    }
    if (::fsync(fd.get()) != 0) return errno_error("fsync", temporary);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) return errno_error("rename", path);
  const std::string parent = std::filesystem::path(path).parent_path().string();
  const UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return errno_error("open", parent);
  if (::fsync(dir.get()) != 0) return errno_error("fsync", parent);
  return ok_status();
}

CallResult is_alive(const Job& job) {
  CallResult alive = looks_alive(job.config);
  if (!alive.ok) return alive;
  if (Status read = read_check(job.config); !read) return failure(read.error().describe());
  if (job.config.write_check) {
    if (Status written = write_check(job); !written) return failure(written.error().describe());
  }
  return success();
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_send_signal(int pidfd, int signal) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

std::string describe_holders(const std::vector<MountHolder>& holders) {
  std::vector<std::string> parts;
  parts.reserve(holders.size());
  for (const MountHolder& holder : holders) {
    parts.push_back(fmt::format("{} ({}, {})", holder.pid, holder.name, holder.what));
  }
  return parts.empty() ? "none found" : fmt::format("{}", fmt::join(parts, ", "));
}

// Signals every current holder (through a pidfd opened before the holder
// check is repeated, so a reused pid is never hit) and waits until they
// have all exited or `until` has come. Returns the holders signalled.
std::vector<MountHolder> signal_holders(const Job& job, int signal, SteadyTime until) {
  const pid_t self = ::getpid();
  const std::set<int> ids = mount_ids_on(job.config.directory);
  std::vector<MountHolder> holders = find_mount_holders("/proc", job.config.directory, self, ids);
  std::vector<UniqueFd> pidfds;
  for (const MountHolder& holder : holders) {
    UniqueFd pidfd(pidfd_open(holder.pid));
    if (!pidfd) continue;
    const std::string dir = fmt::format("/proc/{}", holder.pid);
    if (held_by(dir, job.config.directory, ids).empty()) continue;
    if (pidfd_send_signal(pidfd.get(), signal) != 0) continue;
    logger("resources")
        ->info("killing mount holder resource={} directory={} pid={} name={} signal={} holds={}",
               job.resource, job.config.directory, holder.pid, holder.name, sigabbrev_np(signal),
               holder.what);
    pidfds.push_back(std::move(pidfd));
  }
  // A pidfd turns readable when its process exits; by then the kernel has
  // dropped its files, cwd and maps.
  std::vector<pollfd> waiting;
  waiting.reserve(pidfds.size());
  for (const UniqueFd& pidfd : pidfds) waiting.push_back(pollfd{pidfd.get(), POLLIN, 0});
  while (!waiting.empty()) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
    if (left <= milliseconds::zero()) break;
    const int ready = ::poll(waiting.data(), waiting.size(), static_cast<int>(left.count()) + 1);
    if (ready < 0 && errno != EINTR) break;
    std::erase_if(waiting, [](const pollfd& p) { return p.revents != 0; });
  }
  return holders;
}

// Kills the holders and unmounts; on failure, the detail names what keeps
// the mount busy. `grace` = how long SIGTERM has before SIGKILL (none: SIGKILL
// at once).
CallResult kill_and_unmount(const Job& job, std::optional<milliseconds> grace, bool detach_last) {
  const Config& config = job.config;
  auto at = look_at_directory(config);
  if (!at) return failure(at.error().describe());
  if (!at->ours_anywhere) return success("not mounted");
  if (!at->top_is_ours) {
    return failure(fmt::format("cannot unmount {}: {} is mounted over it", config.directory,
                               describe_mount(*at->top)));
  }
  const SteadyTime start = std::chrono::steady_clock::now();
  if (grace) {
    // SIGTERM gets the grace, but never all of the call's time: SIGKILL and
    // the unmount need some too.
    const SteadyTime grace_end = std::min(start + *grace, start + (job.deadline - start) / 2);
    signal_holders(job, SIGTERM, grace_end);
  }
  milliseconds delay = kFirstRetryDelay;
  int error = 0;
  for (;;) {
    const SteadyTime now = std::chrono::steady_clock::now();
    signal_holders(job, SIGKILL, std::min(job.deadline, now + kMaxRetryDelay * 5));
    if (::umount2(config.directory.c_str(), 0) == 0) {
      logger("resources")
          ->info("unmounted resource={} directory={}", job.resource, config.directory);
      return success();
    }
    error = errno;
    // EINVAL: no longer a mount point (unmounted meanwhile); ENOENT: the
    // directory itself is gone.
    if (error == EINVAL || error == ENOENT) return success("not mounted");
    if (error != EBUSY || std::chrono::steady_clock::now() + delay >= job.deadline) break;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, kMaxRetryDelay);
  }
  const std::set<int> ids = mount_ids_on(config.directory);
  const std::vector<MountHolder> holders =
      find_mount_holders("/proc", config.directory, ::getpid(), ids);
  std::string held = describe_holders(holders);
  if (auto self = held_by(fmt::format("/proc/{}", ::getpid()), config.directory, ids);
      !self.empty()) {
    held += fmt::format("; this agent ({}, {})", ::getpid(), self);
  }
  if (auto now = look_at_directory(config); now && !now->submounts.empty()) {
    held += fmt::format("; submounts: {}", fmt::join(now->submounts, ", "));
  }
  if (detach_last && ::umount2(config.directory.c_str(), MNT_DETACH) == 0) {
    logger("resources")
        ->error("unmount failed, detached lazily resource={} directory={} errno={} holders={}",
                job.resource, config.directory, strerrorname_np(error), held);
    return failure(fmt::format("umount {}: {}; detached lazily, holders: {}", config.directory,
                               errno_text(error), held));
  }
  logger("resources")
      ->error("unmount failed resource={} directory={} errno={} holders={}", job.resource,
              config.directory, strerrorname_np(error), held);
  return failure(
      fmt::format("umount {}: {}; holders: {}", config.directory, errno_text(error), held));
}

}  // namespace

// The lock by which one resource's call threads take turns, so an Online
// still mounting and an Offline never interleave.
struct MountResource::Turns {
  std::timed_mutex mutex;
};

namespace {

// Between a call's thread and the coroutine waiting for it: the thread posts
// its result only while somebody waits, so it never touches an executor
// whose call is gone.
struct Link {
  std::mutex mutex;
  bool abandoned = false;
};

struct Waiter {
  explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
  ~Waiter() {
    const std::lock_guard lock(link->mutex);
    link->abandoned = true;
  }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  boost::asio::steady_timer timer;
  std::optional<CallResult> result;
  std::shared_ptr<Link> link = std::make_shared<Link>();
};

using Work = std::function<CallResult(const Job&)>;

}  // namespace

MountResource::MountResource(boost::asio::any_io_executor executor)
    : executor_(std::move(executor)), turns_(std::make_shared<Turns>()) {}

MountResource::~MountResource() = default;

boost::asio::awaitable<CallResult> MountResource::call(cluster::Verb verb,
                                                       const CallContext& context) {
  if (verb == cluster::Verb::kOpen || verb == cluster::Verb::kClose) co_return success();
  if (context.timeout <= milliseconds::zero()) co_return failure("no timeout given");
  auto config = parse_config(context.parameters);
  if (!config) co_return failure(config.error().message, cluster::FailureClass::kFatal);
  if (verb == cluster::Verb::kLooksAlive) co_return looks_alive(*config);

  const SteadyTime start = std::chrono::steady_clock::now();
  Job job;
  job.config = std::move(*config);
  job.resource = context.resource;
  job.group = context.group;
  job.node = context.node;
  job.fencing_token = context.fencing_token;
  // Leave the thread a little of the call's time to report what it found
  // instead of being cut off by the timeout.
  job.deadline = start + context.timeout - std::min(milliseconds(200), context.timeout / 10);
  job.turn_deadline =
      verb == cluster::Verb::kTerminate ? start + context.timeout / 2 : job.deadline;
  if (context.clock != nullptr) {
    job.wall_time = context.clock->wall_now();
    if (context.fencing_deadline) {
      // Read here, on the agent's thread; the thread compares it with the
      // steady clock right before mount(2).
      job.fencing_deadline =
          start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      context.fencing_deadline() - context.clock->now());
    }
  }

  Work work;
  switch (verb) {
    case cluster::Verb::kOnline:
      work = online;
      break;
    case cluster::Verb::kIsAlive:
      work = is_alive;
      break;
    case cluster::Verb::kOffline:
      work = [](const Job& j) { return kill_and_unmount(j, j.config.kill_grace, false); };
      break;
    case cluster::Verb::kTerminate:
      work = [](const Job& j) { return kill_and_unmount(j, std::nullopt, true); };
      break;
    default:
      co_return failure("unknown verb");
  }

  const bool terminate = verb == cluster::Verb::kTerminate;
  const std::string directory = job.config.directory;
  auto body = [turns = turns_, terminate, work = std::move(work)](const Job& j) {
    std::unique_lock lock(turns->mutex, std::defer_lock);
    if (!lock.try_lock_until(j.turn_deadline) && !terminate) {
      return failure("an earlier call on this mount is still running (hung I/O?)");
    }
    CallResult result = work(j);
    if (!lock.owns_lock()) {
      result.output.emplace_back("an earlier call on this mount was still running");
    }
    return result;
  };

  const auto waiter = std::make_shared<Waiter>(executor_);
  waiter->timer.expires_at(start + context.timeout);
  try {
    std::thread([job = std::move(job), body = std::move(body), link = waiter->link,
                 weak = std::weak_ptr<Waiter>(waiter),
                 executor = waiter->timer.get_executor()]() mutable {
      CallResult result = body(job);
      const std::lock_guard lock(link->mutex);
      if (link->abandoned) return;
      boost::asio::post(executor, [weak = std::move(weak), result = std::move(result)]() mutable {
        if (auto waiting = weak.lock()) {
          waiting->result = std::move(result);
          waiting->timer.cancel();
        }
      });
    }).detach();
  } catch (const std::system_error& error) {
    co_return failure(fmt::format("cannot start a thread: {}", error.what()));
  }
  boost::system::error_code ignored;
  co_await waiter->timer.async_wait(
      boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  if (waiter->result) co_return std::move(*waiter->result);
  CallResult timed_out =
      failure(fmt::format("timed out after {} ms ({} {})", context.timeout.count(),
                          cluster::to_string(verb), directory));
  timed_out.timed_out = true;
  co_return timed_out;
}

}  // namespace clusweb::resources
