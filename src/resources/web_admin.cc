#include "resources/web_admin.h"

#include <fmt/format.h>
#include <sys/un.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace clusweb::resources {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;
using LocalStream = beast::basic_stream<Local>;
using boost::system::error_code;
using nlohmann::json;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// A reply lists a few sites or pools; anything near this is not our service.
constexpr std::uint64_t kMaxReplyBytes = std::uint64_t{16} << 20;
// One event is a few hundred bytes.
constexpr std::size_t kMaxEventLineBytes = std::size_t{1} << 20;

Error admin_error(int code, std::string message) { return Error{std::move(message), {}, 0, code}; }

Error stopped_error() { return admin_error(kAdminStopped, "stopped"); }

// A failure to talk to the service, as one phrase naming the socket.
Error transport_error(const std::string& socket_path, const error_code& ec) {
  if (ec == beast::error::timeout) {
    return admin_error(kAdminUnreachable,
                       fmt::format("web service at {}: no answer in time", socket_path));
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return admin_error(kAdminUnreachable,
                       fmt::format("web service at {}: connection closed", socket_path));
  }
  return admin_error(kAdminUnreachable,
                     fmt::format("web service at {}: {}", socket_path, ec.message()));
}

// The socket path must fit sockaddr_un, or connecting would fail obscurely.
bool path_fits(const std::string& socket_path) {
  return !socket_path.empty() && socket_path.size() < sizeof(sockaddr_un::sun_path);
}

// Closes the stream when its stop token is triggered: every operation pending
// on it completes at once with operation_aborted.
struct CloseOnStop {
  LocalStream* stream;
  void operator()() const noexcept { stream->close(); }
};

// nlohmann::json throws when a member has an unexpected type; these read
// without throwing and leave `out` as it was when the member is missing or of
// another type.
bool read_string(const json& object, const char* name, std::string& out) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

bool read_bool(const json& object, const char* name, bool& out) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_boolean()) return false;
  out = it->get<bool>();
  return true;
}

bool read_int(const json& object, const char* name, std::int64_t& out) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_number()) return false;
  out = it->is_number_float() ? static_cast<std::int64_t>(it->get<double>())
                              : it->get<std::int64_t>();
  return true;
}

Result<json> parse_object(const std::string& body, std::string_view what) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return admin_error(kAdminBadReply, fmt::format("{}: the reply is not a JSON object", what));
  }
  return parsed;
}

Result<SiteInfo> decode_site(const json& object) {
  SiteInfo site;
  if (!object.is_object() || !read_string(object, "name", site.name) ||
      !read_string(object, "state", site.state)) {
    return admin_error(kAdminBadReply, "a site without name or state");
  }
  read_string(object, "reason", site.reason);
  if (const auto bindings = object.find("bindings");
      bindings != object.end() && bindings->is_array()) {
    for (const json& binding : *bindings) {
      if (binding.is_string()) site.bindings.push_back(binding.get<std::string>());
    }
  }
  if (const auto applications = object.find("applications");
      applications != object.end() && applications->is_array()) {
    for (const json& entry : *applications) {
      if (!entry.is_object()) continue;
      SiteApplication application;
      read_string(entry, "path", application.path);
      read_string(entry, "pool", application.pool);
      site.applications.push_back(std::move(application));
    }
  }
  read_bool(object, "clustered", site.clustered);
  if (std::int64_t remaining = 0; read_int(object, "permitRemainingMs", remaining)) {
    site.permit_remaining_ms = remaining;
  }
  return site;
}

Result<PoolInfo> decode_pool(const json& object) {
  PoolInfo pool;
  if (!object.is_object() || !read_string(object, "name", pool.name) ||
      !read_string(object, "state", pool.state)) {
    return admin_error(kAdminBadReply, "a pool without name or state");
  }
  read_string(object, "reason", pool.reason);
  if (const auto workers = object.find("workers"); workers != object.end() && workers->is_array()) {
    for (const json& entry : *workers) {
      if (!entry.is_object()) continue;
      PoolWorker worker;
      read_int(entry, "pid", worker.pid);
      read_bool(entry, "ready", worker.ready);
      pool.workers.push_back(worker);
    }
  }
  return pool;
}

