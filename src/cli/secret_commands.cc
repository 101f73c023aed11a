#include "cli/secret_commands.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/atomic_file.h"
#include "cli/cluster_commands.h"
#include "cli/config_commands.h"
#include "config/shared_config.h"

namespace clusweb::cli {
namespace {

constexpr std::string_view kExportFormat = "clusweb-config-export";

int receive_object(const Result<AdminResponse>& response, Json& body, std::ostream& err) {
  return cli::receive_object(response, kClusterAgent, body, err);
}

// The password of `file`, or false after reporting why not.
bool read_password(const std::filesystem::path& file, std::string& password, std::ostream& err) {
  Result<std::string> read = secrets::read_password_file(file);
  if (!read.ok()) {
    report(err, read.error().describe());
    return false;
  }
  password = std::move(*read);
  return true;
}

// What init-key and join-key print once the node keeps `key` in `file`.
void print_kept(const KeyCommand& command, const secrets::DataKey& key, std::string_view done,
                const std::filesystem::path& file, std::ostream& out) {
  if (command.output == OutputFormat::kJson) {
    out << pretty_json(Json{{"keyId", key.id()}, {"keyFile", file.string()}});
  } else {
    out << fmt::format("data key {} {} and kept in {}\n", key.id(), done, file.string());
  }
}

Result<std::string> cluster_name(AdminClient& client, std::ostream& err, int& code) {
  Json cluster;
  code = receive_object(client.get("/v1/cluster"), cluster, err);
  if (code != kExitOk) return make_error("no answer");
  return text_of(cluster, "cluster", "default");
}

Result<std::string> read_text_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return make_error("cannot read {}", path.string());
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

std::filesystem::path data_key_path(const std::filesystem::path& state_dir) {
  return state_dir / "data.key";
}

Status seal_secrets(config::WebConfig& config, const std::filesystem::path& key_file) {
  bool any = false;
  for (const auto& [name, site] : config.sites) {
    for (const config::Binding& binding : site.bindings) {
      any = any || binding.scheme == config::Scheme::kHttps;
    }
  }
  for (const auto& [name, pool] : config.pools) any = any || !pool.secret_environment.empty();
  if (!any) return {};
  Result<std::optional<secrets::DataKey>> key = secrets::read_key_file(os_file_system(), key_file);
  if (!key.ok()) return key.error();
  if (!key->has_value()) {
    return make_error(
        "https bindings' private keys and pools' secret variables travel sealed with the "
        "cluster's data key, and this node has none ({}): run \"clusweb config join-key "
        "--password-file FILE\" here first "
        "(\"clusweb config init-key\" once for a new cluster)",
        key_file.string());
  }
  config::WebConfig sealed = config;
  for (auto& [name, site] : sealed.sites) {
    for (config::Binding& binding : site.bindings) {
      if (binding.scheme != config::Scheme::kHttps) continue;
      Result<std::string> certificate = read_text_file(binding.certificate);
      if (!certificate.ok()) {
        return make_error("{}: site \"{}\" binding {}: certificate: {}", binding.where.describe(),
                          name, binding.url(), certificate.error().message);
      }
      Result<std::string> private_key = read_text_file(binding.key);
      if (!private_key.ok()) {
        return make_error("{}: site \"{}\" binding {}: key: {}", binding.where.describe(), name,
                          binding.url(), private_key.error().message);
      }
      binding.certificate_pem = std::move(*certificate);
      binding.key_sealed = (*key)->seal(*private_key, config::tls_key_context(name, binding));
      binding.certificate.clear();
      binding.key.clear();
    }
  }
  for (auto& [name, pool] : sealed.pools) {
    for (const auto& [variable, path] : pool.secret_environment) {
      Result<std::string> value = read_text_file(path);
      if (!value.ok()) {
        return make_error("{}: pool \"{}\": secretEnvironment.{}: {}", pool.where.describe(), name,
                          variable, value.error().message);
      }
      // As the web service reads such a file: without its last line break.
      if (value->ends_with('\n')) value->pop_back();
      if (value->ends_with('\r')) value->pop_back();
      pool.secret_environment_sealed[variable] =
          (*key)->seal(*value, config::pool_secret_context(name, variable));
    }
    pool.secret_environment.clear();
  }
  config = std::move(sealed);
  return {};
}

int init_key(const KeyCommand& command, AdminClient& client, std::ostream& out, std::ostream& err) {
  std::string password;
  if (!read_password(command.password_file, password, err)) return kExitUsage;
  int code = kExitOk;
  Result<std::string> cluster = cluster_name(client, err, code);
  if (!cluster.ok()) return code;
  secrets::DataKey key = secrets::DataKey::generate();
  Result<std::string> record = secrets::wrap(key, password, *cluster, command.limits);
  if (!record.ok()) {
    report(err, record.error().describe());
    return kExitUsage;
  }
  Json answer;
  code =
      receive_object(client.post("/v1/config/key", Json{{"record", *record}}.dump()), answer, err);
  if (code != kExitOk) return code;
  const std::filesystem::path file = data_key_path(command.state_dir);
  if (Status kept = secrets::write_key_file(os_file_system(), file, key); !kept.ok()) {
    report(err, fmt::format("the cluster's data key {} is stored, but this node cannot keep it: "
                            "{}; run \"clusweb config join-key\" once that is mended",
                            key.id(), kept.error().describe()));
    return kExitRefused;
  }
  print_kept(command, key, fmt::format("created for cluster \"{}\"", *cluster), file, out);
  return kExitOk;
}

int join_key(const KeyCommand& command, AdminClient& client, std::ostream& out, std::ostream& err) {
  std::string password;
  if (!read_password(command.password_file, password, err)) return kExitUsage;
  int code = kExitOk;
  Result<std::string> cluster = cluster_name(client, err, code);
  if (!cluster.ok()) return code;
  Json stored;
  code = receive_object(client.get("/v1/config/key"), stored, err);
  if (code != kExitOk) return code;
  Result<secrets::DataKey> key = secrets::unwrap(text_of(stored, "record", ""), password, *cluster);
  if (!key.ok()) {
    report(err, key.error().describe() + "; nothing was written");
    return kExitRefused;
  }
  const std::filesystem::path file = data_key_path(command.state_dir);
  if (Status kept = secrets::write_key_file(os_file_system(), file, *key); !kept.ok()) {
    report(err, kept.error().describe());
    return kExitRefused;
  }
  print_kept(command, *key, fmt::format("of cluster \"{}\" unwrapped", *cluster), file, out);
  return kExitOk;
}

int export_config(const KeyCommand& command, AdminClient& client, std::ostream& out,
                  std::ostream& err) {
  int code = kExitOk;
  Result<std::string> cluster = cluster_name(client, err, code);
  if (!cluster.ok()) return code;
  Json web;
  code = receive_object(client.get("/v1/config/web"), web, err);
  if (code != kExitOk) return code;
  Json exported{{"format", kExportFormat},
                {"version", 1},
                {"cluster", *cluster},
                {"revision", web.value("revision", 0)},
                {"key", nullptr}};
  Result<AdminResponse> key_answer = client.get("/v1/config/key");
  if (key_answer.ok() && key_answer->status == 200) {
    Json stored;
    if (int got = receive_object(key_answer, stored, err); got != kExitOk) return got;
    // Whoever exports must know the password the export will need.
    if (command.password_file.empty()) {
      report(err, "the cluster has a data key: give --password-file, which an import needs too");
      return kExitUsage;
    }
    std::string password;
    if (!read_password(command.password_file, password, err)) return kExitUsage;
    const std::string record = text_of(stored, "record", "");
    if (Result<secrets::DataKey> key = secrets::unwrap(record, password, *cluster); !key.ok()) {
      report(err, key.error().describe() + "; nothing was exported");
      return kExitRefused;
    }
    exported["key"] = record;
  } else if (!key_answer.ok() || key_answer->status != 404) {
    // 404: the cluster has no data key, and the export none. Anything else is a failure.
    return check_answer(key_answer, kClusterAgent, err);
  }
  web.erase("revision");
  exported["web"] = std::move(web);
  const std::string text = exported.dump(2) + "\n";
  if (command.file.empty()) {
    out << text;
    return kExitOk;
  }
  if (Status written = replace_file(os_file_system(), command.file, text, 0600); !written.ok()) {
    report(err, written.error().describe());
    return kExitRefused;
  }
  err << fmt::format("exported revision {} of cluster \"{}\" to {}\n", exported["revision"].dump(),
                     *cluster, command.file.string());
  return kExitOk;
}

int import_config(const KeyCommand& command, AdminClient& client, std::ostream& out,
                  std::ostream& err) {
  Result<std::string> text = read_text_file(command.file);
  if (!text.ok()) {
    report(err, text.error().describe());
    return kExitUsage;
  }
  Json exported = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!exported.is_object() || exported.value("format", "") != kExportFormat ||
      exported.value("version", 0) != 1 || !exported.contains("web")) {
    report(err, fmt::format("{} is not a clusweb configuration export (version 1)",
                            command.file.string()));
    return kExitUsage;
  }
  int code = kExitOk;
  Result<std::string> cluster = cluster_name(client, err, code);
  if (!cluster.ok()) return code;
  Json body{{"web", exported["web"]}, {"key", nullptr}, {"dryRun", command.dry_run}};
  std::optional<secrets::DataKey> key;
  if (exported["key"].is_string()) {
    std::string password;
    if (!read_password(command.password_file, password, err)) return kExitUsage;
    Result<secrets::DataKey> opened = secrets::unwrap(exported["key"].get<std::string>(), password,
                                                      exported.value("cluster", ""));
    if (!opened.ok()) {
      report(err, opened.error().describe() + "; nothing was imported");
      return kExitRefused;
    }
    // The record is bound to its cluster's name: wrapped again for this cluster.
    Result<std::string> record = secrets::wrap(*opened, password, *cluster, command.limits);
    if (!record.ok()) {
      report(err, record.error().describe());
      return kExitRefused;
    }
    body["key"] = *record;
    key = std::move(*opened);
  }
  Json answer;
  code = receive_object(client.post("/v1/config/import", body.dump()), answer, err);
  if (code != kExitOk) return code;
  if (key && !command.dry_run) {
    const std::filesystem::path file = data_key_path(command.state_dir);
    if (Status kept = secrets::write_key_file(os_file_system(), file, *key); !kept.ok()) {
      report(err, kept.error().describe());
      return kExitRefused;
    }
  }
  if (command.output == OutputFormat::kJson) {
    out << pretty_json(answer);
    return kExitOk;
  }
  return print_text(format_config_write(answer.dump(), command.dry_run), out, err);
}

}  // namespace clusweb::cli
