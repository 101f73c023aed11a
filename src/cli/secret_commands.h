#pragma once

// The cluster's data key and the commands that move secrets (ARCHITECTURE.md, "Shared
// configuration"): `clusweb config init-key|join-key|export|import`, and the sealing of TLS
// private keys when `clusweb apply` sends sites to the shared configuration. Passwords are read
// from files and never leave this process: the agent sees only the wrapped key record and
// sealed values.

#include <filesystem>
#include <iosfwd>
#include <string>

#include "base/result.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "config/web_config.h"
#include "secrets/data_key.h"

namespace clusweb::cli {

// This node's key file under a state folder.
std::filesystem::path data_key_path(const std::filesystem::path& state_dir);

// Every https binding of `config` gets its certificate chain inline (PEM) and its private key
// sealed with the node's data key (`key_file`), and every pool's secret variables their values
// sealed, in place of the paths, which mean nothing on other nodes. An Error naming the object
// when a file cannot be read, and one that says how to get the key when the node has none;
// nothing is changed then.
Status seal_secrets(config::WebConfig& config, const std::filesystem::path& key_file);

struct KeyCommand {
  std::filesystem::path password_file;
  std::filesystem::path state_dir;
  secrets::KdfLimits limits = secrets::kModerate;  // init-key
  std::filesystem::path file;                      // export: output ("" = stdout); import: input
  bool dry_run = false;                            // import
  OutputFormat output = OutputFormat::kTable;
};

// Creates the cluster's data key, stores it wrapped with the password, keeps it on this node.
int init_key(const KeyCommand& command, AdminClient& client, std::ostream& out, std::ostream& err);
// Unwraps the cluster's data key with the password and keeps it on this node.
int join_key(const KeyCommand& command, AdminClient& client, std::ostream& out, std::ostream& err);
// The whole shared configuration with the wrapped key (secrets stay sealed), after checking
// the password, to `command.file` (mode 0600) or `out`.
int export_config(const KeyCommand& command, AdminClient& client, std::ostream& out,
                  std::ostream& err);
// Replaces the shared configuration with an export's, with its data key (re-wrapped for this
// cluster's name); a wrong password or a cluster with another data key changes nothing.
int import_config(const KeyCommand& command, AdminClient& client, std::ostream& out,
                  std::ostream& err);

}  // namespace clusweb::cli