// The service's own words for a refusal, or the status when it gave none.
std::string refusal_message(int status, const std::string& body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string message;
  if (parsed.is_object() && read_string(parsed, "error", message) && !message.empty()) {
    return message;
  }
  return fmt::format("status {}", status);
}

// One line of the event stream; nothing for a line that is not an object.
std::optional<WebEventInfo> decode_event(const std::string& line) {
  if (line.empty()) return std::nullopt;
  json object = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded() || !object.is_object()) return std::nullopt;
  WebEventInfo event;
  read_string(object, "type", event.type);
  read_string(object, "name", event.name);
  read_string(object, "state", event.state);
  read_string(object, "reason", event.reason);
  read_string(object, "message", event.message);
  return event;
}

}  // namespace

std::string SiteInfo::root_pool() const {
  for (const SiteApplication& application : applications) {
    if (application.path == "/") return application.pool;
  }
  return {};
}

bool SiteInfo::uses_pool(const std::string& pool) const {
  for (const SiteApplication& application : applications) {
    if (application.pool == pool) return true;
  }
  return false;
}

int PoolInfo::live_workers() const {
  int live = 0;
  for (const PoolWorker& worker : workers) {
    if (worker.pid > 0) ++live;
  }
  return live;
}

WebAdmin::WebAdmin(asio::any_io_executor executor, std::string socket_path, std::stop_token stop)
    : executor_(std::move(executor)),
      socket_path_(std::move(socket_path)),
      stop_(std::move(stop)) {}

asio::awaitable<Result<WebAdmin::Reply>> WebAdmin::exchange(bool post, std::string target,
                                                            std::string body,
                                                            Deadline deadline) const {
  if (stop_.stop_requested()) co_return stopped_error();
  if (!path_fits(socket_path_)) {
    co_return admin_error(kAdminUnreachable,
                          fmt::format("not a usable socket path: \"{}\"", socket_path_));
  }
  LocalStream stream(executor_);
  const std::stop_callback on_stop(stop_, CloseOnStop{&stream});
  stream.expires_at(deadline);
  auto [connect_error] = co_await stream.async_connect(Local::endpoint(socket_path_), kTuple);
  if (stop_.stop_requested()) co_return stopped_error();
  if (connect_error) co_return transport_error(socket_path_, connect_error);

  http::request<http::string_body> request{post ? http::verb::post : http::verb::get, target, 11};
  request.set(http::field::host, "localhost");
  request.set(http::field::user_agent, "clusweb-agent");
  request.set(http::field::accept, "application/json");
  if (post) request.set(http::field::content_type, "application/json");
  request.keep_alive(false);
  request.body() = std::move(body);
  request.prepare_payload();
  auto [write_error, written] = co_await http::async_write(stream, request, kTuple);
  if (stop_.stop_requested()) co_return stopped_error();
  if (write_error) co_return transport_error(socket_path_, write_error);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  auto [read_error, read] = co_await http::async_read(stream, buffer, parser, kTuple);
  if (stop_.stop_requested()) co_return stopped_error();
  if (read_error) co_return transport_error(socket_path_, read_error);
  co_return Reply{static_cast<int>(parser.get().result_int()), std::move(parser.get().body())};
}

asio::awaitable<Result<json>> WebAdmin::object_request(bool post, std::string target,
                                                       std::string body, Deadline deadline) const {
  Result<Reply> reply = co_await exchange(post, target, std::move(body), deadline);
  if (!reply) co_return reply.error();
  if (reply->status != 200) {
    co_return admin_error(reply->status == 404 ? kAdminNotFound : kAdminRefused,
                          refusal_message(reply->status, reply->body));
  }
  co_return parse_object(reply->body, target);
}

