#pragma once

#include <string>
#include <vector>

#include "web/master.h"

namespace clusweb::web {

// Runs `clusweb web` in the foreground until SIGTERM/SIGINT: the master with
// its admin API, pools and front end. SIGHUP reloads the configuration,
// SIGUSR1 reopens access logs. Returns the process exit status.
int run_web_service(const WebServiceOptions& options);

// `clusweb web --check`: loads and validates, prints every problem with its
// file:line, returns 0 when the configuration is valid.
int check_web_config(const std::vector<std::string>& paths);

}  // namespace clusweb::web
