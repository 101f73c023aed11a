#include "config/web_config_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/manifest_loader.h"

namespace clusweb::config {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;  // keeps the fields in a readable order
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Encoding.

OrderedJson encode_where(const SourceLocation& where) {
  return OrderedJson{{"file", where.file}, {"line", where.line}};
}

OrderedJson encode_server(const ServerSettings& server) {
  const Limits& limits = server.limits;
  return OrderedJson{
      {"user", server.user},
      {"threads", server.threads},
      {"limits", OrderedJson{{"maxHeaderBytes", limits.max_header_bytes},
                             {"maxHeaders", limits.max_headers},
                             {"maxBodyBytes", limits.max_body_bytes},
                             {"headerTimeout", format_duration(limits.header_timeout)},
                             {"idleTimeout", format_duration(limits.idle_timeout)},
                             {"maxConnections", limits.max_connections}}},
      {"where", encode_where(server.where)},
  };
}

OrderedJson encode_site(const Site& site) {
  OrderedJson bindings = OrderedJson::array();
  for (const Binding& binding : site.bindings) {
    OrderedJson encoded{
        {"url", binding.url()}, {"certificate", binding.certificate}, {"key", binding.key}};
    // Inline TLS material only where there is some (the shared configuration's).
    if (!binding.certificate_pem.empty()) encoded["certificatePem"] = binding.certificate_pem;
    if (!binding.key_sealed.empty()) encoded["keySealed"] = binding.key_sealed;
    encoded["where"] = encode_where(binding.where);
    bindings.push_back(std::move(encoded));
  }
  OrderedJson applications = OrderedJson::array();
  for (const Application& application : site.applications) {
    applications.push_back(OrderedJson{{"path", application.path},
                                       {"pool", application.pool},
                                       {"where", encode_where(application.where)}});
  }
  OrderedJson mime_types = OrderedJson::object();
  for (const auto& [extension, type] : site.mime_types) mime_types[extension] = type;
  return OrderedJson{
      {"name", site.name},
      {"physicalPath", site.root},
      {"autoStart", site.auto_start},
      {"bindings", std::move(bindings)},
      {"defaultDocuments", site.default_documents},
      {"directoryBrowsing", site.directory_browsing},
      {"accessLog", site.access_log},
      {"mimeTypes", std::move(mime_types)},
      {"applications", std::move(applications)},
      {"where", encode_where(site.where)},
  };
}

OrderedJson encode_pool(const ApplicationPool& pool) {
  OrderedJson environment = OrderedJson::object();
  for (const auto& [name, value] : pool.environment) environment[name] = value;
  OrderedJson encoded{
      {"name", pool.name},
      {"command", pool.command},
      {"workingDirectory", pool.working_directory},
      {"environment", std::move(environment)},
      {"user", pool.user},
      {"processes", pool.processes},
      {"socket", pool.socket == SocketMode::kPort ? "port" : "activation"},
      {"autoStart", pool.auto_start},
      {"startupTimeLimit", format_duration(pool.startup_time_limit)},
      {"shutdownTimeLimit", format_duration(pool.shutdown_time_limit)},
      {"rapidFailProtection", OrderedJson{{"enabled", pool.rapid_fail_protection},
                                          {"maxCrashes", pool.rapid_fail_max_crashes},
                                          {"interval", format_duration(pool.rapid_fail_interval)}}},
      {"queueLength", pool.queue_length},
  };
  // Secret variables only where there are some: files, or sealed in the shared configuration.
  if (!pool.secret_environment.empty()) {
    OrderedJson files = OrderedJson::object();
    for (const auto& [name, path] : pool.secret_environment) files[name] = path;
    encoded["secretEnvironment"] = std::move(files);
  }
  if (!pool.secret_environment_sealed.empty()) {
    OrderedJson sealed = OrderedJson::object();
    for (const auto& [name, value] : pool.secret_environment_sealed) sealed[name] = value;
    encoded["secretEnvironmentSealed"] = std::move(sealed);
  }
  encoded["where"] = encode_where(pool.where);
  return encoded;
}

// ---------------------------------------------------------------------------------------------
// Decoding. Each read_* checks the JSON type, records a problem on mismatch and leaves the
// target unchanged, so one pass reports every problem.

std::string join(std::string_view path, std::string_view name) {
  if (path.empty()) return std::string(name);
  return fmt::format("{}.{}", path, name);
}

std::string indexed(std::string_view path, std::size_t index) {
  return fmt::format("{}[{}]", path, index);
}

class JsonReader {
 public:
  void fail(std::string_view path, std::string_view what) {
    if (path.empty()) {
      problems_.push_back(fmt::format("document: {}", what));
    } else {
      problems_.push_back(fmt::format("field \"{}\": {}", path, what));
    }
  }

