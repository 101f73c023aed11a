#pragma once

// `clusweb agent` (one node of a cluster) and `clusweb up` (the one-node
// embedded default: agent, embedded store and web service in one command).
// They live in their own executable, `clusweb-agent`, which `clusweb` runs for
// them: only the agent needs the etcd client (gRPC and its libraries), and
// every other command starts faster without loading it.

#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace clusweb::cli {

// Registers both on `root`; `executable` is the `clusweb` binary (the agent
// starts `clusweb web` with it). `exit_code` receives the command's exit status.
void add_agent_commands(CLI::App& root, int& exit_code, const std::string& executable);

}  // namespace clusweb::cli
