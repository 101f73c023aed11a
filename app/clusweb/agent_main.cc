// `clusweb-agent`: the agent's executable, which `clusweb agent ...` and
// `clusweb up ...` run (cli/cli.h).

#include <CLI/CLI.hpp>
#include <filesystem>

#include "agent_commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "clusweb-agent: the cluster agent of clusweb (run through \"clusweb agent\" "
      "and \"clusweb up\")"};
  app.name("clusweb");  // as the user typed it: "clusweb agent ..."
  app.require_subcommand(1);
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string web = ec ? std::string("clusweb") : (self.parent_path() / "clusweb").string();
  int exit_code = 0;
  clusweb::cli::add_agent_commands(app, exit_code, web);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
