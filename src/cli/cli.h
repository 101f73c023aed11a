#pragma once

namespace clusweb::cli {

// The whole `clusweb` command line: parses argv, runs the chosen command and
// returns the process exit status.
int run(int argc, char** argv);

}  // namespace clusweb::cli
