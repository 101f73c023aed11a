#include "config/manifest_loader.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "base/unique_fd.h"
#include "config/manifest_reader.h"

namespace clusweb::config {

// ---------------------------------------------------------------------------------------------
// Filesystem checks (LoadOptions::check_filesystem).

std::optional<std::string> directory_problem(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return fmt::format("directory \"{}\" does not exist", path);
    return fmt::format("directory \"{}\": {}", path, std::strerror(errno));
  }
  if (!S_ISDIR(info.st_mode)) return fmt::format("\"{}\" is not a directory", path);
  return std::nullopt;
}

std::optional<std::string> file_problem(const std::string& path, int access_mode) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return fmt::format("file \"{}\" does not exist", path);
    return fmt::format("file \"{}\": {}", path, std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) return fmt::format("\"{}\" is not a regular file", path);
  if (::access(path.c_str(), access_mode) != 0) {
    return fmt::format("file \"{}\" is not {}", path,
                       access_mode == X_OK ? "executable" : "readable");
  }
  return std::nullopt;
}

namespace {

namespace fs = std::filesystem;
using manifest::describe_problem;
using manifest::Field;
using manifest::indexed;
using manifest::join_path;
using manifest::lowercase;
using manifest::peek_name;
using manifest::Problems;
using manifest::subject_of;
using std::chrono::milliseconds;

// The document kinds of a manifest, in the order messages list them. Group documents are
// skipped: they belong to `clusweb apply` (group_manifest.h).
constexpr std::string_view kKinds[] = {"Site", "ApplicationPool", "WebServer", "Group"};

// ---------------------------------------------------------------------------------------------
// Ranges of the numeric settings (docs/configuration.md lists the same numbers).

struct IntRange {
  long long min;
  long long max;
  bool contains(long long value) const { return value >= min && value <= max; }
  std::string describe() const { return fmt::format("must be between {} and {}", min, max); }
};

constexpr IntRange kThreads{1, 256};
constexpr IntRange kHeaderBytes{1024, 1024LL * 1024};
constexpr IntRange kMaxHeaders{1, 10'000};
constexpr IntRange kMaxConnections{1, 1'000'000};
constexpr IntRange kProcesses{1, 64};
constexpr IntRange kQueueLength{1, 65'535};
constexpr IntRange kMaxCrashes{1, 10'000};
constexpr IntRange kPort{1, 65'535};

constexpr std::string_view kNameRule = "must be 1 to 64 letters, digits, '.', '_' or '-'";

// ---------------------------------------------------------------------------------------------
// Small text rules.

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
}

// A lowercase DNS name: dot-separated labels of 1..63 [a-z0-9-], not starting or ending
// with '-', at most 253 characters, no trailing dot.
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    if (!std::all_of(label.begin(), label.end(),
                     [](char c) { return is_lower_alnum(c) || c == '-'; })) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_valid_host(std::string_view host) {
  if (host.starts_with("*.")) return is_dns_name(host.substr(2));
  return is_dns_name(host);
}

Result<std::string> normalize_application_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return make_error("must start with \"/\"");
  for (char c : path) {
    if (is_control(c) || c == ' ' || c == '?' || c == '#' || c == '\\') {
      return make_error("must not contain spaces, control characters, '?', '#' or '\\'");
    }
  }
  std::string normal;
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view segment = path.substr(start, slash - start);
    if (segment == "." || segment == "..") {
      return make_error("must not contain \".\" or \"..\" segments");
    }
    if (!segment.empty()) {
      normal += '/';
      normal += segment;
    }
    start = slash + 1;
  }
  return normal.empty() ? std::string("/") : normal;
}

std::optional<std::string> default_document_problem(std::string_view document) {
  if (document.empty() || document == "." || document == "..") return "must be a file name";
  for (char c : document) {
    if (c == '/' || c == '\\' || is_control(c)) {
      return "must be a plain file name (no '/', '\\' or control characters)";
    }
  }
  return std::nullopt;
}

// Extensions are stored lowercase; the key is checked after lowercasing.
std::optional<std::string> mime_extension_problem(std::string_view extension) {
  const bool ok = !extension.empty() && std::all_of(extension.begin(), extension.end(), [](char c) {
    return is_lower_alnum(c) || c == '-' || c == '_' || c == '+';
  });
  if (ok) return std::nullopt;
  return "must be a file extension without the dot (letters, digits, '-', '_', '+')";
}

bool is_mime_token_char(char c) {
  return is_alnum(c) || std::string_view("!#$&^_.+-").find(c) != std::string_view::npos;
}

// "type/subtype" optionally followed by "; parameters".
std::optional<std::string> mime_type_problem(std::string_view type) {
  const std::size_t slash = type.find('/');
  const std::size_t end = std::min(type.find(';'), type.size());
  const bool ok =
      slash != std::string_view::npos && slash > 0 && slash + 1 < end &&
      std::all_of(type.begin(), type.begin() + static_cast<long>(slash), is_mime_token_char) &&
      std::all_of(type.begin() + static_cast<long>(slash) + 1,
                  type.begin() + static_cast<long>(end), is_mime_token_char) &&
      std::none_of(type.begin(), type.end(), is_control);
  if (ok) return std::nullopt;
  return "must be a media type such as \"text/html\" or \"text/plain; charset=utf-8\"";
}

std::optional<std::string> environment_name_problem(std::string_view name) {
  if (name.empty() || name.find('=') != std::string_view::npos) {
    return "environment variable names must be non-empty and contain no '='";
  }
  return std::nullopt;
}

// Presence rules of a binding's certificate and key.
std::optional<std::string> certificate_problem(Scheme scheme, bool has_certificate, bool has_key) {
  if (scheme == Scheme::kHttps) {
    if (!has_certificate && !has_key) return "an https binding needs a certificate and a key";
    if (!has_certificate) return "an https binding needs a certificate";
    if (!has_key) return "an https binding needs a key";
  } else if (has_certificate || has_key) {
    return "certificate and key apply only to https bindings";
  }
  return std::nullopt;
}

std::string_view scheme_name(Scheme scheme) { return scheme == Scheme::kHttps ? "https" : "http"; }

// ---------------------------------------------------------------------------------------------
// Checks of a built model: per object (only for configs that did not come from YAML, whose
// reader checks each field where it is written) and across objects (always).

void check_server(const ServerSettings& server, Problems& problems) {
  auto fail = [&](std::string_view field, std::string_view what) {
    problems.add(server.where, describe_problem("WebServer", field, what));
  };
  if (server.user.empty()) fail("user", "must not be empty");
  if (!kThreads.contains(server.threads)) fail("threads", kThreads.describe());
  const Limits& limits = server.limits;
  if (limits.max_header_bytes < static_cast<std::size_t>(kHeaderBytes.min) ||
      limits.max_header_bytes > static_cast<std::size_t>(kHeaderBytes.max)) {
    fail("limits.maxHeaderBytes", kHeaderBytes.describe());
  }
  if (!kMaxHeaders.contains(limits.max_headers)) fail("limits.maxHeaders", kMaxHeaders.describe());
  if (limits.header_timeout <= milliseconds::zero()) {
    fail("limits.headerTimeout", "must be greater than 0");
  }
  if (limits.idle_timeout <= milliseconds::zero()) {
    fail("limits.idleTimeout", "must be greater than 0");
  }
  if (!kMaxConnections.contains(limits.max_connections)) {
    fail("limits.maxConnections", kMaxConnections.describe());
  }
}

void check_site(const std::string& key, const Site& site, Problems& problems) {
  const std::string subject = subject_of("Site", site.name);
  auto fail = [&](const SourceLocation& where, std::string_view field, std::string_view what) {
    problems.add(where, describe_problem(subject, field, what));
  };
  if (!is_valid_name(site.name)) fail(site.where, "name", kNameRule);
  if (key != site.name) fail(site.where, "name", fmt::format("does not match its key \"{}\"", key));
  if (!fs::path(site.root).is_absolute()) {
    fail(site.where, "physicalPath", "must be an absolute path");
  }
  if (site.bindings.empty()) fail(site.where, "bindings", "at least one binding is required");
  for (std::size_t i = 0; i < site.bindings.size(); ++i) {
    const Binding& binding = site.bindings[i];
    const std::string field = indexed("bindings", i);
    const auto parsed = parse_binding_url(binding.url());
    if (!parsed.ok()) {
      fail(binding.where, field, parsed.error().message);
    } else if (parsed->scheme != binding.scheme || parsed->address != binding.address ||
               parsed->port != binding.port || parsed->host != binding.host) {
      fail(binding.where, field,
           fmt::format("\"{}\" is not in canonical form (\"{}\")", binding.url(), parsed->url()));
    }
    if (auto problem =
            certificate_problem(binding.scheme, binding.has_certificate(), binding.has_key())) {
      fail(binding.where, field, *problem);
    }
    if (!binding.certificate.empty() && !binding.certificate_pem.empty()) {
      fail(binding.where, join_path(field, "certificatePem"),
           "a binding has either a certificate file or inline PEM, not both");
    }
    if (!binding.key.empty() && !binding.key_sealed.empty()) {
      fail(binding.where, join_path(field, "keySealed"),
           "a binding has either a key file or a sealed key, not both");
    }
    if (!binding.key_sealed.empty() && !binding.key_sealed.starts_with("sealed:")) {
      fail(binding.where, join_path(field, "keySealed"), "is not a sealed value");
    }
    if (!binding.certificate_pem.empty() &&
        binding.certificate_pem.find("-----BEGIN ") == std::string::npos) {
      fail(binding.where, join_path(field, "certificatePem"), "is not PEM text");
    }
    for (const auto& [name, path] :
         {std::pair{"certificate", &binding.certificate}, std::pair{"key", &binding.key}}) {
      if (!path->empty() && !fs::path(*path).is_absolute()) {
        fail(binding.where, join_path(field, name), "must be an absolute path");
      }
    }
  }
  for (std::size_t i = 0; i < site.applications.size(); ++i) {
    const Application& application = site.applications[i];
    const std::string field = indexed("applications", i);
    const auto normal = normalize_application_path(application.path);
    if (!normal.ok()) {
      fail(application.where, join_path(field, "path"), normal.error().message);
    } else if (*normal != application.path) {
      fail(application.where, join_path(field, "path"),
           fmt::format("must be normalized (\"{}\")", *normal));
    }
    if (!application.pool.empty() && !is_valid_name(application.pool)) {
      fail(application.where, join_path(field, "pool"), kNameRule);
    }
  }
  for (std::size_t i = 0; i < site.default_documents.size(); ++i) {
    if (auto problem = default_document_problem(site.default_documents[i])) {
      fail(site.where, indexed("defaultDocuments", i), *problem);
    }
  }
  if (!site.access_log.empty() && !fs::path(site.access_log).is_absolute()) {
    fail(site.where, "accessLog", "must be an absolute path or empty (off)");
  }
  for (const auto& [extension, type] : site.mime_types) {
    const std::string field = join_path("mimeTypes", extension);
    if (auto problem = mime_extension_problem(extension)) fail(site.where, field, *problem);
    if (extension != lowercase(extension)) fail(site.where, field, "must be lowercase");
    if (auto problem = mime_type_problem(type)) fail(site.where, field, *problem);
  }
}

void check_pool(const std::string& key, const ApplicationPool& pool, Problems& problems) {
  const std::string subject = subject_of("ApplicationPool", pool.name);
  auto fail = [&](std::string_view field, std::string_view what) {
    problems.add(pool.where, describe_problem(subject, field, what));
  };
  if (!is_valid_name(pool.name)) fail("name", kNameRule);
  if (key != pool.name) fail("name", fmt::format("does not match its key \"{}\"", key));
  if (pool.command.empty() || pool.command.front().empty()) {
    fail("command", "must name a program");
  }
  if (!fs::path(pool.working_directory).is_absolute()) {
    fail("workingDirectory", "must be an absolute path");
  }
  for (const auto& [name, value] : pool.environment) {
    if (auto problem = environment_name_problem(name))
      fail(join_path("environment", name), *problem);
  }
  for (const auto& [name, path] : pool.secret_environment) {
    if (auto problem = environment_name_problem(name)) {
      fail(join_path("secretEnvironment", name), *problem);
    } else if (!fs::path(path).is_absolute()) {
      fail(join_path("secretEnvironment", name), "must be an absolute path");
    }
    if (pool.environment.contains(name) || pool.secret_environment_sealed.contains(name)) {
      fail(join_path("secretEnvironment", name), "is also set elsewhere in the pool");
    }
  }
  for (const auto& [name, sealed] : pool.secret_environment_sealed) {
    if (auto problem = environment_name_problem(name)) {
      fail(join_path("secretEnvironmentSealed", name), *problem);
    } else if (!sealed.starts_with("sealed:")) {
      fail(join_path("secretEnvironmentSealed", name), "is not a sealed value");
    }
    if (pool.environment.contains(name)) {
      fail(join_path("secretEnvironmentSealed", name), "is also set in environment");
    }
  }
  if (!kProcesses.contains(pool.processes)) fail("processes", kProcesses.describe());
  if (pool.startup_time_limit <= milliseconds::zero()) {
    fail("startupTimeLimit", "must be greater than 0");
  }
  if (pool.shutdown_time_limit <= milliseconds::zero()) {
    fail("shutdownTimeLimit", "must be greater than 0");
  }
  if (!kMaxCrashes.contains(pool.rapid_fail_max_crashes)) {
    fail("rapidFailProtection.maxCrashes", kMaxCrashes.describe());
  }
  if (pool.rapid_fail_interval <= milliseconds::zero()) {
    fail("rapidFailProtection.interval", "must be greater than 0");
  }
  if (!kQueueLength.contains(pool.queue_length)) fail("queueLength", kQueueLength.describe());
}

bool addresses_overlap(const std::string& a, const std::string& b) {
  return a == b || a == "*" || b == "*";
}

// Cross-object rules. `pools_complete` is false when some manifest could not be parsed, so
// a missing pool may only be missing because its file is broken; that check is skipped.
void check_references(const WebConfig& config, bool pools_complete, Problems& problems) {
  struct Claim {
    const Site* site;
    std::size_t index;
    const Binding* binding;
  };
  std::vector<Claim> claims;

  for (const auto& [name, site] : config.sites) {
    const std::string subject = subject_of("Site", site.name);
    std::map<std::string, const Application*> paths;
    for (std::size_t i = 0; i < site.applications.size(); ++i) {
      const Application& application = site.applications[i];
      const std::string field = indexed("applications", i);
      const auto [first, inserted] = paths.emplace(application.path, &application);
      if (!inserted) {
        problems.add(
            application.where,
            describe_problem(subject, join_path(field, "path"),
                             fmt::format("duplicate application path \"{}\", also at {}",
                                         application.path, first->second->where.describe())));
      }
      if (pools_complete && !application.pool.empty() && !config.pools.contains(application.pool)) {
        problems.add(application.where,
                     describe_problem(
                         subject, join_path(field, "pool"),
                         fmt::format("no ApplicationPool named \"{}\" exists", application.pool)));
      }
    }
    for (std::size_t i = 0; i < site.bindings.size(); ++i) {
      claims.push_back(Claim{&site, i, &site.bindings[i]});
    }
  }

  // The later binding (in file and line order) is the one reported.
  std::stable_sort(claims.begin(), claims.end(), [&](const Claim& a, const Claim& b) {
    return problems.before(a.binding->where, b.binding->where);
  });
  std::map<std::string, Claim> by_endpoint;  // listener_key + "/" + host
  std::map<std::uint16_t, std::vector<Claim>> by_port;
  for (const Claim& claim : claims) {
    const Binding& binding = *claim.binding;
    const std::string subject = subject_of("Site", claim.site->name);
    const std::string field = indexed("bindings", claim.index);
    const auto [first, inserted] =
        by_endpoint.emplace(binding.listener_key() + "/" + binding.host, claim);
    if (!inserted) {
      const Claim& other = first->second;
      const std::string what =
          other.site == claim.site
              ? fmt::format("duplicate binding \"{}\", also at {}", binding.url(),
                            other.binding->where.describe())
              : fmt::format("\"{}\" is already claimed by site \"{}\" at {}", binding.url(),
                            other.site->name, other.binding->where.describe());
      problems.add(binding.where, describe_problem(subject, field, what));
    }
    std::vector<Claim>& same_port = by_port[binding.port];
    for (const Claim& other : same_port) {
      if (other.binding->scheme == binding.scheme ||
          !addresses_overlap(other.binding->address, binding.address)) {
        continue;
      }
      problems.add(
          binding.where,
          describe_problem(subject, field,
                           fmt::format("port {} is used with {} here (\"{}\") and with {} "
                                       "by site \"{}\" at {} (\"{}\"); one port serves "
                                       "one scheme",
                                       binding.port, scheme_name(binding.scheme), binding.url(),
                                       scheme_name(other.binding->scheme), other.site->name,
                                       other.binding->where.describe(), other.binding->url())));
      break;
    }
    same_port.push_back(claim);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading YAML documents.

// Reads the documents of one manifest file, reporting each problem at its line; adds the
// values of the web kinds and the paths they resolve against the manifest's folder.
class DocumentReader : public manifest::Reader {
 public:
  DocumentReader(std::string file, fs::path folder, const LoadOptions& options, Problems& problems)
      : Reader(std::move(file), problems), folder_(std::move(folder)), options_(options) {}

  bool check_filesystem() const { return options_.check_filesystem; }

  std::optional<std::string> non_empty_string(const Field& field) {
    auto text = string_value(field);
    if (text && text->empty()) {
      fail(field, "must not be empty");
      return std::nullopt;
    }
    return text;
  }

  std::optional<std::string> name_value(const Field& field) {
    auto text = string_value(field);
    if (text && !is_valid_name(*text)) {
      fail(field, kNameRule);
      return std::nullopt;
    }
    return text;
  }

  // Plain (unquoted) true or false, in any letter case.
  std::optional<bool> bool_value(const Field& field) {
    if (field.value.IsScalar() && field.value.Tag() != "!") {
      const std::string text = lowercase(field.value.Scalar());
      if (text == "true") return true;
      if (text == "false") return false;
    }
    fail(field, "must be true or false");
    return std::nullopt;
  }

  // A plain (unquoted) decimal integer within `range`.
  std::optional<int> int_value(const Field& field, IntRange range) {
    long long number = 0;
    bool ok = field.value.IsScalar() && field.value.Tag() != "!";
    if (ok) {
      const std::string& text = field.value.Scalar();
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
      ok = error == std::errc() && end == text.data() + text.size() && !text.empty();
    }
    if (!ok) {
      fail(field, "must be an integer");
      return std::nullopt;
    }
    if (!range.contains(number)) {
      fail(field, range.describe());
      return std::nullopt;
    }
    return static_cast<int>(number);
  }

  std::optional<std::uint64_t> size_value(const Field& field) {
    if (!field.value.IsScalar()) {
      fail(field, "must be a size such as \"16KiB\"");
      return std::nullopt;
    }
    auto size = parse_size(field.value.Scalar());
    if (!size.ok()) {
      fail(field, size.error().message);
      return std::nullopt;
    }
    return *size;
  }

  std::optional<std::vector<std::string>> string_list(const Field& field) {
    std::vector<std::string> list;
    bool ok = true;
    const bool listed = read_list(field, "must be a list of strings", [&](const Field& item) {
      auto text = string_value(item);
      if (text) {
        list.push_back(std::move(*text));
      } else {
        ok = false;
      }
    });
    if (!listed || !ok) return std::nullopt;
    return list;
  }

  // A map of strings to strings; `check(key, value)` returns a problem with an entry, if any.
  template <class Check>
  std::optional<std::map<std::string, std::string>> string_map(const Field& field, Check check) {
    if (!field.value.IsMap()) {
      fail(field, "must be a map of strings");
      return std::nullopt;
    }
    std::map<std::string, std::string> map;
    bool ok = true;
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      const SourceLocation where = at(it->first);
      auto key = string_value(Field{field.path, it->first, where});
      if (!key) {
        ok = false;
        continue;
      }
      const std::string path = join_path(field.path, *key);
      auto value = string_value(Field{path, it->second, where});
      if (!value) {
        ok = false;
        continue;
      }
      if (auto problem = check(*key, *value)) {
        fail_at(where, path, *problem);
        ok = false;
      } else if (!map.emplace(*key, std::move(*value)).second) {
        fail_at(where, path, "duplicate key");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return map;
  }

  // `path` against the manifest's folder, lexically normalized, without a trailing '/'.
  std::string resolve(std::string_view path) const {
    fs::path resolved{path};
    if (resolved.is_relative()) resolved = folder_ / resolved;
    std::string text = resolved.lexically_normal().string();
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    return text;
  }

 private:
  fs::path folder_;
  const LoadOptions& options_;
};

std::optional<Binding> read_binding(DocumentReader& reader, const Field& item) {
  std::optional<Binding> binding;
  bool has_certificate = false;
  bool has_key = false;
  auto parse_url = [&](const Field& field) {
    auto text = reader.string_value(field);
    if (!text) return;
    auto parsed = parse_binding_url(*text);
    if (!parsed.ok()) {
      reader.fail(field, parsed.error().message);
      return;
    }
    binding = std::move(*parsed);
  };
  std::string certificate;
  std::string key;
  auto read_file_field = [&](const Field& field, std::string& out) {
    auto text = reader.non_empty_string(field);
    if (!text) return;
    out = reader.resolve(*text);
    if (reader.check_filesystem()) {
      if (auto problem = file_problem(out, R_OK)) reader.fail(field, *problem);
    }
  };

  if (item.value.IsScalar()) {
    parse_url(item);
  } else if (item.value.IsMap()) {
    reader.read_map(item, {"url", "certificate", "key"}, {"url"},
                    [&](std::string_view name, const Field& field) {
                      if (name == "url") {
                        parse_url(field);
                      } else if (name == "certificate") {
                        has_certificate = true;
                        read_file_field(field, certificate);
                      } else {
                        has_key = true;
                        read_file_field(field, key);
                      }
                    });
  } else {
    reader.fail(item, "must be a binding URL or a map with url, certificate and key");
    return std::nullopt;
  }
  if (!binding) return std::nullopt;
  if (auto problem = certificate_problem(binding->scheme, has_certificate, has_key)) {
    reader.fail(item, *problem);
  }
  binding->certificate = std::move(certificate);
  binding->key = std::move(key);
  binding->where = item.where;
  return binding;
}

std::optional<Application> read_application(DocumentReader& reader, const Field& item) {
  Application application;
  application.where = item.where;
  bool ok = true;
  reader.read_map(item, {"path", "pool"}, {"path", "pool"},
                  [&](std::string_view name, const Field& field) {
                    if (name == "path") {
                      auto text = reader.string_value(field);
                      if (!text) {
                        ok = false;
                        return;
                      }
                      auto normal = normalize_application_path(*text);
                      if (!normal.ok()) {
                        reader.fail(field, normal.error().message);
                        ok = false;
                        return;
                      }
                      application.path = std::move(*normal);
                    } else {
                      auto pool = reader.name_value(field);
                      if (!pool) {
                        ok = false;
                        return;
                      }
                      application.pool = std::move(*pool);
                    }
                  });
  // A missing required field was reported by read_map and leaves pool empty.
  if (!ok || application.pool.empty()) return std::nullopt;
  return application;
}

Site read_site(DocumentReader& reader, const Field& document) {
  Site site;
  site.where = document.where;
  reader.read_map(
      document,
      {"kind", "name", "physicalPath", "autoStart", "bindings", "defaultDocuments",
       "directoryBrowsing", "accessLog", "mimeTypes", "applications"},
      {"name", "physicalPath", "bindings"}, [&](std::string_view name, const Field& field) {
        if (name == "name") {
          if (auto value = reader.name_value(field)) site.name = std::move(*value);
        } else if (name == "physicalPath") {
          auto value = reader.non_empty_string(field);
          if (!value) return;
          site.root = reader.resolve(*value);
          if (reader.check_filesystem()) {
            if (auto problem = directory_problem(site.root)) reader.fail(field, *problem);
          }
        } else if (name == "autoStart") {
          if (auto value = reader.bool_value(field)) site.auto_start = *value;
        } else if (name == "bindings") {
          const bool listed =
              reader.read_list(field, "must be a list of bindings", [&](const Field& item) {
                if (auto binding = read_binding(reader, item)) {
                  site.bindings.push_back(std::move(*binding));
                }
              });
          if (listed && field.value.size() == 0) {
            reader.fail(field, "at least one binding is required");
          }
        } else if (name == "defaultDocuments") {
          auto documents = reader.string_list(field);
          if (!documents) return;
          bool ok = true;
          std::size_t index = 0;
          for (const YAML::Node& item : field.value) {
            if (auto problem = default_document_problem(item.Scalar())) {
              reader.fail(Field{indexed(field.path, index), item, reader.at(item)}, *problem);
              ok = false;
            }
            ++index;
          }
          if (ok) site.default_documents = std::move(*documents);
        } else if (name == "directoryBrowsing") {
          if (auto value = reader.bool_value(field)) site.directory_browsing = *value;
        } else if (name == "accessLog") {
          auto value = reader.non_empty_string(field);
          if (!value) return;
          site.access_log = *value == "off" ? std::string() : reader.resolve(*value);
        } else if (name == "mimeTypes") {
          auto types = reader.string_map(
              field,
              [](const std::string& key, const std::string& type) -> std::optional<std::string> {
                if (auto problem = mime_extension_problem(lowercase(key))) return problem;
                return mime_type_problem(type);
              });
          if (!types) return;
          for (auto& [extension, type] : *types) {
            const std::string key = lowercase(extension);
            if (!site.mime_types.emplace(key, std::move(type)).second) {
              reader.fail(field, fmt::format("extension \"{}\" is listed twice", key));
            }
          }
        } else if (name == "applications") {
          reader.read_list(field, "must be a list of applications", [&](const Field& item) {
            if (auto application = read_application(reader, item)) {
              site.applications.push_back(std::move(*application));
            }
          });
        }
      });
  return site;
}

std::vector<std::string> split_on_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::size_t start = 0;
  while (start < text.size()) {
    start = text.find_first_not_of(" \t", start);
    if (start == std::string_view::npos) break;
    std::size_t end = text.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = text.size();
    words.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return words;
}

void read_command(DocumentReader& reader, const Field& field, ApplicationPool& pool) {
  std::vector<std::string> command;
  if (field.value.IsScalar()) {
    auto text = reader.string_value(field);
    if (!text) return;
    command = split_on_whitespace(*text);
  } else if (field.value.IsSequence()) {
    auto list = reader.string_list(field);
    if (!list) return;
    command = std::move(*list);
  } else {
    reader.fail(field, "must be a list of strings or a string");
    return;
  }
  if (command.empty() || command.front().empty()) {
    reader.fail(field, "must name a program");
    return;
  }
  // A bare program name is left for PATH lookup when the worker starts.
  if (command.front().find('/') != std::string::npos) {
    command.front() = reader.resolve(command.front());
    if (reader.check_filesystem()) {
      if (auto problem = file_problem(command.front(), X_OK)) reader.fail(field, *problem);
    }
  }
  pool.command = std::move(command);
}

ApplicationPool read_pool(DocumentReader& reader, const Field& document) {
  ApplicationPool pool;
  pool.where = document.where;
  pool.working_directory = reader.resolve(".");
  reader.read_map(document,
                  {"kind", "name", "command", "workingDirectory", "environment",
                   "secretEnvironment", "user", "processes", "socket", "autoStart",
                   "startupTimeLimit", "shutdownTimeLimit", "rapidFailProtection", "queueLength"},
                  {"name", "command"}, [&](std::string_view name, const Field& field) {
                    if (name == "name") {
                      if (auto value = reader.name_value(field)) pool.name = std::move(*value);
                    } else if (name == "command") {
                      read_command(reader, field, pool);
                    } else if (name == "workingDirectory") {
                      auto value = reader.non_empty_string(field);
                      if (!value) return;
                      pool.working_directory = reader.resolve(*value);
                      if (reader.check_filesystem()) {
                        if (auto problem = directory_problem(pool.working_directory)) {
                          reader.fail(field, *problem);
                        }
                      }
                    } else if (name == "environment") {
                      auto environment =
                          reader.string_map(field, [](const std::string& key, const std::string&) {
                            return environment_name_problem(key);
                          });
                      if (environment) pool.environment = std::move(*environment);
                    } else if (name == "secretEnvironment") {
                      // NAME: file holding the value, relative to the manifest's folder.
                      auto files = reader.string_map(
                          field, [&](const std::string& key, const std::string& value) {
                            if (auto problem = environment_name_problem(key)) return problem;
                            if (value.empty())
                              return std::optional<std::string>("must name a file");
                            if (reader.check_filesystem())
                              return file_problem(reader.resolve(value), R_OK);
                            return std::optional<std::string>();
                          });
                      if (files) {
                        for (auto& [key, value] : *files)
                          pool.secret_environment[key] = reader.resolve(value);
                      }
                    } else if (name == "user") {
                      if (auto value = reader.string_value(field)) pool.user = std::move(*value);
                    } else if (name == "processes") {
                      if (auto value = reader.int_value(field, kProcesses)) pool.processes = *value;
                    } else if (name == "socket") {
                      auto value = reader.string_value(field);
                      if (!value) return;
                      if (*value == "activation") {
                        pool.socket = SocketMode::kActivation;
                      } else if (*value == "port") {
                        pool.socket = SocketMode::kPort;
                      } else {
                        reader.fail(field, "must be \"activation\" or \"port\"");
                      }
                    } else if (name == "autoStart") {
                      if (auto value = reader.bool_value(field)) pool.auto_start = *value;
                    } else if (name == "startupTimeLimit") {
                      if (auto value = reader.duration_value(field))
                        pool.startup_time_limit = *value;
                    } else if (name == "shutdownTimeLimit") {
                      if (auto value = reader.duration_value(field))
                        pool.shutdown_time_limit = *value;
                    } else if (name == "rapidFailProtection") {
                      reader.read_map(field, {"enabled", "maxCrashes", "interval"}, {},
                                      [&](std::string_view key, const Field& setting) {
                                        if (key == "enabled") {
                                          if (auto value = reader.bool_value(setting)) {
                                            pool.rapid_fail_protection = *value;
                                          }
                                        } else if (key == "maxCrashes") {
                                          if (auto value = reader.int_value(setting, kMaxCrashes)) {
                                            pool.rapid_fail_max_crashes = *value;
                                          }
                                        } else if (auto value = reader.duration_value(setting)) {
                                          pool.rapid_fail_interval = *value;
                                        }
                                      });
                    } else if (name == "queueLength") {
                      if (auto value = reader.int_value(field, kQueueLength))
                        pool.queue_length = *value;
                    }
                  });
  for (const auto& [name, path] : pool.secret_environment) {
    if (pool.environment.contains(name)) {
      reader.fail_at(pool.where, "secretEnvironment." + name,
                     "is also set elsewhere in the pool (environment)");
    }
  }
  return pool;
}

void read_limits(DocumentReader& reader, const Field& field, Limits& limits) {
  reader.read_map(field,
                  {"maxHeaderBytes", "maxHeaders", "maxBodyBytes", "headerTimeout", "idleTimeout",
                   "maxConnections"},
                  {}, [&](std::string_view name, const Field& setting) {
                    if (name == "maxHeaderBytes") {
                      auto value = reader.size_value(setting);
                      if (!value) return;
                      if (*value < static_cast<std::uint64_t>(kHeaderBytes.min) ||
                          *value > static_cast<std::uint64_t>(kHeaderBytes.max)) {
                        reader.fail(setting, "must be between 1KiB and 1MiB");
                        return;
                      }
                      limits.max_header_bytes = static_cast<std::size_t>(*value);
                    } else if (name == "maxHeaders") {
                      if (auto value = reader.int_value(setting, kMaxHeaders))
                        limits.max_headers = *value;
                    } else if (name == "maxBodyBytes") {
                      if (auto value = reader.size_value(setting)) limits.max_body_bytes = *value;
                    } else if (name == "headerTimeout") {
                      if (auto value = reader.duration_value(setting))
                        limits.header_timeout = *value;
                    } else if (name == "idleTimeout") {
                      if (auto value = reader.duration_value(setting)) limits.idle_timeout = *value;
                    } else if (name == "maxConnections") {
                      if (auto value = reader.int_value(setting, kMaxConnections)) {
                        limits.max_connections = *value;
                      }
                    }
                  });
}

ServerSettings read_server(DocumentReader& reader, const Field& document) {
  ServerSettings server;
  server.where = document.where;
  reader.read_map(document, {"kind", "user", "threads", "limits"}, {},
                  [&](std::string_view name, const Field& field) {
                    if (name == "user") {
                      if (auto value = reader.non_empty_string(field)) server.user = *value;
                    } else if (name == "threads") {
                      if (auto value = reader.int_value(field, kThreads)) server.threads = *value;
                    } else if (name == "limits") {
                      read_limits(reader, field, server.limits);
                    }
                  });
  return server;
}

// Collects documents into one WebConfig, reporting duplicates across documents and files.
class ConfigBuilder {
 public:
  ConfigBuilder(const LoadOptions& options, Problems& problems)
      : options_(options), problems_(problems) {}

  void add_manifest(const ManifestText& manifest) {
    DocumentReader reader(manifest.path, folder_of(manifest.path), options_, problems_);
    const bool parsed = manifest::read_documents(
        manifest, problems_, [&](const YAML::Node& document) { add_document(reader, document); });
    if (!parsed) complete_ = false;
  }

  bool complete() const { return complete_; }
  WebConfig& config() { return config_; }

 private:
  static fs::path folder_of(const std::string& path) {
    std::error_code error;
    if (path.empty()) return fs::current_path(error);
    fs::path absolute = fs::absolute(fs::path(path), error);
    if (error) absolute = fs::path(path);
    return absolute.lexically_normal().parent_path();
  }

  void add_document(DocumentReader& reader, const YAML::Node& document) {
    const Field field{"", document, reader.at(document)};
    const auto kind_name = reader.document_kind(field, kKinds);
    if (!kind_name) return;
    if (*kind_name == "Site") {
      reader.set_subject(subject_of("Site", peek_name(document)));
      add_site(reader, read_site(reader, field));
    } else if (*kind_name == "ApplicationPool") {
      reader.set_subject(subject_of("ApplicationPool", peek_name(document)));
      add_pool(reader, read_pool(reader, field));
    } else if (*kind_name == "WebServer") {
      reader.set_subject("WebServer");
      ServerSettings server = read_server(reader, field);
      if (server_where_) {
        reader.fail_at(server.where, "",
                       fmt::format("only one WebServer document is allowed; the first is at {}",
                                   server_where_->describe()));
        return;
      }
      server_where_ = server.where;
      config_.server = std::move(server);
    }
    // Otherwise a Group (group_manifest.h): it may share a file with its site; `clusweb apply`
    // reads it, the web service does not.
  }

  // Objects with field problems are kept (when named) so that references to them do not
  // produce further, misleading problems; the load fails anyway.
  void add_site(DocumentReader& reader, Site site) {
    if (site.name.empty()) return;
    const auto [first, inserted] = site_where_.emplace(site.name, site.where);
    if (!inserted) {
      reader.fail_at(
          site.where, "name",
          fmt::format("duplicate site name, first defined at {}", first->second.describe()));
      return;
    }
    const std::string name = site.name;
    config_.sites.emplace(name, std::move(site));
  }

  void add_pool(DocumentReader& reader, ApplicationPool pool) {
    if (pool.name.empty()) return;
    const auto [first, inserted] = pool_where_.emplace(pool.name, pool.where);
    if (!inserted) {
      reader.fail_at(pool.where, "name",
                     fmt::format("duplicate application pool name, first defined at {}",
                                 first->second.describe()));
      return;
    }
    const std::string name = pool.name;
    config_.pools.emplace(name, std::move(pool));
  }

  const LoadOptions& options_;
  Problems& problems_;
  WebConfig config_;
  std::map<std::string, SourceLocation> site_where_;
  std::map<std::string, SourceLocation> pool_where_;
  std::optional<SourceLocation> server_where_;
  bool complete_ = true;
};

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open", path);
  std::string text;
  char buffer[64 * 1024];
  while (true) {
    const ssize_t count = ::read(fd.get(), buffer, sizeof buffer);
    if (count < 0) {
      if (errno == EINTR) continue;
      return errno_error("read", path);
    }
    if (count == 0) break;
    text.append(buffer, static_cast<std::size_t>(count));
  }
  return text;
}

bool is_manifest_name(const fs::path& path) {
  const std::string name = path.filename().string();
  if (name.empty() || name.front() == '.') return false;
  const std::string extension = path.extension().string();
  return extension == ".yaml" || extension == ".yml";
}

// Reads a decimal number at the start of `text`; returns the number of characters used.
std::size_t read_number(std::string_view text, std::uint64_t& number) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc()) return 0;
  return static_cast<std::size_t>(end - text.data());
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Result<std::uint64_t> parse_size(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return make_error("invalid size \"{}\": {} (expected e.g. 512, 16KiB, 32MiB, 1GB)", text, why);
  };
  std::uint64_t number = 0;
  const std::size_t digits = read_number(text, number);
  if (digits == 0) {
    if (text.empty() || !is_digit(text.front())) return bad("expected a number");
    return bad("too large");
  }
  std::string_view rest = text.substr(digits);
  if (rest.starts_with(' ')) rest.remove_prefix(1);
  const std::string unit = lowercase(rest);
  static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {{"", 1},
                                                                          {"b", 1},
                                                                          {"kb", 1'000},
                                                                          {"mb", 1'000'000},
                                                                          {"gb", 1'000'000'000},
                                                                          {"tb", 1'000'000'000'000},
                                                                          {"kib", 1ull << 10},
                                                                          {"mib", 1ull << 20},
                                                                          {"gib", 1ull << 30},
                                                                          {"tib", 1ull << 40}};
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    if (number > std::numeric_limits<std::uint64_t>::max() / scale) return bad("too large");
    return number * scale;
  }
  return bad(fmt::format("unknown unit \"{}\"", rest));
}

Result<Binding> parse_binding_url(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return make_error("invalid binding \"{}\": {} (expected http|https://ADDRESS:PORT[/HOST])", url,
                      why);
  };
  Binding binding;
  const std::size_t separator = url.find("://");
  if (separator == std::string_view::npos) return bad("missing scheme");
  const std::string scheme = lowercase(url.substr(0, separator));
  if (scheme == "http") {
    binding.scheme = Scheme::kHttp;
  } else if (scheme == "https") {
    binding.scheme = Scheme::kHttps;
  } else {
    return bad("the scheme must be http or https");
  }
  const std::string_view rest = url.substr(separator + 3);
  if (rest.find('@') != std::string_view::npos) return bad("user information is not allowed");
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("a query or fragment is not allowed");
  }
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view host =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  std::string_view port_text;
  char canonical[INET6_ADDRSTRLEN] = {};
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6] address");
    const std::string address(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.starts_with(':')) return bad("a port is required");
    port_text = after.substr(1);
    in6_addr parsed{};
    if (::inet_pton(AF_INET6, address.c_str(), &parsed) != 1) {
      return bad(fmt::format("\"{}\" is not an IPv6 address", address));
    }
    ::inet_ntop(AF_INET6, &parsed, canonical, sizeof canonical);
    binding.address = canonical;
  } else {
    const std::size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) return bad("a port is required");
    const std::string address(authority.substr(0, colon));
    port_text = authority.substr(colon + 1);
    if (address.empty()) return bad("an address is required (\"*\" means all addresses)");
    if (address.find(':') != std::string::npos) {
      return bad("IPv6 addresses must be in brackets, e.g. [::1]");
    }
    if (address == "*") {
      binding.address = "*";
    } else {
      in_addr parsed{};
      if (::inet_pton(AF_INET, address.c_str(), &parsed) != 1) {
        return bad(fmt::format("\"{}\" is not \"*\", an IPv4 address or a bracketed IPv6 address",
                               address));
      }
      ::inet_ntop(AF_INET, &parsed, canonical, sizeof canonical);
      binding.address = canonical;
    }
  }
  std::uint64_t port = 0;
  if (port_text.empty()) return bad("a port is required");
  if (!all_digits(port_text) || port_text.size() > 5 ||
      read_number(port_text, port) != port_text.size() ||
      !kPort.contains(static_cast<long long>(port))) {
    return bad("the port must be a number from 1 to 65535");
  }
  binding.port = static_cast<std::uint16_t>(port);

  if (!host.empty()) {
    if (host.find('/') != std::string_view::npos)
      return bad("a path after the host is not allowed");
    std::string lower = lowercase(host);
    if (!is_valid_host(lower)) {
      return bad(fmt::format("\"{}\" is not a host name (a DNS name or *.suffix)", host));
    }
    binding.host = std::move(lower);
  }
  return binding;
}

