#pragma once

// The shared web configuration as one node holds it (ARCHITECTURE.md, "Shared configuration"):
// the sites and pools every node serves, with the store revision they came from. The agent
// keeps it in a local read-only cache, written atomically (base/atomic_file.h: temporary file
// with a length and CRC-32 header, fsync, rename, directory fsync), and the web service merges
// it with the node's own manifests (`clusweb web --shared-config FILE`) at start and at every
// reload, so a node that cannot reach the store serves from its cache.
//
// The payload is JSON: {"revision": N, "sites": [...], "pools": [...]}, the sites and pools in
// the layout of config/web_config_json.h. Paths in it are absolute (manifests are resolved
// where they are applied); whether they exist is checked on each node when it merges.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/atomic_file.h"
#include "base/result.h"
#include "config/web_config.h"

namespace clusweb::config {

struct SharedConfig {
  std::int64_t revision = 0;  // the store revision of the configuration; 0 = none yet
  // Sites and pools only; `server` is the node's own (kind: WebServer in its manifests).
  WebConfig config;
};

std::string encode_shared_config(const SharedConfig& shared);

// The additional data a binding's private key is sealed with (secrets::DataKey::seal), so a
// sealed key opens only as the key of that binding of that site.
std::string tls_key_context(const std::string& site, const Binding& binding);
// The same for a pool's secret environment variable.
std::string pool_secret_context(const std::string& pool, const std::string& variable);
// Decodes encode_shared_config's text; `source` names it in errors. The sites and pools must
// hold the model's invariants on their own (names, ranges, absolute paths); references between
// them and the node's own objects are checked by merge_shared_config.
Result<SharedConfig> decode_shared_config(std::string_view text, std::string_view source);

// The cache file: std::nullopt when it does not exist; an Error naming the file when it is
// damaged (never taken as empty).
Result<std::optional<SharedConfig>> read_shared_config_cache(FileSystem& fs,
                                                             const std::filesystem::path& path);
Status write_shared_config_cache(FileSystem& fs, const std::filesystem::path& path,
                                 const SharedConfig& shared);

// The node's own configuration with the shared sites and pools added. Fails, naming every
// problem with its location, when a name is defined in both, when the result breaks a
// cross-reference (validate_web_config), or when a shared object's path is missing here
// (`check_filesystem`: content directories, certificates and keys, pool commands and working
// directories).
Result<WebConfig> merge_shared_config(WebConfig local, const SharedConfig& shared,
                                      bool check_filesystem = true);

}  // namespace clusweb::config