  bool failed() const { return !problems_.empty(); }

  Error error() const {
    std::string message = "invalid configuration JSON:";
    for (const std::string& problem : problems_) message += "\n" + problem;
    return Error{std::move(message), "", 0};
  }

  // Calls read(name, value, path) for each member of the object `value`; unknown members
  // are problems.
  template <class Read>
  void read_object(const Json& value, std::string_view path,
                   std::initializer_list<std::string_view> known, Read&& read) {
    if (!value.is_object()) {
      fail(path, "must be an object");
      return;
    }
    for (const auto& [name, member] : value.items()) {
      const std::string member_path = join(path, name);
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        fail(member_path, "unknown field");
        continue;
      }
      read(std::string_view(name), member, member_path);
    }
  }

  // Calls read(item, path) for each element of the array `value`.
  template <class Read>
  void read_array(const Json& value, std::string_view path, Read&& read) {
    if (!value.is_array()) {
      fail(path, "must be an array");
      return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) read(value[i], indexed(path, i));
  }

  void read_string(const Json& value, std::string_view path, std::string& out) {
    if (!value.is_string()) {
      fail(path, "must be a string");
      return;
    }
    out = value.get<std::string>();
  }

  void read_bool(const Json& value, std::string_view path, bool& out) {
    if (!value.is_boolean()) {
      fail(path, "must be true or false");
      return;
    }
    out = value.get<bool>();
  }

  template <class Int>
  void read_int(const Json& value, std::string_view path, Int& out) {
    static_assert(std::is_integral_v<Int>);
    bool fits = false;
    if (value.is_number_unsigned()) {
      const auto number = value.get<std::uint64_t>();
      fits = number <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max());
      if (fits) out = static_cast<Int>(number);
    } else if (value.is_number_integer()) {
      const auto number = value.get<std::int64_t>();
      if constexpr (std::is_signed_v<Int>) {
        fits =
            number >= std::numeric_limits<Int>::min() && number <= std::numeric_limits<Int>::max();
      } else {
        fits = number >= 0 && static_cast<std::uint64_t>(number) <= std::numeric_limits<Int>::max();
      }
      if (fits) out = static_cast<Int>(number);
    } else {
      fail(path, "must be an integer");
      return;
    }
    if (!fits) fail(path, "is out of range");
  }

  void read_duration(const Json& value, std::string_view path, milliseconds& out) {
    if (!value.is_string()) {
      fail(path, "must be a duration string such as \"90s\"");
      return;
    }
    auto duration = parse_duration(value.get<std::string>());
    if (!duration.ok()) {
      fail(path, duration.error().message);
      return;
    }
    out = *duration;
  }

  void read_string_list(const Json& value, std::string_view path, std::vector<std::string>& out) {
    std::vector<std::string> list;
    const std::size_t before = problems_.size();
    read_array(value, path, [&](const Json& item, const std::string& item_path) {
      read_string(item, item_path, list.emplace_back());
    });
    if (problems_.size() == before) out = std::move(list);
  }

  void read_string_map(const Json& value, std::string_view path,
                       std::map<std::string, std::string>& out) {
    if (!value.is_object()) {
      fail(path, "must be an object of strings");
      return;
    }
    std::map<std::string, std::string> map;
    for (const auto& [name, member] : value.items()) {
      read_string(member, join(path, name), map[name]);
    }
    out = std::move(map);
  }

  void read_where(const Json& value, std::string_view path, SourceLocation& out) {
    read_object(value, path, {"file", "line"},
                [&](std::string_view name, const Json& member, const std::string& member_path) {
                  if (name == "file") {
                    read_string(member, member_path, out.file);
                  } else {
                    read_int(member, member_path, out.line);
                    if (out.line < 0) fail(member_path, "must not be negative");
                  }
                });
  }

 private:
  std::vector<std::string> problems_;
};