Result<std::vector<ManifestText>> read_manifests(const std::vector<std::string>& paths) {
  std::vector<ManifestText> manifests;
  auto add_file = [&](const std::string& path) -> Status {
    auto text = read_file(path);
    if (!text.ok()) return text.error();
    manifests.push_back(ManifestText{path, std::move(*text)});
    return ok_status();
  };
  for (const std::string& path : paths) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (error) return Error{fmt::format("cannot read: {}", error.message()), path, error.value()};
    if (!fs::is_directory(status)) {
      if (Status added = add_file(path); !added.ok()) return added.error();
      continue;
    }
    std::vector<std::string> files;
    fs::directory_iterator it(path, error);
    for (; !error && it != fs::directory_iterator(); it.increment(error)) {
      std::error_code type_error;
      if (is_manifest_name(it->path()) && it->is_regular_file(type_error)) {
        files.push_back(it->path().string());
      }
    }
    if (error) {
      return Error{fmt::format("cannot list directory: {}", error.message()), path, error.value()};
    }
    std::sort(files.begin(), files.end());
    for (const std::string& file : files) {
      if (Status added = add_file(file); !added.ok()) return added.error();
    }
  }
  return manifests;
}

Result<WebConfig> load_web_config(const std::vector<ManifestText>& manifests,
                                  const LoadOptions& options) {
  Problems problems(manifests);
  ConfigBuilder builder(options, problems);
  for (const ManifestText& manifest : manifests) builder.add_manifest(manifest);
  WebConfig& config = builder.config();
  check_references(config, builder.complete(), problems);
  if (!problems.empty()) return problems.to_error();

  for (auto& [name, site] : config.sites) {
    std::stable_sort(site.applications.begin(), site.applications.end(),
                     [](const Application& a, const Application& b) {
                       if (a.path.size() != b.path.size()) return a.path.size() > b.path.size();
                       return a.path < b.path;
                     });
  }
  return std::move(config);
}

Result<WebConfig> load_web_config_files(const std::vector<std::string>& paths,
                                        const LoadOptions& options) {
  auto manifests = read_manifests(paths);
  if (!manifests.ok()) return manifests.error();
  return load_web_config(*manifests, options);
}

Status validate_web_config(const WebConfig& config) {
  Problems problems;
  check_server(config.server, problems);
  for (const auto& [key, site] : config.sites) check_site(key, site, problems);
  for (const auto& [key, pool] : config.pools) check_pool(key, pool, problems);
  check_references(config, true, problems);
  if (!problems.empty()) return problems.to_error();
  return ok_status();
}

}  // namespace clusweb::config
