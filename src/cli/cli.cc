#include "cli/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "cli/cluster_commands.h"
#include "cli/web_admin_commands.h"
#include "web/frontend.h"
#include "web/web_service.h"

namespace clusweb::cli {

namespace {

std::string self_executable(const char* argv0) {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(argv0) : path.string();
}

// `clusweb agent ...` and `clusweb up ...` are run by `clusweb-agent`, next to this binary.
int run_agent_executable(int argc, char** argv) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string agent =
      ec ? std::string("clusweb-agent") : (self.parent_path() / "clusweb-agent").string();
  std::vector<char*> args{const_cast<char*>(agent.c_str())};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  ::execv(agent.c_str(), args.data());
  std::cerr << "clusweb: cannot run " << agent << ": " << std::strerror(errno) << "\n";
  return 127;
}

}  // namespace

int run(int argc, char** argv) {
  if (argc > 1 && (std::string_view(argv[1]) == "agent" || std::string_view(argv[1]) == "up")) {
    return run_agent_executable(argc, argv);
  }
  CLI::App app{"clusweb: highly available web publishing"};
  app.require_subcommand(1);
  int exit_code = 0;

  // clusweb web: the web service itself.
  web::WebServiceOptions web_options;
  web_options.executable = self_executable(argv[0]);
  bool check_only = false;
  auto* web = app.add_subcommand("web", "run the web service (sites and application pools)");
  web->add_option("-f,--file", web_options.config_paths, "manifest file or folder (repeatable)");
  web->add_flag("--check", check_only, "validate the configuration and exit");
  web->add_option("--run-dir", web_options.run_dir, "runtime folder (admin socket, pool sockets)")
      ->envname("CLUSWEB_RUN_DIR")
      ->capture_default_str();
  web->add_option("--state-dir", web_options.state_dir, "state folder (worker logs)")
      ->envname("CLUSWEB_STATE_DIR")
      ->capture_default_str();
  web->add_option("--log-level", web_options.log_level, "debug, info, warn, error")
      ->capture_default_str();
  web->add_option("--clustered-sites", web_options.clustered_sites_path,
                  "file naming the clustered sites, one per line: they serve only with a "
                  "permit from the cluster agent (read at start and on every reload)");
  web->add_option("--shared-config", web_options.shared_config_path,
                  "the node's cache of the cluster's shared configuration (written by the "
                  "agent), merged with the manifests at start and on every reload");
  web->require_subcommand(0, 1);
  web->callback([&] {
    if (!web->get_subcommands().empty()) return;
    if (web_options.config_paths.empty()) {
      throw CLI::RequiredError("--file");
    }
    if (check_only) {
      exit_code = web::check_web_config(web_options.config_paths);
      return;
    }
    if (!set_log_level(web_options.log_level)) {
      throw CLI::ValidationError("--log-level", "unknown level " + web_options.log_level);
    }
    exit_code = web::run_web_service(web_options);
  });

  // The front end process, started by `clusweb web` only.
  int control_fd = -1;
  std::string frontend_log_level = "info";
  auto* frontend = app.add_subcommand("web-frontend", "");
  frontend->group("");  // hidden: internal
  frontend->add_option("--control-fd", control_fd)->required();
  frontend->add_option("--log-level", frontend_log_level);
  frontend->callback([&] {
    set_log_level(frontend_log_level);
    exit_code = web::run_frontend(control_fd);
  });

  add_web_admin_commands(app, *web, exit_code);
  add_cluster_commands(app, exit_code);
  // Listed here for --help; run_agent_executable() runs them.
  app.add_subcommand("agent",
                     "run this node's cluster agent (membership, placement, resources); "
                     "\"clusweb agent --help\" tells more");
  app.add_subcommand("up",
                     "run everything on this machine: embedded store, agent and the web service "
                     "with the groups of the manifests; \"clusweb up --help\" tells more");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace clusweb::cli
