#pragma once

// Brings the cluster's shared web configuration to this node (ARCHITECTURE.md, "Shared
// configuration"): follows config/web in the store, writes each revision to the node's
// read-only cache (config/shared_config.h, atomically), tells the web service to reload, and
// publishes what the node serves under config-status/<node>. The web service reads the cache
// itself at start, so a node that cannot reach the store serves what its cache holds.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stop_token>
#include <string>

#include "config/shared_config.h"
#include "store/store.h"

namespace clusweb::agent {

struct ConfigFollowerOptions {
  std::string node;
  std::string config_key;  // StoreKeys::config_web()
  std::string status_key;  // StoreKeys::config_status(node)
  std::filesystem::path cache;
  std::string web_socket;  // the web service's admin socket; "" = no web service here
  // This node's copy of the cluster's data key (written by `clusweb config join-key`), and
  // the root-only folder where the shared configuration's secrets are written for the web
  // service (TLS chains and keys, pools' secret variables).
  std::filesystem::path data_key_file;
  std::filesystem::path secrets_dir;
  // Pause after a store or web service failure, doubling up to the maximum.
  std::chrono::milliseconds retry{200};
  std::chrono::milliseconds max_retry{5000};
};

// What config-status/<node> holds (JSON: {"node", "revision", "latest", "problem"}).
struct NodeConfigStatus {
  std::string node;
  std::int64_t revision = 0;  // served by the web service; 0 = none
  std::int64_t latest = 0;    // the newest revision this node has seen in the store
  std::string problem;        // why `latest` is not served; "" when it is
};
std::string encode(const NodeConfigStatus& status);
// nullopt for a value that is not one.
std::optional<NodeConfigStatus> decode_node_config_status(std::string_view text);

class ConfigFollower {
 public:
  ConfigFollower(boost::asio::any_io_executor executor, store::Store& store,
                 ConfigFollowerOptions options);

  // Runs until `stop`: reads config/web, then watches it. Store failures are retried; the
  // cache and the web service keep what they have meanwhile.
  boost::asio::awaitable<void> run(std::stop_token stop);

 private:
  // Writes revision `revision` (value `value`) to the cache, reloads the web service and
  // publishes the outcome.
  boost::asio::awaitable<void> bring(std::int64_t revision, const std::string& value,
                                     const std::stop_token& stop);
  boost::asio::awaitable<void> publish(NodeConfigStatus status);
  // Writes the inline TLS material of `shared` (certificate PEM, sealed keys opened with the
  // node's data key) and the pools' sealed variables to files under secrets_dir and puts
  // their paths in the bindings and pools, so that the cache and the web service see files
  // only; removes the files nothing uses any more.
  Status write_secret_files(config::SharedConfig& shared) const;

  boost::asio::any_io_executor executor_;
  store::Store& store_;
  ConfigFollowerOptions options_;
  std::string published_;  // the last status written
  // Whether the last revision brought is served; if not, when it is tried again.
  bool settled_ = true;
  std::chrono::milliseconds unsettled_retry_{2'000};
};

}  // namespace clusweb::agent
