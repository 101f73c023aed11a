#include "web/web_service.h"

#include <sys/prctl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>

#include "base/log.h"
#include "config/manifest_loader.h"
#include "web/admin_server.h"

namespace clusweb::web {

int check_web_config(const std::vector<std::string>& paths) {
  auto loaded = config::load_web_config_files(paths);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().describe().c_str());
    return 1;
  }
  std::printf("configuration ok: %zu site(s), %zu pool(s)\n", loaded->sites.size(),
              loaded->pools.size());
  return 0;
}

int run_web_service(const WebServiceOptions& options) {
  ::signal(SIGPIPE, SIG_IGN);
  auto log = logger("web");
  boost::asio::io_context io(1);
  SystemClock clock;
  ChildReaper reaper(io);
  WebMaster master(io, clock, reaper, options);
  if (auto started = master.start(); !started) {
    log->error("cannot start: {}", started.error().describe());
    std::fprintf(stderr, "clusweb web: %s\n", started.error().describe().c_str());
    return 1;
  }
  AdminServer admin(io, master);
  std::string socket_path = options.run_dir + "/web.sock";
  if (auto listening = admin.listen(socket_path); !listening) {
    std::fprintf(stderr, "clusweb web: %s\n", listening.error().describe().c_str());
    return 1;
  }

  boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  signals.add(SIGUSR1);
  bool stopping = false;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      log->info("reload requested signal=SIGHUP");
      (void)master.reload();
    } else if (signal == SIGUSR1) {
      master.reopen_logs();
    } else if (!stopping) {
      stopping = true;
      admin.close();
      master.shutdown([&] {
        log->info("stopped");
        io.stop();
      });
    } else {
      log->warn("second stop signal: exiting at once");
      io.stop();
      return;
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  log->info("web service running pid={} socket={}", ::getpid(), socket_path);
  io.run();
  return 0;
}

}  // namespace clusweb::web
