#pragma once

// Text forms of the shared configuration's replies (agent/config_api.h) for
// `clusweb config get|diff|history|delete` and `clusweb apply --dry-run`. Each takes the JSON
// text of a reply and returns whole lines; an Error when it is not the object expected.

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cli/command_support.h"

namespace clusweb::cli {

// A diff ([{"kind", "name", "change", "fields": [{"path", "before", "after"}]}]) as lines:
//   site/shop: changed
//       physicalPath: "/srv/shop" -> "/srv/shop2"
//   site/blog: created
//       + physicalPath: "/srv/blog"
// "no change" for an empty or absent one (nullptr).
std::string format_config_changes(const Json* changes);

// GET /v1/config/diff -> "from revision A to B" and the changes.
Result<std::string> format_config_diff(std::string_view json);

// GET /v1/config/history -> one line per revision (REVISION CHANGES), newest first, and where
// the history ends.
Result<std::string> format_config_history(std::string_view json);

// GET /v1/config/web -> the sites and pools as YAML manifests (kind: Site, kind:
// ApplicationPool documents), which `clusweb apply -f` takes back; each document names the
// manifest it came from in a comment.
Result<std::string> format_config_manifests(std::string_view json);

// POST /v1/config/delete and /v1/config/import -> the revision written (or "dry run") and the
// changes.
Result<std::string> format_config_write(std::string_view json, bool dry_run);

// "site/NAME" and "pool/NAME" arguments -> {"sites": [...], "pools": [...]}.
Result<Json> config_objects(const std::vector<std::string>& arguments);

}  // namespace clusweb::cli
