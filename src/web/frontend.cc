#include "web/frontend.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <set>

#include "base/log.h"
#include "config/web_config_json.h"
#include "http/server.h"
#include "web/control_channel.h"
#include "web/protocol.h"

namespace clusweb::web {

namespace {

class Frontend {
 public:
  Frontend(boost::asio::io_context& io, UniqueFd control)
      : io_(io), channel_(io, std::move(control)) {}

  void start() {
    channel_.start([this](ControlMessage m) { on_message(std::move(m)); },
                   [this](const Error& e) {
                     if (stopping_) return;  // we closed it ourselves
                     log_->info("master went away, stopping error=\"{}\"", e.message);
                     shutdown(std::chrono::seconds(1));
                   });
  }

 private:
  void on_message(ControlMessage message) {
    auto type = protocol::message_type(message.json);
    if (!type) {
      log_->error("bad control message error=\"{}\"", type.error().message);
      return;
    }
    if (*type == "config") {
      apply_config(message);
    } else if (*type == "state") {
      apply_state(message);
    } else if (*type == "permits") {
      auto decoded = protocol::decode_permits(message.json);
      if (!decoded) {
        log_->error("bad permits message error=\"{}\"", decoded.error().message);
        return;
      }
      set_permits(decoded->deadlines);
      // The serving threads enforce the deadlines themselves, so a hung or
      // dead master cannot leave a site served.
      if (server_) server_->permits_changed();
      refresh_serving();
    } else if (*type == "stats-request") {
      if (auto id = protocol::decode_stats_request(message.json)) send_stats(*id);
    } else if (*type == "reopen-logs") {
      auto names = protocol::decode_reopen_logs(message.json);
      if (!names) return;
      for (std::size_t i = 0; i < names->size() && i < message.fds.size(); ++i) {
        logs_.set_file((*names)[i], std::move(message.fds[i]));
      }
      log_->info("access logs reopened count={}", names->size());
    } else if (*type == "shutdown") {
      auto grace = protocol::decode_shutdown(message.json);
      shutdown(std::chrono::milliseconds(grace ? *grace : 0));
    } else {
      log_->warn("unknown control message type={}", *type);
    }
  }

  std::shared_ptr<const http::PoolRuntime> pool_runtime(const protocol::PoolView& view) {
    auto runtime = std::make_shared<http::PoolRuntime>();
    runtime->name = view.name;
    runtime->state = view.state;
    runtime->reason = view.reason;
    runtime->endpoints = view.endpoints;
    runtime->queue_length = view.queue_length;
    auto& counters = pool_counters_[view.name];
    if (!counters) counters = std::make_shared<http::PoolCounters>();
    runtime->counters = counters;
    return runtime;
  }

  void apply_config(ControlMessage& message) {
    auto decoded = protocol::decode_config(message.json);
    if (!decoded) {
      log_->error("bad configuration message error=\"{}\"", decoded.error().message);
      return;
    }
    auto parsed = config::web_config_from_json(decoded->config_json);
    if (!parsed) {
      log_->error("bad configuration error=\"{}\"", parsed.error().describe());
      return;
    }
    auto config = std::make_shared<const config::WebConfig>(std::move(*parsed));
    const auto& m = *decoded;
    if (m.listener_keys.size() + m.access_logs.size() != message.fds.size()) {
      log_->error("configuration message carries {} descriptors, expected {}", message.fds.size(),
                  m.listener_keys.size() + m.access_logs.size());
      return;
    }
    if (!server_) {
      server_ = std::make_unique<http::HttpServer>(config->server.threads, logs_, clock_);
      if (auto started = server_->start(); !started) {
        log_->error("cannot start serving error=\"{}\"", started.error().describe());
        server_.reset();
        shutdown(std::chrono::milliseconds(0));
        return;
      }
    }

    // Deadlines before the sites: a clustered site never serves, not even
    // for a moment, on the state the message carries without its permit.
    set_permits(m.permits);
    auto runtime = std::make_shared<http::Runtime>();
    runtime->generation = m.generation;
    runtime->config = config;
    runtime->router = std::make_shared<http::Router>(*config);
    protocol::AppliedMessage applied;
    applied.generation = m.generation;

    std::set<std::string> logged(m.access_logs.begin(), m.access_logs.end());
    for (const auto* site : runtime->router->sites()) {
      auto started_entry = m.sites_started.find(site->name);
      const bool started = started_entry != m.sites_started.end() && started_entry->second;
      std::shared_ptr<const http::SiteRuntime> reuse;
      if (current_) {
        int old = current_->router->site_index(site->name);
        // A site that begins to serve opens its content folder afresh (see site_runtime).
        if (old >= 0 && current_->sites[old]->site == *site &&
            current_->sites[old]->access_log == (logged.count(site->name) != 0) &&
            current_->sites[old]->serving == http::serving_of(started, *permit_of(site->name))) {
          reuse = current_->sites[old];
        }
      }
      if (!reuse) {
        reuse = site_runtime(*site, started, logged.count(site->name) != 0,
                             fmt::format("{}#{}", site->name, m.generation), applied.problems);
      }
      runtime->sites.push_back(reuse);
      runtime->started.push_back(started);
    }
    for (const auto& view : m.pools) runtime->pools.emplace(view.name, pool_runtime(view));

    // Listeners, with TLS contexts built from the PEM the master read.
    std::map<std::string, int> fds;
    for (std::size_t i = 0; i < m.listener_keys.size(); ++i) {
      fds.emplace(m.listener_keys[i], message.fds[i].get());
    }
    for (const auto& key : runtime->router->listener_keys()) {
      http::ListenerRuntime listener;
      listener.key = key;
      listener.tls = key.starts_with("https://");
      if (listener.tls) {
        std::vector<http::TlsIdentity> identities;
        for (const auto* site : runtime->router->sites()) {
          for (const auto& binding : site->bindings) {
            if (binding.listener_key() != key) continue;
            auto cert = m.pem.find(binding.certificate);
            auto key_pem = m.pem.find(binding.key);
            if (cert == m.pem.end() || key_pem == m.pem.end()) continue;
            identities.push_back({binding.host, cert->second, key_pem->second});
          }
        }
        auto built = http::TlsListener::build(identities);
        if (built) {
          listener.tls_listener = *built;
        } else {
          applied.problems.push_back(fmt::format("listener {}: {}", key, built.error().message));
          fds.erase(key);  // no TLS context: do not accept on it
        }
      }
      runtime->listeners.push_back(std::move(listener));
    }

    for (std::size_t i = 0; i < m.access_logs.size(); ++i) {
      logs_.set_file(m.access_logs[i], std::move(message.fds[m.listener_keys.size() + i]));
    }
    for (const auto& name : logged_sites_) {
      if (logged.count(name) == 0) logs_.remove(name);
    }
    logged_sites_ = logged;

    current_ = runtime;
    applied.seq = m.seq;
    for (const auto& problem : applied.problems) log_->warn("{}", problem);
    log_->info("configuration applied generation={} sites={} pools={} listeners={}", m.generation,
               runtime->sites.size(), runtime->pools.size(), fds.size());
    server_->update(runtime, fds, acknowledge(std::move(applied)));
  }

