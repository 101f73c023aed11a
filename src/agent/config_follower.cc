#include "agent/config_follower.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "base/atomic_file.h"
#include "base/log.h"
#include "config/shared_config.h"
#include "resources/web_admin.h"
#include "secrets/data_key.h"

namespace clusweb::agent {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using std::chrono::milliseconds;

std::shared_ptr<spdlog::logger> log_() { return logger("agent"); }

// How long one reload may take, and how long the web service may take to come up (it starts
// after the agent has read the store) before the node reports it unreachable.
constexpr milliseconds kReloadTimeout{10'000};
constexpr milliseconds kWebStartWait{30'000};
// How soon a revision this node could not serve is tried again, doubling up to the maximum.
constexpr milliseconds kFirstUnsettledRetry{2'000};
constexpr milliseconds kMaxUnsettledRetry{60'000};

// Waits `delay`; false once `stop` is requested.
asio::awaitable<bool> pause(const asio::any_io_executor& executor, milliseconds delay,
                            const std::stop_token& stop) {
  if (stop.stop_requested()) co_return false;
  asio::steady_timer timer(executor, delay);
  const std::stop_callback cancel(stop, [&timer] { timer.cancel(); });
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !stop.stop_requested();
}

// Replaces `path` with `text`, readable by root alone, unless it already holds it.
Status write_private_file(const std::filesystem::path& path, const std::string& text) {
  Result<std::string> current = os_file_system().read(path);
  if (current.ok() && *current == text) return {};
  return replace_file(os_file_system(), path, text, 0600);
}

}  // namespace

std::string encode(const NodeConfigStatus& status) {
  return json{{"node", status.node},
              {"revision", status.revision},
              {"latest", status.latest},
              {"problem", status.problem}}
      .dump();
}

std::optional<NodeConfigStatus> decode_node_config_status(std::string_view text) {
  json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return std::nullopt;
  NodeConfigStatus status;
  try {
    status.node = object.at("node").get<std::string>();
    status.revision = object.at("revision").get<std::int64_t>();
    status.latest = object.at("latest").get<std::int64_t>();
    status.problem = object.at("problem").get<std::string>();
  } catch (const json::exception&) {
    return std::nullopt;
  }
  return status;
}

ConfigFollower::ConfigFollower(asio::any_io_executor executor, store::Store& store,
                               ConfigFollowerOptions options)
    : executor_(std::move(executor)), store_(store), options_(std::move(options)) {}

asio::awaitable<void> ConfigFollower::run(std::stop_token stop) {
  milliseconds delay = options_.retry;
  bool warned = false;
  auto failed = [&](const std::string& what) -> asio::awaitable<bool> {
    if (!warned) {
      log_()->warn(
          "shared configuration: {}; the web service keeps what its cache holds; "
          "retrying",
          what);
      warned = true;
    }
    const bool go_on = co_await pause(executor_, delay, stop);
    delay = std::min(delay * 2, options_.max_retry);
    co_return go_on;
  };
  while (!stop.stop_requested()) {
    Result<store::RangeResult> read = co_await store_.range(store::Range(options_.config_key));
    if (!read.ok()) {
      const std::string what = "cannot read the store: " + read.error().describe();
      if (!co_await failed(what)) co_return;
      continue;
    }
    if (read->kvs.empty()) {
      // Nothing shared yet: an empty configuration is revision 0 of nothing; a cache from an
      // earlier cluster life stays until a revision replaces it.
      if (published_.empty()) {
        // Named first: GCC 12 mishandles braced temporaries inside co_await expressions.
        NodeConfigStatus nothing{options_.node, 0, 0, ""};
        co_await publish(std::move(nothing));
      }
    } else {
      co_await bring(read->kvs.front().mod_revision, read->kvs.front().value, stop);
    }
    store::WatchOptions watch_options(options_.config_key);
    watch_options.start_revision = read->revision + 1;
    Result<std::unique_ptr<store::Watch>> watch = co_await store_.watch(watch_options);
    if (!watch.ok()) {
      const std::string what = "cannot watch the store: " + watch.error().describe();
      if (!co_await failed(what)) co_return;
      continue;
    }
    warned = false;
    delay = options_.retry;
    store::Watch& changes = **watch;
    const std::stop_callback cancel(stop, [&changes] { changes.cancel(); });
    // A revision this node could not serve is tried again after a growing pause (the node may
    // have got its data key, a missing folder may have appeared): the watch ends, and the
    // outer loop reads and brings the newest revision again.
    asio::steady_timer retry(executor_);
    while (!stop.stop_requested()) {
      if (!settled_) {
        retry.expires_after(unsettled_retry_);
        retry.async_wait([&changes](boost::system::error_code ec) {
          if (!ec) changes.cancel();
        });
        unsettled_retry_ = std::min(unsettled_retry_ * 2, kMaxUnsettledRetry);
      }
      Result<store::WatchBatch> batch = co_await changes.next();
      retry.cancel();
      if (!batch.ok()) break;  // read again and watch from there
      for (const store::WatchEvent& event : batch->events) {
        if (event.type == store::WatchEvent::Type::kPut) {
          co_await bring(event.kv.mod_revision, event.kv.value, stop);
        } else {
          const std::string empty = config::encode_shared_config(config::SharedConfig{});
          co_await bring(event.kv.mod_revision, empty, stop);
        }
      }
    }
  }
}

asio::awaitable<void> ConfigFollower::bring(std::int64_t revision, const std::string& value,
                                            const std::stop_token& stop) {
  NodeConfigStatus status{options_.node, 0, revision, ""};
  Result<config::SharedConfig> shared = config::decode_shared_config(
      value, fmt::format("{} at revision {}", options_.config_key, revision));
  if (!shared.ok()) {
    status.problem = shared.error().describe();
    log_()->error("shared configuration revision {} is unreadable: {}", revision, status.problem);
    co_await publish(std::move(status));
    co_return;
  }
  shared->revision = revision;
  if (Status secret = write_secret_files(*shared); !secret.ok()) {
    status.problem = secret.error().describe();
    log_()->error("shared configuration revision {}: {}", revision, status.problem);
    co_await publish(std::move(status));
    co_return;
  }
  if (Status written = config::write_shared_config_cache(os_file_system(), options_.cache, *shared);
      !written.ok()) {
    status.problem = "cannot write the cache: " + written.error().describe();
    log_()->error("shared configuration revision {}: {}", revision, status.problem);
    co_await publish(std::move(status));
    co_return;
  }
  log_()->info("shared configuration revision {} cached in {}", revision, options_.cache.string());
  if (options_.web_socket.empty()) {
    status.problem = "no web service on this node (start the agent with --web-config)";
    co_await publish(std::move(status));
    settled_ = true;  // nothing to try again until the next revision
    co_return;
  }
  const resources::WebAdmin web(executor_, options_.web_socket, stop);
  const auto give_up = std::chrono::steady_clock::now() + kWebStartWait;
  milliseconds delay = options_.retry;
  while (true) {
    Result<resources::SharedConfigInfo> reloaded =
        co_await web.reload(std::chrono::steady_clock::now() + kReloadTimeout);
    if (reloaded.ok()) {
      status.revision = reloaded->revision;
      status.problem = reloaded->problem;
      break;
    }
    const bool unreachable = reloaded.error().code == resources::kAdminUnreachable;
    if (!unreachable || std::chrono::steady_clock::now() >= give_up) {
      status.problem = "the web service did not reload: " + reloaded.error().message;
      break;
    }
    if (!co_await pause(executor_, delay, stop)) co_return;
    delay = std::min(delay * 2, options_.max_retry);
  }
  if (status.problem.empty()) {
    log_()->info("shared configuration revision {} served", status.revision);
  } else {
    log_()->error("shared configuration revision {} not served (serving {}): {}", revision,
                  status.revision, status.problem);
  }
  co_await publish(std::move(status));
}

Status ConfigFollower::write_secret_files(config::SharedConfig& shared) const {
  bool any = false;
  for (const auto& [name, site] : shared.config.sites) {
    for (const config::Binding& binding : site.bindings) any = any || binding.inline_material();
  }
  for (const auto& [name, pool] : shared.config.pools) {
    any = any || !pool.secret_environment_sealed.empty();
  }
  const std::filesystem::path& folder = options_.secrets_dir;
  std::error_code ec;
  if (!any) {
    std::filesystem::remove_all(folder, ec);
    return {};
  }
  Result<std::optional<secrets::DataKey>> key =
      secrets::read_key_file(os_file_system(), options_.data_key_file);
  if (!key.ok()) return key.error();
  if (!key->has_value()) {
    return make_error(
        "it holds sealed secrets and this node has no data key (no {}): run \"clusweb config "
        "join-key --password-file FILE\" on this node",
        options_.data_key_file.string());
  }
  std::filesystem::create_directories(folder, ec);
  std::filesystem::permissions(folder, std::filesystem::perms::owner_all, ec);
  std::set<std::string> used;
  // Files are named by their object and a checksum of the sealed text: a new secret is a new
  // path, which the web service takes as a changed site or pool.
  auto keep = [&](const std::string& base, const std::string& text, std::string& path) -> Status {
    const std::filesystem::path file = folder / base;
    if (Status written = write_private_file(file, text); !written.ok()) return written;
    used.insert(base);
    path = file.string();
    return {};
  };
  for (auto& [name, site] : shared.config.sites) {
    for (config::Binding& binding : site.bindings) {
      if (!binding.inline_material()) continue;
      const std::string base = fmt::format("site-{}-{}-{}-{:08x}", name, binding.port,
                                           binding.host.empty() ? "any" : binding.host,
                                           crc32(binding.certificate_pem + binding.key_sealed));
      Result<std::string> opened =
          (*key)->open(binding.key_sealed, config::tls_key_context(name, binding));
      if (!opened.ok()) {
        return make_error("site \"{}\" binding {}: the TLS key {}", name, binding.url(),
                          opened.error().message);
      }
      if (Status kept = keep(base + ".crt", binding.certificate_pem, binding.certificate);
          !kept.ok()) {
        return kept;
      }
      if (Status kept = keep(base + ".key", *opened, binding.key); !kept.ok()) return kept;
      binding.certificate_pem.clear();
      binding.key_sealed.clear();
    }
  }
  for (auto& [name, pool] : shared.config.pools) {
    for (const auto& [variable, sealed] : pool.secret_environment_sealed) {
      Result<std::string> opened =
          (*key)->open(sealed, config::pool_secret_context(name, variable));
      if (!opened.ok()) {
        return make_error("pool \"{}\" secret {}: {}", name, variable, opened.error().message);
      }
      const std::string base = fmt::format("pool-{}-{}-{:08x}", name, variable, crc32(sealed));
      if (Status kept = keep(base, *opened, pool.secret_environment[variable]); !kept.ok()) {
        return kept;
      }
    }
    pool.secret_environment_sealed.clear();
  }
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    if (!used.contains(entry.path().filename().string())) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  return {};
}

asio::awaitable<void> ConfigFollower::publish(NodeConfigStatus status) {
  settled_ = status.problem.empty();
  if (settled_) unsettled_retry_ = kFirstUnsettledRetry;
  std::string value = encode(status);
  if (value == published_) co_return;
  Result<store::PutResult> put = co_await store_.put(store::Put(options_.status_key, value));
  if (!put.ok()) {
    // The next revision (or the next start) publishes again.
    log_()->warn("cannot publish the configuration status: {}", put.error().describe());
    co_return;
  }
  published_ = std::move(value);
}

}  // namespace clusweb::agent