void decode_server(JsonReader& reader, const Json& value, std::string_view path,
                   ServerSettings& server) {
  reader.read_object(
      value, path, {"user", "threads", "limits", "where"},
      [&](std::string_view name, const Json& member, const std::string& member_path) {
        if (name == "user") {
          reader.read_string(member, member_path, server.user);
        } else if (name == "threads") {
          reader.read_int(member, member_path, server.threads);
        } else if (name == "where") {
          reader.read_where(member, member_path, server.where);
        } else {
          Limits& limits = server.limits;
          reader.read_object(
              member, member_path,
              {"maxHeaderBytes", "maxHeaders", "maxBodyBytes", "headerTimeout", "idleTimeout",
               "maxConnections"},
              [&](std::string_view setting, const Json& field, const std::string& field_path) {
                if (setting == "maxHeaderBytes") {
                  reader.read_int(field, field_path, limits.max_header_bytes);
                } else if (setting == "maxHeaders") {
                  reader.read_int(field, field_path, limits.max_headers);
                } else if (setting == "maxBodyBytes") {
                  reader.read_int(field, field_path, limits.max_body_bytes);
                } else if (setting == "headerTimeout") {
                  reader.read_duration(field, field_path, limits.header_timeout);
                } else if (setting == "idleTimeout") {
                  reader.read_duration(field, field_path, limits.idle_timeout);
                } else {
                  reader.read_int(field, field_path, limits.max_connections);
                }
              });
        }
      });
}

void decode_binding(JsonReader& reader, const Json& value, std::string_view path,
                    Binding& binding) {
  reader.read_object(
      value, path, {"url", "certificate", "key", "certificatePem", "keySealed", "where"},
      [&](std::string_view name, const Json& member, const std::string& member_path) {
        if (name == "url") {
          std::string url;
          reader.read_string(member, member_path, url);
          auto parsed = parse_binding_url(url);
          if (!parsed.ok()) {
            reader.fail(member_path, parsed.error().message);
            return;
          }
          binding.scheme = parsed->scheme;
          binding.address = std::move(parsed->address);
          binding.port = parsed->port;
          binding.host = std::move(parsed->host);
        } else if (name == "certificate") {
          reader.read_string(member, member_path, binding.certificate);
        } else if (name == "key") {
          reader.read_string(member, member_path, binding.key);
        } else if (name == "certificatePem") {
          reader.read_string(member, member_path, binding.certificate_pem);
        } else if (name == "keySealed") {
          reader.read_string(member, member_path, binding.key_sealed);
        } else {
          reader.read_where(member, member_path, binding.where);
        }
      });
}

void decode_site(JsonReader& reader, const Json& value, std::string_view path, Site& site) {
  reader.read_object(
      value, path,
      {"name", "physicalPath", "autoStart", "bindings", "defaultDocuments", "directoryBrowsing",
       "accessLog", "mimeTypes", "applications", "where"},
      [&](std::string_view name, const Json& member, const std::string& member_path) {
        if (name == "name") {
          reader.read_string(member, member_path, site.name);
        } else if (name == "physicalPath") {
          reader.read_string(member, member_path, site.root);
        } else if (name == "autoStart") {
          reader.read_bool(member, member_path, site.auto_start);
        } else if (name == "bindings") {
          reader.read_array(member, member_path, [&](const Json& item, const std::string& at) {
            decode_binding(reader, item, at, site.bindings.emplace_back());
          });
        } else if (name == "defaultDocuments") {
          reader.read_string_list(member, member_path, site.default_documents);
        } else if (name == "directoryBrowsing") {
          reader.read_bool(member, member_path, site.directory_browsing);
        } else if (name == "accessLog") {
          reader.read_string(member, member_path, site.access_log);
        } else if (name == "mimeTypes") {
          reader.read_string_map(member, member_path, site.mime_types);
        } else if (name == "applications") {
          reader.read_array(member, member_path, [&](const Json& item, const std::string& at) {
            Application& application = site.applications.emplace_back();
            reader.read_object(item, at, {"path", "pool", "where"},
                               [&](std::string_view field, const Json& field_value,
                                   const std::string& field_path) {
                                 if (field == "path") {
                                   reader.read_string(field_value, field_path, application.path);
                                 } else if (field == "pool") {
                                   reader.read_string(field_value, field_path, application.pool);
                                 } else {
                                   reader.read_where(field_value, field_path, application.where);
                                 }
                               });
          });
        } else {
          reader.read_where(member, member_path, site.where);
        }
      });
}

