#pragma once

// `clusweb agent` and `clusweb up`: wires the store, the liveness thread, the
// agent, its API, the resource types and the web service together and runs
// them until SIGTERM/SIGINT (then leaves gracefully: groups move elsewhere).

#include <chrono>
#include <string>
#include <vector>

namespace clusweb::agent {

struct AgentRunOptions {
  std::string cluster = "default";
  std::string node;  // empty = the host name
  // "etcd://host:port[,host:port...]" or "memory" (one node: the embedded
  // store, persisted in <state dir>/store.db).
  std::string store = "memory";
  std::string etcd_ca;
  std::string etcd_cert;
  std::string etcd_key;
  std::string etcd_user;
  std::string etcd_password_file;
  std::string run_dir = "/run/clusweb";
  std::string state_dir = "/var/lib/clusweb";
  std::chrono::seconds ttl{2};
  // How long the agent waits for the store before it starts its web service from the node's
  // cache (the shared configuration and the clustered sites as last seen). Never without
  // knowing which sites are clustered: a node that has not yet reached the store waits.
  std::chrono::milliseconds store_wait{5000};
  // Manifests of the web service this agent runs (`clusweb web -f` each);
  // empty = the agent does not run the web service (it runs elsewhere).
  std::vector<std::string> web_config;
  // `clusweb up`'s manifests, applied at start: groups to the store, sites and pools as the
  // whole shared configuration (the same path a cluster's `clusweb apply` takes), a WebServer
  // document to the node's web service.
  std::vector<std::string> up_manifests;
  std::string executable;  // this binary, for `clusweb web`
  std::string log_level = "info";
};

// Returns the process exit status.
int run_agent(const AgentRunOptions& options);

}  // namespace clusweb::agent
