#pragma once

// JSON form of a WebConfig, for passing a validated configuration between processes and for
// the admin API. The round trip is lossless: web_config_from_json(to_json(c)) equals c in
// every field, source locations included. Field names are the camelCase names of the YAML
// manifests; durations are strings ("1h30m"), sizes are numbers of bytes:
//   {"server": {...}, "sites": [{"name": ..., "bindings": [{"url": ..., "where": ...}]}],
//    "pools": [{"name": ..., "command": [...], ...}]}
// docs/configuration.md describes the layout.

#include <string>
#include <string_view>

#include "base/result.h"
#include "config/web_config.h"

namespace clusweb::config {

std::string to_json(const WebConfig& config);

// Decodes the text of to_json. Rejects malformed JSON, unknown or mistyped fields and
// anything validate_web_config rejects; absent fields take the model's defaults.
Result<WebConfig> web_config_from_json(std::string_view text);

}  // namespace clusweb::config
