#pragma once

namespace clusweb::web {

// The unprivileged front end process: receives configurations, listening
// sockets and log files from the web master over `control_fd` and serves all
// HTTP. Returns the process exit status. It never opens a listening socket
// or a log file itself and holds no credentials.
int run_frontend(int control_fd);

}  // namespace clusweb::web
