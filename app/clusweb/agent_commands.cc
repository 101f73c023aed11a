#include "agent_commands.h"

#include <CLI/CLI.hpp>
#include <memory>

#include "agent/agent_main.h"
#include "base/duration.h"
#include "base/log.h"

namespace clusweb::cli {

namespace {

// Options both commands share.
void add_common(CLI::App& command, agent::AgentRunOptions& options) {
  command.add_option("--run-dir", options.run_dir, "runtime folder (sockets)")
      ->envname("CLUSWEB_RUN_DIR")
      ->capture_default_str();
  command.add_option("--state-dir", options.state_dir, "state folder (embedded store, logs)")
      ->envname("CLUSWEB_STATE_DIR")
      ->capture_default_str();
  command.add_option("--node", options.node, "this node's name (default: the host name)")
      ->envname("CLUSWEB_NODE");
  command.add_option("--cluster", options.cluster, "the cluster's name (key prefix in the store)")
      ->capture_default_str();
  command.add_option("--log-level", options.log_level, "debug, info, warn, error")
      ->capture_default_str();
}

void check_ttl(const std::string& text, agent::AgentRunOptions& options) {
  auto parsed = parse_duration(text);
  if (!parsed.ok()) throw CLI::ValidationError("--ttl", parsed.error().describe());
  options.ttl = std::chrono::duration_cast<std::chrono::seconds>(*parsed);
  if (std::chrono::milliseconds(options.ttl) != *parsed) {
    throw CLI::ValidationError("--ttl", "must be whole seconds (etcd grants leases in seconds)");
  }
}

}  // namespace

void add_agent_commands(CLI::App& root, int& exit_code, const std::string& executable) {
  auto options = std::make_shared<agent::AgentRunOptions>();
  options->executable = executable;
  auto ttl = std::make_shared<std::string>("2s");

  auto* agent = root.add_subcommand(
      "agent", "run this node's cluster agent (membership, placement, resources)");
  add_common(*agent, *options);
  agent
      ->add_option("--store", options->store,
                   "etcd://HOST:PORT[,HOST:PORT...], or \"memory\" for a one-node cluster")
      ->envname("CLUSWEB_STORE")
      ->capture_default_str();
  agent->add_option("--etcd-cacert", options->etcd_ca, "CA certificate of etcd's TLS");
  agent->add_option("--etcd-cert", options->etcd_cert, "client certificate for etcd");
  agent->add_option("--etcd-key", options->etcd_key, "client key for etcd");
  agent->add_option("--etcd-user", options->etcd_user, "etcd user name");
  agent->add_option("--etcd-password-file", options->etcd_password_file,
                    "file holding the etcd user's password");
  agent->add_option("--ttl", *ttl, "lease TTL: how long a silent node keeps its groups")
      ->capture_default_str();
  agent->add_option("--web-config", options->web_config,
                    "run the web service with these manifests (repeatable)");
  auto store_wait = std::make_shared<std::string>("5s");
  agent
      ->add_option("--store-wait", *store_wait,
                   "how long to wait for the store before the web service starts from the "
                   "node's cache")
      ->capture_default_str();
  agent->callback([options, ttl, store_wait, &exit_code] {
    check_ttl(*ttl, *options);
    auto wait = parse_duration(*store_wait);
    if (!wait.ok()) throw CLI::ValidationError("--store-wait", wait.error().describe());
    options->store_wait = *wait;
    if (!set_log_level(options->log_level)) {
      throw CLI::ValidationError("--log-level", "unknown level " + options->log_level);
    }
    exit_code = agent::run_agent(*options);
  });

  auto up_files = std::make_shared<std::vector<std::string>>();
  auto* up = root.add_subcommand(
      "up",
      "run everything on this machine: embedded store, agent, and the web service with "
      "the groups of the manifests");
  add_common(*up, *options);
  up->add_option("-f,--file", *up_files,
                 "manifests: sites and pools for the web service, groups for the agent")
      ->required();
  up->add_option("--ttl", *ttl, "lease TTL")->capture_default_str();
  up->callback([options, ttl, up_files, &exit_code] {
    check_ttl(*ttl, *options);
    if (!set_log_level(options->log_level)) {
      throw CLI::ValidationError("--log-level", "unknown level " + options->log_level);
    }
    options->store = "memory";
    options->up_manifests = *up_files;
    exit_code = agent::run_agent(*options);
  });
}

}  // namespace clusweb::cli
