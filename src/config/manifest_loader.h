#pragma once

// YAML manifests (kinds Site, ApplicationPool, WebServer) -> one validated WebConfig.
// Documents of kind Group (cluster groups, group_manifest.h) are skipped, so a site and its
// group can share a file; any other kind is a problem.
// docs/configuration.md is the reference of the format. All functions are pure apart from
// the file reads of read_manifests/load_web_config_files and, when enabled, the existence
// checks of LoadOptions::check_filesystem; all are safe to call from any thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/duration.h"
#include "base/result.h"
#include "config/web_config.h"

namespace clusweb::config {

// One manifest file's text. `path` names it in messages and its folder anchors the
// relative paths written inside it (physicalPath, certificate, command, ...).
struct ManifestText {
  std::string path;
  std::string text;
};

struct LoadOptions {
  // false: skip the checks that look at this machine's files (directories exist,
  // certificates readable, commands executable): for text that came over the wire.
  bool check_filesystem = true;
};

// The filesystem checks of LoadOptions::check_filesystem, as "directory \"PATH\" does not
// exist" and the like; nullopt when `path` is a directory, or a regular file with
// `access_mode` (R_OK or X_OK) for this process.
std::optional<std::string> directory_problem(const std::string& path);
std::optional<std::string> file_problem(const std::string& path, int access_mode);

// Reads each path: a file, or a directory whose *.yaml and *.yml entries (not hidden, not
// recursive) are read in name order. Fails on the first unreadable path, naming it.
Result<std::vector<ManifestText>> read_manifests(const std::vector<std::string>& paths);

// Parses and validates a whole set of manifests. On failure the Error's message holds every
// problem found, one per line, in file and line order, each line starting with its location:
//   sites.yaml:12: Site "shop": field "bindings[1]": invalid binding ...
// and its `where` is the location of the first problem. Print `message` (describe() would
// repeat the first location).
Result<WebConfig> load_web_config(const std::vector<ManifestText>& manifests,
                                  const LoadOptions& options = {});

// read_manifests + load_web_config.
Result<WebConfig> load_web_config_files(const std::vector<std::string>& paths,
                                        const LoadOptions& options = {});

// Checks a WebConfig built in code or decoded from JSON against the invariants the loader
// guarantees (never touches the filesystem):
// - names are 1..64 of [A-Za-z0-9._-] (not "." or "..") and equal their map keys;
// - settings are within the ranges of docs/configuration.md;
// - paths (root, certificates, logs, working directories) are absolute;
// - every site has a binding; https bindings have a certificate and a key, http ones neither;
// - application paths are normalized, unique within their site, and name an existing pool;
// - no two bindings claim the same listener and host;
// - no port serves http and https on overlapping addresses ("*" overlaps every address).
// Problems are reported like load_web_config's, located by the objects' `where`.
Status validate_web_config(const WebConfig& config);

// Durations: parse_duration() and format_duration() from base/duration.h.

// "512", "512B", "16KiB", "32MiB", "1GiB", "1TiB" (powers of 1024) or "KB", "MB", "GB", "TB"
// (powers of 1000); units are case-insensitive and may follow a space.
Result<std::uint64_t> parse_size(std::string_view text);

// "http|https://ADDRESS:PORT[/HOST]": ADDRESS is "*", an IPv4 literal or a bracketed IPv6
// literal (stored canonical, without brackets); PORT is 1..65535; HOST is optional, a DNS
// name or "*.suffix", stored lowercase. The result has no certificate, key or location.
Result<Binding> parse_binding_url(std::string_view url);

}  // namespace clusweb::config
