#include "store/etcd/etcd_client.h"

#include <fmt/format.h>

#include <charconv>
#include <climits>
#include <fstream>
#include <sstream>

#include "base/log.h"

namespace clusweb::store::etcd {
namespace {

Result<std::string> read_pem(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return store_error(Code::kInvalidArgument, fmt::format("cannot read {}", what), path);
  std::ostringstream content;
  content << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return store_error(Code::kInvalidArgument, fmt::format("cannot read {}", what), path);
  }
  return content.str();
}

Status check_endpoint(const std::string& endpoint) {
  auto invalid = [&endpoint](std::string_view why) {
    return store_error(Code::kInvalidArgument,
                       fmt::format("etcd endpoint must be host:port ({})", why), endpoint);
  };
  if (endpoint.find("://") != std::string::npos) return invalid("no scheme");
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0) return invalid("no port");
  std::string_view port_text = std::string_view(endpoint).substr(colon + 1);
  unsigned port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return invalid("bad port");
  }
  return ok_status();
}

// Everything check_options() checks but the TLS files.
Status check_settings(const EtcdOptions& options) {
  if (options.endpoints.empty()) {
    return store_error(Code::kInvalidArgument, "no etcd endpoint given", "etcd");
  }
  for (const auto& endpoint : options.endpoints) {
    if (auto status = check_endpoint(endpoint); !status) return status;
  }
  if (options.call_timeout <= std::chrono::milliseconds(0)) {
    return store_error(Code::kInvalidArgument, "etcd call timeout must be positive", "etcd");
  }
  if (options.watch_retry_initial <= std::chrono::milliseconds(0) ||
      options.watch_retry_max < options.watch_retry_initial) {
    return store_error(Code::kInvalidArgument,
                       "etcd watch retry must be positive and initial <= max", "etcd");
  }
  if (options.credentials && options.credentials->user.empty()) {
    return store_error(Code::kInvalidArgument, "etcd user name is empty", "etcd");
  }
  return ok_status();
}

}  // namespace

Result<std::shared_ptr<grpc::ChannelCredentials>> make_credentials(const EtcdOptions& options) {
  if (!options.tls) return grpc::InsecureChannelCredentials();
  const EtcdTls& tls = *options.tls;
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return store_error(Code::kInvalidArgument,
                       "tls client certificate and key must be given together", "etcd tls");
  }
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca_file.empty()) {
    auto ca = read_pem(tls.ca_file, "tls ca file");
    if (!ca) return ca.error();
    ssl.pem_root_certs = std::move(*ca);
  }
  if (!tls.cert_file.empty()) {
    auto cert = read_pem(tls.cert_file, "tls certificate file");
    if (!cert) return cert.error();
    auto key = read_pem(tls.key_file, "tls key file");
    if (!key) return key.error();
    ssl.pem_cert_chain = std::move(*cert);
    ssl.pem_private_key = std::move(*key);
  }
  return grpc::SslCredentials(ssl);
}

grpc::ChannelArguments channel_arguments() {
  grpc::ChannelArguments args;
  // Pings find a silently dead member under a long-lived watch, and a
  // connection that a partition left hanging: within 9 s of the last byte
  // received it is closed and made again, rather than when TCP's backed-off
  // retransmissions next get through. etcd refuses pings more often than
  // every 5 s (--grpc-keepalive-min-time) and pings on a connection without calls.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 6'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A restarted member is found again within a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1'000);
  // Ranges over many keys can be large; etcd bounds requests itself.
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, INT_MAX);
  // Connections belong to this store alone: closing it or a test killing a
  // member affects no other store in the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

EtcdClient::EtcdClient(boost::asio::any_io_executor executor, EtcdOptions options)
    : executor_(std::move(executor)), options_(std::move(options)) {
  options_status_ = check_settings(options_);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options_status_) {
    auto made = make_credentials(options_);
    if (made) {
      credentials = std::move(*made);
    } else {
      options_status_ = made.error();
    }
  }
  if (!options_status_) {
    logger("store")->error("etcd options invalid error=\"{}\"", options_status_.error().describe());
    return;
  }
  const grpc::ChannelArguments args = channel_arguments();
  endpoints_.reserve(options_.endpoints.size());
  for (const auto& address : options_.endpoints) {
    Endpoint endpoint;
    endpoint.address = address;
    endpoint.channel = grpc::CreateCustomChannel(address, credentials, args);
    endpoint.kv = pb::KV::NewStub(endpoint.channel);
    endpoint.watch = pb::Watch::NewStub(endpoint.channel);
    endpoint.lease = pb::Lease::NewStub(endpoint.channel);
    endpoint.auth = pb::Auth::NewStub(endpoint.channel);
    endpoint.maintenance = pb::Maintenance::NewStub(endpoint.channel);
    endpoint.cluster = pb::Cluster::NewStub(endpoint.channel);
    endpoints_.push_back(std::move(endpoint));
  }
}

