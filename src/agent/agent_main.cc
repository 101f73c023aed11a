#include "agent/agent_main.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agent/agent.h"
#include "agent/agent_api.h"
#include "agent/config_follower.h"
#include "agent/liveness.h"
#include "agent/web_supervisor.h"
#include "base/log.h"
#include "base/process.h"
#include "cluster/store_keys.h"
#include "config/group_manifest.h"
#include "config/manifest_loader.h"
#include "config/shared_config.h"
#include "config/web_config_json.h"
#include "resources/ocf_policy.h"
#include "resources/registry.h"
#include "store/etcd/etcd_store.h"
#include "store/memory_store.h"

namespace clusweb::agent {

namespace asio = boost::asio;

namespace {

std::shared_ptr<spdlog::logger> log_() { return logger("agent"); }

// The web service's pid, handed from an agent to the image that replaces it.
constexpr const char* kWebPidVariable = "CLUSWEB_AGENT_WEB_PID";

// Replaces this process by the agent's executable as the file system has it now (an upgraded
// binary replaces the file; /proc/self/exe then names the old one, marked "(deleted)"), with
// the command line it was started with. Returns only on failure.
Status exec_self() {
  std::error_code ec;
  std::string path = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return make_error("cannot read /proc/self/exe: {}", ec.message());
  static constexpr std::string_view kDeleted = " (deleted)";
  if (path.ends_with(kDeleted)) path.resize(path.size() - kDeleted.size());
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  if (args.empty()) return make_error("cannot read /proc/self/cmdline");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // Signals blocked here would stay blocked in the new image.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execv(path.c_str(), argv.data());
  return errno_error("execv", path);
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "node";
  std::string text(name);
  return text.substr(0, text.find('.'));
}

Result<store::EtcdOptions> etcd_options(const AgentRunOptions& options) {
  store::EtcdOptions etcd;
  std::string rest = options.store.substr(std::string_view("etcd://").size());
  std::stringstream list(rest);
  for (std::string endpoint; std::getline(list, endpoint, ',');) {
    if (!endpoint.empty()) etcd.endpoints.push_back(endpoint);
  }
  if (!options.etcd_ca.empty() || !options.etcd_cert.empty()) {
    etcd.tls = store::EtcdTls{options.etcd_ca, options.etcd_cert, options.etcd_key};
  }
  if (!options.etcd_user.empty()) {
    std::ifstream file(options.etcd_password_file);
    std::string password;
    if (!file || !std::getline(file, password)) {
      return make_error("--etcd-password-file: cannot read {}", options.etcd_password_file);
    }
    etcd.credentials = store::EtcdCredentials{options.etcd_user, password};
  }
  if (Status valid = store::check_options(etcd); !valid.ok()) {
    return make_error("--store {}: {}", options.store, valid.error().describe());
  }
  return etcd;
}

// What `clusweb up` takes from its manifests.
struct UpManifests {
  std::vector<cluster::GroupSpec> groups;
  config::SharedConfig shared;  // every Site and ApplicationPool
  std::string server_yaml;      // the node's own WebServer document, for `clusweb web -f`
};

Result<UpManifests> load_up_manifests(const std::vector<std::string>& paths) {
  UpManifests up;
  config::GroupLoadOptions options;
  options.policy_defaults = [](const cluster::ResourceSpec& resource) {
    return resources::starting_policy(
        resource, [](const std::string& why) { logger("agent")->warn("{}", why); });
  };
  auto groups = config::load_group_manifest_files(paths, options);
  if (!groups.ok()) return make_error("{}", groups.error().describe());
  up.groups = std::move(groups->groups);
  auto web = config::load_web_config_files(paths);
  if (!web.ok()) return make_error("{}", web.error().message);
  // The server settings stay the node's: written back as a manifest of its own (the JSON
  // form's names are the manifest's; JSON values are YAML flow values).
  nlohmann::json server = nlohmann::json::parse(config::to_json(*web))["server"];
  up.server_yaml = "# The WebServer settings of clusweb up's manifests";
  if (!web->server.where.file.empty()) {
    up.server_yaml += " (" + web->server.where.describe() + ")";
  }
  up.server_yaml += ", written at every start.\nkind: WebServer\n";
  server.erase("where");
  for (const auto& [field, value] : server.items()) {
    up.server_yaml += field + ": " + value.dump() + "\n";
  }
  up.shared.config = std::move(*web);
  up.shared.config.server = config::ServerSettings{};
  return up;
}

// Makes the store's shared configuration exactly `shared` and writes the node's cache, so the
// web service starts with it; returns the revision.
asio::awaitable<Status> apply_shared(store::Store& store, const cluster::StoreKeys& keys,
                                     config::SharedConfig shared,
                                     const std::filesystem::path& cache) {
  const std::string value = config::encode_shared_config(shared);
  auto current = co_await store::get(store, keys.config_web());
  if (!current.ok()) co_return current.error();
  if (current->has_value() && (*current)->value == value) {
    shared.revision = (*current)->mod_revision;
  } else {
    auto put = co_await store.put(store::Put(keys.config_web(), value));
    if (!put.ok()) co_return put.error();
    shared.revision = put->revision;
    log_()->info("shared configuration revision {} from the manifests: {} site(s), {} pool(s)",
                 shared.revision, shared.config.sites.size(), shared.config.pools.size());
  }
  co_return config::write_shared_config_cache(os_file_system(), cache, shared);
}

// Writes the groups of `clusweb up`'s manifests to the (embedded) store.
asio::awaitable<Status> apply_groups(store::Store& store, const cluster::StoreKeys& keys,
                                     const std::vector<cluster::GroupSpec>& groups) {
  for (const cluster::GroupSpec& group : groups) {
    const std::string key = keys.group(group.name);
    const std::string value = encode(group);
    auto current = co_await store::get(store, key);
    if (!current.ok()) co_return current.error();
    if (current->has_value() && (*current)->value == value) continue;
    auto put = co_await store.put(store::Put(key, value));
    if (!put.ok()) co_return put.error();
    log_()->info("group {} {} from the manifests", group.name,
                 current->has_value() ? "updated" : "created");
  }
  co_return Status{};
}

}  // namespace

int run_agent(const AgentRunOptions& options) {
  ::signal(SIGPIPE, SIG_IGN);
  const std::string node = options.node.empty() ? host_name() : options.node;
  for (auto [kind, name] : {std::pair{"cluster", options.cluster}, std::pair{"node", node}}) {
    if (Status valid = cluster::check_name(kind, name); !valid.ok()) {
      std::cerr << "clusweb: " << valid.error().describe() << "\n";
      return 2;
    }
  }
  if (options.ttl < std::chrono::seconds(2)) {
    std::cerr << "clusweb: --ttl must be at least 2s (the deadline must survive one lost "
                 "keepalive and a store leader change)\n";
    return 2;
  }
  std::optional<UpManifests> up;
  if (!options.up_manifests.empty()) {
    auto loaded = load_up_manifests(options.up_manifests);
    if (!loaded.ok()) {
      std::cerr << loaded.error().message << "\n";
      return 2;
    }
    up = std::move(*loaded);
  }
  std::error_code ec;
  std::filesystem::create_directories(options.run_dir, ec);
  std::filesystem::create_directories(options.state_dir, ec);
  std::vector<std::string> web_config = options.web_config;
  if (up) {
    const std::string server_file =
        (std::filesystem::path(options.state_dir) / "web-server.yaml").string();
    const std::string temporary = server_file + ".tmp";
    std::ofstream(temporary, std::ios::trunc) << up->server_yaml;
    std::filesystem::rename(temporary, server_file, ec);
    if (ec) {
      std::cerr << "clusweb: cannot write " << server_file << ": " << ec.message() << "\n";
      return 1;
    }
    web_config = {server_file};
  }

  asio::io_context io(1);
  SystemClock clock;
  ChildReaper reaper(io);
  const cluster::StoreKeys keys(options.cluster);

  // The store, and the liveness module's own way to it (each destroyed
  // before the io_context it runs on).
  asio::io_context liveness_io(1);
  auto liveness_work = asio::make_work_guard(liveness_io);
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::Store> liveness_store;
  asio::any_io_executor liveness_executor = io.get_executor();
  std::thread liveness_thread;
  if (options.store == "memory") {
    store::MemoryStoreOptions memory;
    memory.state_file = std::filesystem::path(options.state_dir) / "store.db";
    auto opened = store::MemoryStore::open(io.get_executor(), clock, memory);
    if (!opened.ok()) {
      std::cerr << "clusweb: " << opened.error().describe() << "\n";
      return 1;
    }
    // One process: the lease and its expiry live on the same loop.
    liveness_store = (*opened)->client();
    store = std::move(*opened);
  } else if (options.store.starts_with("etcd://")) {
    auto etcd = etcd_options(options);
    if (!etcd.ok()) {
      std::cerr << "clusweb: " << etcd.error().describe() << "\n";
      return 2;
    }
    store = std::make_unique<store::EtcdStore>(io.get_executor(), *etcd);
    // Keepalives on a thread and a connection of their own: never behind a
    // fork, an fsync or a netlink call of the agent.
    liveness_store = std::make_unique<store::EtcdStore>(liveness_io.get_executor(), *etcd);
    liveness_executor = liveness_io.get_executor();
    liveness_thread = std::thread([&liveness_io] { liveness_io.run(); });
  } else {
    std::cerr << "clusweb: --store must be \"memory\" or etcd://HOST:PORT[,HOST:PORT...], not \""
              << options.store << "\"\n";
    return 2;
  }

  LeaseLivenessOptions liveness_options;
  liveness_options.node = node;
  liveness_options.node_key = keys.node(node);
  liveness_options.node_value = nlohmann::json{{"node", node}, {"pid", ::getpid()}}.dump();
  liveness_options.ttl = options.ttl;
  LeaseLiveness liveness(liveness_executor, *liveness_store, clock, io.get_executor(),
                         liveness_options);

  const std::string web_socket = (std::filesystem::path(options.run_dir) / "web.sock").string();
  // In the state folder: it outlives a reboot, so a node that comes up without the store
  // knows which of its sites it must not start by itself.
  const std::string clustered_sites =
      (std::filesystem::path(options.state_dir) / "clustered-sites").string();
  const std::string shared_config_cache =
      (std::filesystem::path(options.state_dir) / "shared-config").string();
  std::unique_ptr<WebSupervisor> web;
  if (!web_config.empty()) {
    std::vector<std::string> argv{options.executable, "web"};
    for (const std::string& path : web_config) {
      argv.push_back("-f");
      argv.push_back(path);
    }
    for (const std::string& arg :
         {std::string("--run-dir"), options.run_dir, std::string("--state-dir"), options.state_dir,
          std::string("--clustered-sites"), clustered_sites, std::string("--shared-config"),
          shared_config_cache, std::string("--log-level"), options.log_level}) {
      argv.push_back(arg);
    }
    web = std::make_unique<WebSupervisor>(
        io, reaper, std::move(argv),
        (std::filesystem::path(options.state_dir) / "web.log").string());
  }
  // Restarted in place (SIGUSR2): the web service started before the exec still runs.
  if (const char* inherited = ::getenv(kWebPidVariable)) {
    const pid_t web_pid = static_cast<pid_t>(std::strtol(inherited, nullptr, 10));
    ::unsetenv(kWebPidVariable);
    if (web && !web->adopt(web_pid)) {
      log_()->warn("the web service pid={} of the last run is gone; starting a new one", web_pid);
    }
  }

  ResourceFactory factory =
      [&](const std::string& group,
          const cluster::ResourceSpec& spec) -> Result<std::unique_ptr<resources::Resource>> {
    resources::ResourceDeps deps;
    deps.parameters = spec.parameters;
    if (spec.type == "website" && !deps.parameters.contains("adminSocket")) {
      deps.parameters["adminSocket"] = web_socket;
    }
    deps.reaper = &reaper;
    deps.clock = &clock;
    deps.log_sink = [group, name = spec.name](std::string_view line) {
      log_()->info("output group={} resource={}: {}", group, name, line);
    };
    return resources::make_resource(spec.type, io.get_executor(), deps);
  };

  AgentOptions agent_options;
  agent_options.cluster = options.cluster;
  agent_options.node = node;
  agent_options.ttl = options.ttl;
  agent_options.clustered_sites_file = clustered_sites;
  agent_options.lease_file = std::filesystem::path(options.state_dir) / "lease";
  bool loaded = false;
  agent_options.loaded = [&] {
    loaded = true;
    if (web) web->start();
  };
  Agent agent(io.get_executor(), *store, liveness, factory, clock, agent_options);
  AgentApi api(io.get_executor(), agent);
  const std::string api_socket = (std::filesystem::path(options.run_dir) / "agent.sock").string();
  if (Status listening = api.listen(api_socket); !listening.ok()) {
    std::cerr << "clusweb: " << listening.error().describe() << "\n";
    return 1;
  }

  // The shared web configuration: the store's config/web to the cache and the web service.
  ConfigFollowerOptions follower_options;
  follower_options.node = node;
  follower_options.config_key = keys.config_web();
  follower_options.status_key = keys.config_status(node);
  follower_options.cache = shared_config_cache;
  if (web) follower_options.web_socket = web_socket;
  follower_options.data_key_file = std::filesystem::path(options.state_dir) / "data.key";
  follower_options.secrets_dir = std::filesystem::path(options.state_dir) / "secrets";
  ConfigFollower follower(io.get_executor(), *store, follower_options);
  std::stop_source follower_stop;

  int exit_code = 0;
  bool shutting_down = false;
  auto shutdown = [&]() -> asio::awaitable<void> {
    follower_stop.request_stop();
    co_await agent.shutdown(std::chrono::seconds(60));
    api.close();
    if (web) {
      web->stop(std::chrono::seconds(15), [&io] { io.stop(); });
    } else {
      io.stop();
    }
  };
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code signal_ec, int signal) {
    if (signal_ec || shutting_down) return;
    shutting_down = true;
    log_()->info("stopping on {}: groups move to other nodes", strsignal(signal));
    asio::co_spawn(io, shutdown(), asio::detached);
  });
  // SIGUSR2: replace this process by the agent's executable as it is on disk now (an
  // upgrade), keeping the lease, the groups and the web service (ARCHITECTURE.md, Safety 3).
  bool restart_in_place = false;
  auto restart = [&]() -> asio::awaitable<void> {
    follower_stop.request_stop();
    co_await agent.quiesce_for_restart(std::chrono::seconds(5));
    api.close();
    restart_in_place = true;
    io.stop();
  };
  asio::signal_set restart_signal(io, SIGUSR2);
  restart_signal.async_wait([&](boost::system::error_code signal_ec, int) {
    if (signal_ec || shutting_down) return;
    shutting_down = true;
    log_()->info("restarting in place on SIGUSR2: the lease, the groups and the web service stay");
    asio::co_spawn(io, restart(), asio::detached);
  });

  auto start = [&]() -> asio::awaitable<void> {
    if (up) {
      Status applied = co_await apply_shared(*store, keys, up->shared, shared_config_cache);
      if (applied.ok()) applied = co_await apply_groups(*store, keys, up->groups);
      if (!applied.ok()) {
        log_()->error("cannot apply the manifests: {}", applied.error().describe());
        exit_code = 1;
        io.stop();
        co_return;
      }
    }
    Status running = co_await agent.run();
    if (!running.ok()) {
      log_()->error("{}", running.error().describe());
      exit_code = 1;
      io.stop();
    }
  };
  // Without the store for `store_wait`: the web service starts from the node's cache, with the
  // clustered sites held back as the agent last wrote them (they serve only with permits,
  // which need the store anyway). The agent carries on trying; the follower reloads the web
  // service when the store answers.
  asio::steady_timer store_wait(io, options.store_wait);
  if (web) {
    store_wait.async_wait([&](boost::system::error_code wait_ec) {
      if (wait_ec || loaded || shutting_down) return;
      std::error_code exists_ec;
      if (!std::filesystem::exists(clustered_sites, exists_ec)) {
        log_()->error(
            "the store has not answered for {} ms and this node has never read it (no {}): "
            "the web service waits for the store, since it cannot know which sites are "
            "clustered",
            options.store_wait.count(), clustered_sites);
        return;
      }
      log_()->warn(
          "the store has not answered for {} ms: starting the web service from this node's "
          "cache ({}); clustered sites stay stopped until the store answers",
          options.store_wait.count(), shared_config_cache);
      web->start();
    });
  }
  log_()->info("agent starting node={} cluster={} store={} ttl={}s", node, options.cluster,
               options.store, options.ttl.count());
  asio::co_spawn(io, start(), asio::detached);
  asio::co_spawn(io, follower.run(follower_stop.get_token()), asio::detached);
  io.run();

  liveness_work.reset();
  liveness_io.stop();
  if (liveness_thread.joinable()) liveness_thread.join();
  if (restart_in_place) {
    // Exec'd from the thread that started the web service, so its parent-death signal does
    // not fire: the process lives on, only its image changes.
    if (web && web->pid() > 0) ::setenv(kWebPidVariable, std::to_string(web->pid()).c_str(), 1);
    Status replaced = exec_self();
    log_()->error("cannot restart in place: {}; the groups fail over when the lease expires",
                  replaced.error().describe());
    return 1;
  }
  return exit_code;
}

}  // namespace clusweb::agent
