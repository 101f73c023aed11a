#pragma once

// The agent API's part for the shared web configuration (ARCHITECTURE.md, "Shared
// configuration"), under /v1/config:
//   GET  /v1/config                        revision, site and pool names, what each node serves
//   GET  /v1/config/web?revision=N         the sites and pools as of revision N (default: now)
//   GET  /v1/config/diff?from=A&to=B       what changed between two revisions (B: now)
//   GET  /v1/config/history?limit=N        the latest N revisions, each with its changes
//   POST /v1/config/delete                 {"sites": [...], "pools": [...], "dryRun": bool}
//   GET  /v1/config/key                    the wrapped data key record (secrets/data_key.h)
//   POST /v1/config/key                    {"record": "..."}: the cluster's first data key
//   POST /v1/config/import                 {"key": "..."|null, "web": {...}, "dryRun": bool}:
//                                          replaces the whole shared configuration
// and the shared configuration's share of POST /v1/apply (web_change). Older revisions are
// read from the store's history, so they reach back as far as its compaction allows.

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "base/api_server.h"
#include "config/shared_config.h"
#include "store/store.h"

namespace clusweb::agent {

ApiReply ok_reply(const nlohmann::json& body);
ApiReply error_reply(int status, std::string message);

class ConfigApi {
 public:
  explicit ConfigApi(Agent& agent) : agent_(agent) {}

  // A request whose target starts with /v1/config; `body` is the parsed body of a POST.
  boost::asio::awaitable<ApiReply> handle(const ApiRequest& request, const nlohmann::json& body);

  // What applying sites and pools ({"sites": [...], "pools": [...]}, the JSON form of
  // docs/configuration.md) does to the shared configuration: objects named like stored ones
  // replace them, the others are added; the whole must hold together.
  struct WebChange {
    std::vector<std::string> created, changed, unchanged;  // "site/NAME", "pool/NAME"
    std::optional<store::Put> write;                       // none when nothing changes
    store::Compare compare = store::Compare::absent("");
    std::string summary;
    nlohmann::json diff;  // config::diff_to_json's form
  };
  Result<WebChange> web_change(const nlohmann::json& web) const;

 private:
  // The shared configuration as the agent's view holds it (revision 0 and nothing when absent).
  Result<config::SharedConfig> stored() const;
  // As of `revision` (0 = now), read from the store; revision 0 and nothing when the key did
  // not exist then. The error of a compacted revision says so.
  boost::asio::awaitable<Result<config::SharedConfig>> stored_at(store::Revision revision);

  ApiReply status() const;
  boost::asio::awaitable<ApiReply> web(store::Revision revision);
  boost::asio::awaitable<ApiReply> diff(store::Revision from, store::Revision to);
  boost::asio::awaitable<ApiReply> history(std::size_t limit);
  boost::asio::awaitable<ApiReply> remove(const nlohmann::json& body);
  ApiReply key() const;
  // Every sealed value of `config` must be sealed with the cluster's data key: the one of
  // `record` when given, else the stored one.
  Status check_sealed_keys(const config::WebConfig& config,
                           const std::string* record = nullptr) const;
  boost::asio::awaitable<ApiReply> create_key(const nlohmann::json& body);
  boost::asio::awaitable<ApiReply> import(const nlohmann::json& body);
  // Writes the whole configuration `after` (replacing `before`) in one transaction with
  // `more`, guarded by `before`'s revision; records `what` in the event log.
  boost::asio::awaitable<ApiReply> write_config(const config::SharedConfig& before,
                                                const config::SharedConfig& after,
                                                std::vector<store::Compare> compare,
                                                std::vector<store::Operation> more,
                                                std::string what);

  Agent& agent_;
};

}  // namespace clusweb::agent