asio::awaitable<Result<SiteInfo>> WebAdmin::site_request(bool post, std::string target,
                                                         Deadline deadline) const {
  Result<json> object = co_await object_request(post, std::move(target), {}, deadline);
  if (!object) co_return object.error();
  co_return decode_site(*object);
}

asio::awaitable<Result<PoolInfo>> WebAdmin::pool_request(bool post, std::string target,
                                                         Deadline deadline) const {
  Result<json> object = co_await object_request(post, std::move(target), {}, deadline);
  if (!object) co_return object.error();
  co_return decode_pool(*object);
}

asio::awaitable<Result<SiteInfo>> WebAdmin::site(std::string name, Deadline deadline) const {
  co_return co_await site_request(false, "/v1/sites/" + name, deadline);
}

asio::awaitable<Result<SiteInfo>> WebAdmin::start_site(std::string name, Deadline deadline) const {
  co_return co_await site_request(true, "/v1/sites/" + name + "/start", deadline);
}

asio::awaitable<Result<SiteInfo>> WebAdmin::stop_site(std::string name, Deadline deadline) const {
  co_return co_await site_request(true, "/v1/sites/" + name + "/stop", deadline);
}

asio::awaitable<Result<std::vector<SiteInfo>>> WebAdmin::sites(Deadline deadline) const {
  Result<json> object = co_await object_request(false, "/v1/sites", {}, deadline);
  if (!object) co_return object.error();
  const auto list = object->find("sites");
  if (list == object->end() || !list->is_array()) {
    co_return admin_error(kAdminBadReply, "/v1/sites: no list of sites");
  }
  std::vector<SiteInfo> sites;
  for (const json& entry : *list) {
    Result<SiteInfo> site = decode_site(entry);
    if (!site) co_return site.error();
    sites.push_back(std::move(*site));
  }
  co_return sites;
}

asio::awaitable<Result<SharedConfigInfo>> WebAdmin::reload(Deadline deadline) const {
  Result<json> object = co_await object_request(true, "/v1/reload", {}, deadline);
  if (!object) co_return object.error();
  SharedConfigInfo info;
  if (const auto shared = object->find("sharedConfig");
      shared != object->end() && shared->is_object()) {
    read_int(*shared, "revision", info.revision);
    read_string(*shared, "problem", info.problem);
  }
  co_return info;
}

asio::awaitable<Result<PoolInfo>> WebAdmin::pool(std::string name, Deadline deadline) const {
  co_return co_await pool_request(false, "/v1/pools/" + name, deadline);
}

asio::awaitable<Result<PoolInfo>> WebAdmin::start_pool(std::string name, Deadline deadline) const {
  co_return co_await pool_request(true, "/v1/pools/" + name + "/start", deadline);
}

asio::awaitable<Result<PoolInfo>> WebAdmin::stop_pool(std::string name, Deadline deadline) const {
  co_return co_await pool_request(true, "/v1/pools/" + name + "/stop", deadline);
}

asio::awaitable<Result<PermitInfo>> WebAdmin::grant_permit(std::string site,
                                                           std::int64_t deadline_boottime_ms,
                                                           Deadline deadline) const {
  const std::string target = "/v1/permits/" + site;
  json request;
  request["deadlineBoottimeMs"] = deadline_boottime_ms;
  Result<json> object = co_await object_request(true, target, request.dump(), deadline);
  if (!object) co_return object.error();
  PermitInfo permit;
  if (!read_string(*object, "site", permit.site)) {
    co_return admin_error(kAdminBadReply, fmt::format("{}: no site in the reply", target));
  }
  read_int(*object, "permitRemainingMs", permit.remaining_ms);  // null: none
  co_return permit;
}

struct WebEventStream::Impl {
  Impl(asio::any_io_executor executor, std::string path, std::stop_token stop_token)
      : socket_path(std::move(path)),
        stop(std::move(stop_token)),
        stream(std::move(executor)),
        on_stop(stop, CloseOnStop{&stream}) {}