  // A callback for HttpServer::update that reports `applied` to the master
  // from the control thread once every serving thread has switched.
  std::function<void()> acknowledge(protocol::AppliedMessage applied) {
    return [this, applied = std::move(applied)] {
      boost::asio::post(io_, [this, applied] {
        if (stopping_) return;
        if (auto sent = channel_.send(protocol::encode(applied)); !sent) {
          log_->error("cannot report to the master error=\"{}\"", sent.error().message);
        }
      });
    };
  }

  void apply_state(const ControlMessage& message) {
    auto decoded = protocol::decode_state(message.json);
    if (!decoded || !current_) return;
    auto runtime = std::make_shared<http::Runtime>();
    runtime->generation = decoded->generation;
    runtime->config = current_->config;
    runtime->router = current_->router;
    runtime->sites = current_->sites;
    runtime->listeners = current_->listeners;
    protocol::AppliedMessage applied;
    applied.generation = decoded->generation;
    applied.seq = decoded->seq;
    std::size_t index = 0;
    for (const auto* site : runtime->router->sites()) {
      auto started_entry = decoded->sites_started.find(site->name);
      const bool started = started_entry != decoded->sites_started.end() && started_entry->second;
      runtime->started.push_back(started);
      // A site that begins or ends serving: its content folder is opened afresh or let go
      // (see site_runtime), under a new cache key so nothing cached from the old folder is
      // served.
      if (index < current_->sites.size() &&
          current_->sites[index]->serving !=
              http::serving_of(started, *current_->sites[index]->permit)) {
        runtime->sites[index] =
            site_runtime(*site, started, current_->sites[index]->access_log,
                         fmt::format("{}#{}.{}", site->name, decoded->generation, decoded->seq),
                         applied.problems);
      }
      ++index;
    }
    for (const auto& view : decoded->pools) runtime->pools.emplace(view.name, pool_runtime(view));
    current_ = runtime;
    // Same listeners: the server closes acceptors missing from the map, so
    // pass every one it has as -1, "keep what you have".
    std::map<std::string, int> keep;
    for (const auto& listener : current_->listeners) {
      if (!listener.tls || listener.tls_listener) keep.emplace(listener.key, -1);
    }
    server_->update(runtime, keep, acknowledge(std::move(applied)));
  }