void decode_pool(JsonReader& reader, const Json& value, std::string_view path,
                 ApplicationPool& pool) {
  reader.read_object(
      value, path,
      {"name", "command", "workingDirectory", "environment", "secretEnvironment",
       "secretEnvironmentSealed", "user", "processes", "socket", "autoStart", "startupTimeLimit",
       "shutdownTimeLimit", "rapidFailProtection", "queueLength", "where"},
      [&](std::string_view name, const Json& member, const std::string& member_path) {
        if (name == "name") {
          reader.read_string(member, member_path, pool.name);
        } else if (name == "command") {
          reader.read_string_list(member, member_path, pool.command);
        } else if (name == "workingDirectory") {
          reader.read_string(member, member_path, pool.working_directory);
        } else if (name == "environment") {
          reader.read_string_map(member, member_path, pool.environment);
        } else if (name == "secretEnvironment") {
          reader.read_string_map(member, member_path, pool.secret_environment);
        } else if (name == "secretEnvironmentSealed") {
          reader.read_string_map(member, member_path, pool.secret_environment_sealed);
        } else if (name == "user") {
          reader.read_string(member, member_path, pool.user);
        } else if (name == "processes") {
          reader.read_int(member, member_path, pool.processes);
        } else if (name == "socket") {
          std::string socket;
          reader.read_string(member, member_path, socket);
          if (socket == "activation") {
            pool.socket = SocketMode::kActivation;
          } else if (socket == "port") {
            pool.socket = SocketMode::kPort;
          } else if (member.is_string()) {
            reader.fail(member_path, "must be \"activation\" or \"port\"");
          }
        } else if (name == "autoStart") {
          reader.read_bool(member, member_path, pool.auto_start);
        } else if (name == "startupTimeLimit") {
          reader.read_duration(member, member_path, pool.startup_time_limit);
        } else if (name == "shutdownTimeLimit") {
          reader.read_duration(member, member_path, pool.shutdown_time_limit);
        } else if (name == "rapidFailProtection") {
          reader.read_object(
              member, member_path, {"enabled", "maxCrashes", "interval"},
              [&](std::string_view setting, const Json& field, const std::string& field_path) {
                if (setting == "enabled") {
                  reader.read_bool(field, field_path, pool.rapid_fail_protection);
                } else if (setting == "maxCrashes") {
                  reader.read_int(field, field_path, pool.rapid_fail_max_crashes);
                } else {
                  reader.read_duration(field, field_path, pool.rapid_fail_interval);
                }
              });
        } else if (name == "queueLength") {
          reader.read_int(member, member_path, pool.queue_length);
        } else {
          reader.read_where(member, member_path, pool.where);
        }
      });
}

}  // namespace

std::string to_json(const WebConfig& config) {
  OrderedJson sites = OrderedJson::array();
  for (const auto& [name, site] : config.sites) sites.push_back(encode_site(site));
  OrderedJson pools = OrderedJson::array();
  for (const auto& [name, pool] : config.pools) pools.push_back(encode_pool(pool));
  const OrderedJson document{
      {"server", encode_server(config.server)},
      {"sites", std::move(sites)},
      {"pools", std::move(pools)},
  };
  // Replacing invalid UTF-8 keeps this function from throwing; manifests are UTF-8 text.
  return document.dump(2, ' ', false, OrderedJson::error_handler_t::replace);
}

Result<WebConfig> web_config_from_json(std::string_view text) {
  Json document;
  try {
    document = Json::parse(text);
  } catch (const Json::exception& e) {
    return make_error("invalid configuration JSON: {}", e.what());
  }

  WebConfig config;
  JsonReader reader;
  reader.read_object(
      document, "", {"server", "sites", "pools"},
      [&](std::string_view name, const Json& member, const std::string& path) {
        if (name == "server") {
          decode_server(reader, member, path, config.server);
        } else if (name == "sites") {
          reader.read_array(member, path, [&](const Json& item, const std::string& at) {
            Site site;
            decode_site(reader, item, at, site);
            const std::string key = site.name;
            if (!config.sites.emplace(key, std::move(site)).second) {
              reader.fail(join(at, "name"), fmt::format("duplicate site name \"{}\"", key));
            }
          });
        } else {
          reader.read_array(member, path, [&](const Json& item, const std::string& at) {
            ApplicationPool pool;
            decode_pool(reader, item, at, pool);
            const std::string key = pool.name;
            if (!config.pools.emplace(key, std::move(pool)).second) {
              reader.fail(join(at, "name"), fmt::format("duplicate pool name \"{}\"", key));
            }
          });
        }
      });
  if (reader.failed()) return reader.error();
  if (Status valid = validate_web_config(config); !valid.ok()) return valid.error();
  return config;
}

}  // namespace clusweb::config