  // A complete line of the body, or nothing when none has arrived yet.
  std::optional<std::string> take_line() {
    const auto newline = pending.find('\n');
    if (newline == std::string::npos) return std::nullopt;
    std::string line = pending.substr(0, newline);
    pending.erase(0, newline + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  std::string socket_path;
  std::stop_token stop;
  LocalStream stream;
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  std::string pending;  // body bytes after the last complete line
  bool opened = false;
  std::optional<Error> broken;              // why the stream ended, once it has
  std::stop_callback<CloseOnStop> on_stop;  // last: deregistered before the stream goes
};

WebEventStream::WebEventStream(asio::any_io_executor executor, std::string socket_path,
                               std::stop_token stop)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(socket_path), std::move(stop))) {}

WebEventStream::~WebEventStream() = default;

asio::awaitable<Status> WebEventStream::open(WebAdmin::Deadline deadline) {
  Impl& impl = *impl_;
  if (impl.stop.stop_requested()) co_return stopped_error();
  if (!path_fits(impl.socket_path)) {
    co_return admin_error(kAdminUnreachable,
                          fmt::format("not a usable socket path: \"{}\"", impl.socket_path));
  }
  impl.stream.expires_at(deadline);
  auto [connect_error] =
      co_await impl.stream.async_connect(Local::endpoint(impl.socket_path), kTuple);
  if (impl.stop.stop_requested()) co_return stopped_error();
  if (connect_error) co_return transport_error(impl.socket_path, connect_error);

  http::request<http::empty_body> request{http::verb::get, "/v1/events", 11};
  request.set(http::field::host, "localhost");
  request.set(http::field::user_agent, "clusweb-agent");
  request.set(http::field::accept, "application/x-ndjson");
  auto [write_error, written] = co_await http::async_write(impl.stream, request, kTuple);
  if (impl.stop.stop_requested()) co_return stopped_error();
  if (write_error) co_return transport_error(impl.socket_path, write_error);

  impl.parser.body_limit(boost::none);  // the stream has no end by design
  auto [read_error, read] =
      co_await http::async_read_header(impl.stream, impl.buffer, impl.parser, kTuple);
  if (impl.stop.stop_requested()) co_return stopped_error();
  if (read_error) co_return transport_error(impl.socket_path, read_error);
  const int status = static_cast<int>(impl.parser.get().result_int());
  if (status != 200) {
    co_return admin_error(status == 404 ? kAdminNotFound : kAdminRefused,
                          fmt::format("/v1/events: status {}", status));
  }
  impl.stream.expires_never();
  impl.opened = true;
  co_return ok_status();
}

asio::awaitable<Result<WebEventInfo>> WebEventStream::next() {
  Impl& impl = *impl_;
  std::array<char, 4096> chunk{};
  while (true) {
    if (impl.stop.stop_requested()) co_return stopped_error();
    // Lines that arrived before the stream broke still count.
    if (std::optional<std::string> line = impl.take_line()) {
      if (std::optional<WebEventInfo> event = decode_event(*line)) co_return std::move(*event);
      continue;
    }
    if (impl.broken) co_return *impl.broken;
    if (!impl.opened) co_return admin_error(kAdminUnreachable, "event stream not open");
    if (impl.pending.size() > kMaxEventLineBytes) {
      impl.broken = admin_error(kAdminBadReply, "/v1/events: a line too long");
      continue;
    }
    if (impl.parser.is_done()) {
      impl.broken =
          admin_error(kAdminUnreachable,
                      fmt::format("web service at {}: event stream ended", impl.socket_path));
      continue;
    }
    impl.parser.get().body().data = chunk.data();
    impl.parser.get().body().size = chunk.size();
    auto [ec, read] = co_await http::async_read_some(impl.stream, impl.buffer, impl.parser, kTuple);
    if (impl.stop.stop_requested()) co_return stopped_error();
    impl.pending.append(chunk.data(), chunk.size() - impl.parser.get().body().size);
    if (ec && ec != http::error::need_buffer) {
      impl.broken = transport_error(impl.socket_path, ec);
      impl.pending += '\n';  // a last line without its line break
    }
  }
}

}  // namespace clusweb::resources