  // A site's runtime. A site that serves (started, and for a clustered site with a live
  // permit) opens its content folder now: it may be a filesystem mounted just before the
  // cluster brought the site online (a cluster disk), which a folder opened earlier would
  // hide. One that does not serve holds no descriptor of it, so the disk can be unmounted
  // once the site has stopped.
  std::shared_ptr<const http::SiteRuntime> site_runtime(const config::Site& site, bool started,
                                                        bool access_log, std::string cache_key,
                                                        std::vector<std::string>& problems) {
    auto fresh = std::make_shared<http::SiteRuntime>();
    fresh->site = site;
    fresh->permit = permit_of(site.name);
    fresh->serving = http::serving_of(started, *fresh->permit);
    if (fresh->serving != http::Serving::kNo) {
      fresh->root_fd.reset(::open(site.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!fresh->root_fd) {
        fresh->root_error = std::strerror(errno);
        problems.push_back(fmt::format("site \"{}\": cannot open {}: {}", site.name, site.root,
                                       fresh->root_error));
      }
    }
    fresh->mime = http::MimeTypes(site.mime_types);
    fresh->cache_key = std::move(cache_key);
    auto& counters = site_counters_[site.name];
    if (!counters) counters = std::make_shared<http::SiteCounters>();
    fresh->counters = counters;
    fresh->access_log = access_log;
    return fresh;
  }

  // After a permits message: a started site whose permit was just granted begins to serve
  // under it and opens its folder afresh, even if it served on its own before it became
  // clustered (the cluster has just brought its disk online); one whose permit was withdrawn
  // lets the folder go.
  void refresh_serving() {
    if (!server_ || !current_) return;
    std::shared_ptr<http::Runtime> runtime;
    for (std::size_t index = 0; index < current_->sites.size(); ++index) {
      const http::SiteRuntime& site = *current_->sites[index];
      if (site.serving == http::serving_of(current_->started[index], *site.permit)) continue;
      if (!runtime) runtime = std::make_shared<http::Runtime>(*current_);
      std::vector<std::string> problems;
      runtime->sites[index] = site_runtime(
          site.site, current_->started[index], site.access_log,
          fmt::format("{}#{}.p{}", site.site.name, current_->generation, ++permit_refreshes_),
          problems);
      for (const std::string& problem : problems) log_->warn("{}", problem);
    }
    if (!runtime) return;
    current_ = runtime;
    std::map<std::string, int> keep;
    for (const auto& listener : current_->listeners) {
      if (!listener.tls || listener.tls_listener) keep.emplace(listener.key, -1);
    }
    server_->update(current_, keep, [] {});
  }

  std::shared_ptr<http::SitePermit> permit_of(const std::string& site) {
    auto& permit = permits_[site];
    if (!permit) permit = std::make_shared<http::SitePermit>();
    return permit;
  }

  // `deadlines` names every clustered site; all others serve without a permit.
  void set_permits(const std::map<std::string, std::int64_t>& deadlines) {
    for (const auto& [name, deadline] : deadlines) permit_of(name);
    for (const auto& [name, permit] : permits_) {
      auto it = deadlines.find(name);
      permit->deadline_ms.store(it == deadlines.end() ? http::SitePermit::kUnlimited : it->second,
                                std::memory_order_relaxed);
    }
  }

  void send_stats(std::uint64_t id) {
    protocol::StatsMessage stats;
    stats.id = id;
    for (const auto& [name, counters] : site_counters_) {
      protocol::SiteStats s;
      s.requests = counters->requests.load(std::memory_order_relaxed);
      for (int i = 0; i < 5; ++i)
        s.responses[i] = counters->responses[i].load(std::memory_order_relaxed);
      s.bytes_sent = counters->bytes_sent.load(std::memory_order_relaxed);
      s.active_connections = counters->active_connections.load(std::memory_order_relaxed);
      stats.sites.emplace(name, s);
    }
    for (const auto& [name, counters] : pool_counters_) {
      stats.pools.emplace(
          name, protocol::PoolStats{counters->requests.load(std::memory_order_relaxed),
                                    counters->queue_full.load(std::memory_order_relaxed)});
    }
    stats.connections = server_ ? server_->open_connections() : 0;
    if (auto sent = channel_.send(protocol::encode(stats)); !sent) {
      log_->error("cannot send stats error=\"{}\"", sent.error().message);
    }
  }

  void shutdown(std::chrono::milliseconds grace) {
    if (stopping_) return;
    stopping_ = true;
    log_->info("front end stopping grace_ms={}", grace.count());
    if (server_) server_->stop(grace);
    logs_.flush();
    channel_.close();
    io_.stop();
  }

  boost::asio::io_context& io_;
  ControlChannel channel_;
  SystemClock clock_;
  http::AccessLogWriter logs_;
  std::unique_ptr<http::HttpServer> server_;
  http::RuntimePtr current_;
  std::map<std::string, std::shared_ptr<http::SiteCounters>> site_counters_;
  std::map<std::string, std::shared_ptr<http::PoolCounters>> pool_counters_;
  std::uint64_t permit_refreshes_ = 0;  // tells the cache keys of refresh_serving() apart
  // Serving permits by site name, kept across configurations like counters.
  std::map<std::string, std::shared_ptr<http::SitePermit>> permits_;
  std::set<std::string> logged_sites_;
  std::shared_ptr<spdlog::logger> log_ = logger("frontend");
  bool stopping_ = false;
};

}  // namespace

int run_frontend(int control_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  boost::asio::io_context io(1);
  // The master decides when the front end stops; a terminal's Ctrl-C reaches
  // the whole process group, and the master then asks for a graceful drain.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  Frontend frontend(io, UniqueFd(control_fd));
  frontend.start();
  io.run();
  return 0;
}

}  // namespace clusweb::web