void EtcdClient::prepare(grpc::ClientContext& context, bool deadline,
                         const AttemptOptions& how) const {
  if (deadline) {
    context.set_deadline(std::chrono::system_clock::now() +
                         how.timeout.value_or(options_.call_timeout));
  }
  // A member without a leader refuses at once instead of waiting for one.
  if (how.require_leader) context.AddMetadata("hasleader", "true");
  if (!token_.empty()) context.AddMetadata("token", token_);
}

boost::asio::awaitable<std::optional<AttemptError>> EtcdClient::ensure_token(std::size_t index) {
  if (!options_.credentials || !token_.empty()) co_return std::nullopt;
  auto self = shared_from_this();
  pb::AuthenticateRequest request;
  request.set_name(options_.credentials->user);
  request.set_password(options_.credentials->password);
  count_call();
  auto result = co_await attempt_unary<pb::AuthenticateResponse>(
      index, std::make_shared<const pb::AuthenticateRequest>(std::move(request)),
      [](Endpoint& target, grpc::ClientContext* context, const pb::AuthenticateRequest* in,
         pb::AuthenticateResponse* out, std::function<void(grpc::Status)> done) {
        target.auth->async()->Authenticate(context, in, out, std::move(done));
      });
  if (closed()) co_return AttemptError{Verdict{}, closed_error("authenticate")};
  if (result.status.ok()) {
    token_ = result.response.token();
    co_return std::nullopt;
  }
  AttemptError failed = failure("authenticate", index, result.status, Retry::kSafe);
  if (failed.verdict.action == Verdict::Action::kReauthenticate) {
    failed.verdict.action = Verdict::Action::kFail;
  }
  co_return failed;
}

AttemptError EtcdClient::failure(std::string_view method, std::size_t index,
                                 const grpc::Status& status, Retry retry) const {
  Verdict verdict = classify(status.error_code(), status.error_message(), retry);
  const std::string& address = endpoints_[index].address;
  Error error =
      store_error(verdict.code,
                  fmt::format("etcd {} failed on {}: {} (grpc code {})", method, address,
                              status.error_message(), static_cast<int>(status.error_code())),
                  address);
  logger("store")->debug("etcd call failed method={} endpoint={} code={} grpc_code={} error=\"{}\"",
                         method, address, code_name(verdict.code),
                         static_cast<int>(status.error_code()), status.error_message());
  return AttemptError{verdict, std::move(error)};
}

Error EtcdClient::closed_error(std::string_view method) const {
  return store_error(Code::kCanceled, fmt::format("etcd {}: the store was closed", method), "etcd");
}

boost::asio::awaitable<Attempted<pb::LeaseKeepAliveResponse>> EtcdClient::attempt_keepalive(
    std::size_t index, LeaseId id) {
  using Stream = OneShotStream<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>;
  auto stream = std::make_shared<Stream>();
  stream->request.set_id(id);
  prepare(stream->context, true);
  Endpoint& target = endpoints_[index];
  auto begin = [&target, stream](std::function<void(grpc::Status)> done) {
    Stream::start(
        stream,
        [&target](grpc::ClientContext* context, Stream* reactor) {
          target.lease->async()->LeaseKeepAlive(context, reactor);
        },
        std::move(done));
  };
  grpc::Status status = co_await async_call(tracker_, stream, executor_, std::move(begin));
  co_return Attempted<pb::LeaseKeepAliveResponse>{std::move(status), std::move(stream->response),
                                                  stream->canceled_by_caller};
}

boost::asio::awaitable<Result<pb::LeaseKeepAliveResponse>> EtcdClient::keepalive(LeaseId id) {
  auto attempt = [this, id](std::size_t index) { return attempt_keepalive(index, id); };
  co_return co_await call<pb::LeaseKeepAliveResponse>("keepalive", Retry::kSafe,
                                                      std::move(attempt));
}

}  // namespace clusweb::store::etcd

namespace clusweb::store {

Status check_options(const EtcdOptions& options) {
  if (auto settings = etcd::check_settings(options); !settings) return settings;
  if (auto credentials = etcd::make_credentials(options); !credentials) return credentials.error();
  return ok_status();
}

}  // namespace clusweb::store
