#include "config/shared_config.h"

#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "config/manifest_loader.h"
#include "config/web_config_json.h"

namespace clusweb::config {
namespace {

using nlohmann::json;

// "sites.yaml:12 (shared configuration revision 7)", or the revision alone.
std::string shared_location(const SourceLocation& where, std::int64_t revision) {
  const std::string origin = where.file.empty() ? std::string() : where.describe() + " ";
  return fmt::format("{}(shared configuration revision {})", origin, revision);
}

// The loader's checks, said of this node (the object was checked where it was applied).
std::optional<std::string> missing_directory(const std::string& path) {
  auto problem = directory_problem(path);
  if (problem) *problem += " on this node";
  return problem;
}

std::optional<std::string> missing_file(const std::string& path, int access_mode) {
  auto problem = file_problem(path, access_mode);
  if (problem) *problem += " on this node";
  return problem;
}

// What a shared object needs on this node's filesystem, as "field: problem".
std::vector<std::string> filesystem_problems(const Site& site) {
  std::vector<std::string> problems;
  if (auto problem = missing_directory(site.root)) problems.push_back("physicalPath: " + *problem);
  for (const Binding& binding : site.bindings) {
    if (binding.scheme != Scheme::kHttps) continue;
    if (binding.inline_material()) {
      // Written to files by the agent before the web service reads the cache.
      problems.push_back(fmt::format(
          "binding {}: inline TLS material that this node's agent has not written to files",
          binding.url()));
      continue;
    }
    if (auto problem = missing_file(binding.certificate, R_OK)) {
      problems.push_back(fmt::format("binding {}: certificate: {}", binding.url(), *problem));
    }
    if (auto problem = missing_file(binding.key, R_OK)) {
      problems.push_back(fmt::format("binding {}: key: {}", binding.url(), *problem));
    }
  }
  return problems;
}

std::vector<std::string> filesystem_problems(const ApplicationPool& pool) {
  std::vector<std::string> problems;
  // A bare program name is looked up in PATH when the worker starts.
  if (!pool.command.empty() && pool.command.front().find('/') != std::string::npos) {
    if (auto problem = missing_file(pool.command.front(), X_OK)) {
      problems.push_back("command: " + *problem);
    }
  }
  if (auto problem = missing_directory(pool.working_directory)) {
    problems.push_back("workingDirectory: " + *problem);
  }
  for (const auto& [name, path] : pool.secret_environment) {
    if (auto problem = missing_file(path, R_OK)) {
      problems.push_back(fmt::format("secretEnvironment.{}: {}", name, *problem));
    }
  }
  if (!pool.secret_environment_sealed.empty()) {
    problems.push_back("sealed secrets that this node's agent has not written to files");
  }
  return problems;
}

}  // namespace

std::string tls_key_context(const std::string& site, const Binding& binding) {
  return fmt::format("clusweb tls key: site {} binding {}", site, binding.url());
}

std::string pool_secret_context(const std::string& pool, const std::string& variable) {
  return fmt::format("clusweb pool secret: pool {} variable {}", pool, variable);
}

std::string encode_shared_config(const SharedConfig& shared) {
  json payload = json::parse(to_json(shared.config));
  payload.erase("server");
  payload["revision"] = shared.revision;
  return payload.dump() + "\n";
}

Result<SharedConfig> decode_shared_config(std::string_view text, std::string_view source) {
  json payload = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_object()) {
    return Error{"not a shared configuration (a JSON object)", std::string(source), 0};
  }
  SharedConfig shared;
  auto revision = payload.find("revision");
  if (revision == payload.end() || !revision->is_number_integer() ||
      revision->get<std::int64_t>() < 0) {
    return Error{"field \"revision\": must be a revision number", std::string(source), 0};
  }
  shared.revision = revision->get<std::int64_t>();
  payload.erase(revision);
  if (payload.contains("server")) {
    return Error{"field \"server\": not part of a shared configuration", std::string(source), 0};
  }
  Result<WebConfig> config = web_config_from_json(payload.dump());
  if (!config) {
    const std::string problem = config.error().describe();
    return Error{
        shared.revision == 0 ? problem : fmt::format("revision {}: {}", shared.revision, problem),
        std::string(source), 0};
  }
  shared.config.sites = std::move(config->sites);
  shared.config.pools = std::move(config->pools);
  return shared;
}

Result<std::optional<SharedConfig>> read_shared_config_cache(FileSystem& fs,
                                                             const std::filesystem::path& path) {
  Result<std::optional<std::string>> text = read_file_checked(fs, path);
  if (!text) return text.error();
  if (!*text) return std::optional<SharedConfig>();
  Result<SharedConfig> shared = decode_shared_config(**text, path.string());
  if (!shared) return shared.error();
  return std::optional<SharedConfig>(std::move(*shared));
}

Status write_shared_config_cache(FileSystem& fs, const std::filesystem::path& path,
                                 const SharedConfig& shared) {
  // Read-only for everyone but root: the agent writes it, the web service reads it.
  return write_file_atomically(fs, path, encode_shared_config(shared), 0644);
}

Result<WebConfig> merge_shared_config(WebConfig local, const SharedConfig& shared,
                                      bool check_filesystem) {
  std::vector<std::string> problems;
  auto add = [&](const std::string& kind, const auto& object, const std::string& message) {
    problems.push_back(fmt::format("{}: {} \"{}\": {}",
                                   shared_location(object.where, shared.revision), kind,
                                   object.name, message));
  };
  // Adds the shared objects of one kind to the node's own, unless the node defines the name.
  auto merge = [&](const std::string& kind, auto& mine, const auto& theirs) {
    for (const auto& [name, object] : theirs) {
      if (auto own = mine.find(name); own != mine.end()) {
        add(kind, object,
            fmt::format("also defined by this node, at {}", own->second.where.describe()));
        continue;
      }
      if (check_filesystem) {
        for (const std::string& problem : filesystem_problems(object)) add(kind, object, problem);
      }
      mine.emplace(name, object);
    }
  };
  merge("Site", local.sites, shared.config.sites);
  merge("ApplicationPool", local.pools, shared.config.pools);
  if (problems.empty()) {
    // Cross-references over the whole: listeners and hosts claimed twice, pools named by
    // applications.
    if (Status valid = validate_web_config(local); !valid) {
      return Error{fmt::format("with shared configuration revision {}: {}", shared.revision,
                               valid.error().message),
                   valid.error().where, 0};
    }
    return local;
  }
  std::string message;
  for (const std::string& problem : problems) {
    if (!message.empty()) message += '\n';
    message += problem;
  }
  return Error{std::move(message), problems.front().substr(0, problems.front().find(": ")), 0};
}

}  // namespace clusweb::config
