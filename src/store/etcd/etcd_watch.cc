#include "store/etcd/etcd_watch.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>

#include "base/log.h"
#include "store/etcd/etcd_client.h"

namespace clusweb::store::etcd {
namespace {

class WatchState;

// One Watch RPC carrying one etcd watcher. gRPC runs its reactions on its own
// threads; each one is posted to the executor, in order, for WatchState.
class WatchStream final : public Call,
                          public grpc::ClientBidiReactor<pb::WatchRequest, pb::WatchResponse> {
 public:
  WatchStream(std::weak_ptr<WatchState> state, boost::asio::any_io_executor executor,
              std::uint64_t id)
      : state_(std::move(state)), executor_(std::move(executor)), id_(id) {}

  pb::WatchRequest create;  // set before start()

  // `on_done` is async_call's: it keeps the stream alive until OnDone, the
  // last reaction, and then releases it on the executor.
  static void start(const std::shared_ptr<WatchStream>& stream, pb::Watch::Stub& stub,
                    std::function<void(grpc::Status)> on_done) {
    stream->on_done_ = std::move(on_done);
    stub.async()->Watch(&stream->context, stream.get());
    stream->StartWrite(&stream->create);
    stream->StartRead(&stream->response_);
    stream->StartCall();
  }

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override {
    // Out of the member first: on_done may let the stream be destroyed.
    auto on_done = std::move(on_done_);
    on_done(status);
  }

 private:
  std::weak_ptr<WatchState> state_;
  boost::asio::any_io_executor executor_;
  std::uint64_t id_;
  pb::WatchResponse response_;
  std::function<void(grpc::Status)> on_done_;
};

// The executor-side state of one watch. Only the executor touches it.
class WatchState : public std::enable_shared_from_this<WatchState> {
 public:
  WatchState(std::shared_ptr<EtcdClient> client, WatchOptions options)
      : client_(std::move(client)),
        options_(std::move(options)),
        create_deadline_(client_->executor()),
        backoff_(client_->executor()),
        next_revision_(options_.start_revision) {}

  boost::asio::awaitable<Status> start();
  boost::asio::awaitable<Result<WatchBatch>> next();
  void cancel() {
    batches_.clear();
    finish(store_error(Code::kCanceled, "etcd watch canceled", options_.key));
  }
  Revision compact_revision() const { return compact_revision_; }

  void on_response(std::uint64_t stream_id, const pb::WatchResponse& response);

 private:
  boost::asio::awaitable<void> supervise();
  // Runs one stream on endpoint `index` until it ends; whether it was created.
  boost::asio::awaitable<std::pair<grpc::Status, bool>> run_stream(std::size_t index);
  boost::asio::awaitable<void> wait(std::unique_ptr<Completion<>>& slot, bool cancellable);
  void finish(Error error);
  static void wake(std::unique_ptr<Completion<>>& slot) {
    if (slot) std::exchange(slot, nullptr)->complete();
  }

  std::shared_ptr<EtcdClient> client_;
  WatchOptions options_;
  boost::asio::steady_timer create_deadline_;
  boost::asio::steady_timer backoff_;
  Revision next_revision_;  // the first revision not yet received; 0 = "now" until created
  Revision compact_revision_ = 0;
  std::deque<WatchBatch> batches_;
  std::optional<Error> finished_;
  std::optional<Status> creation_;  // set once the first stream is created or creation failed
  std::shared_ptr<WatchStream> stream_;
  std::uint64_t stream_id_ = 0;
  bool stream_created_ = false;
  std::size_t endpoint_ = 0;
  std::unique_ptr<Completion<>> waiter_;  // next()
  bool waiter_canceled_ = false;
  std::unique_ptr<Completion<>> creation_waiter_;  // start()
};

void WatchStream::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  boost::asio::post(executor_,
                    [state = state_, id = id_, response = std::move(response_)]() mutable {
                      if (auto alive = state.lock()) alive->on_response(id, response);
                    });
  response_.Clear();
  StartRead(&response_);
}

boost::asio::awaitable<void> WatchState::wait(std::unique_ptr<Completion<>>& slot,
                                              bool cancellable) {
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(
      [this, &slot, cancellable](auto handler) {
        auto cancellation = boost::asio::get_associated_cancellation_slot(handler);
        if (cancellable && cancellation.is_connected()) {
          cancellation.assign([this](boost::asio::cancellation_type) {
            if (!waiter_) return;
            waiter_canceled_ = true;
            wake(waiter_);
          });
        }
        slot = std::make_unique<PostingCompletion<decltype(handler)>>(std::move(handler),
                                                                      client_->executor());
      },
      boost::asio::use_awaitable);
}

boost::asio::awaitable<Status> WatchState::start() {
  auto self = shared_from_this();
  boost::asio::co_spawn(client_->executor(), supervise(), boost::asio::detached);
  while (!creation_) co_await wait(creation_waiter_, false);
  co_return *creation_;
}

boost::asio::awaitable<Result<WatchBatch>> WatchState::next() {
  auto self = shared_from_this();
  for (;;) {
    if (!batches_.empty()) {
      WatchBatch batch = std::move(batches_.front());
      batches_.pop_front();
      co_return batch;
    }
    if (finished_) co_return *finished_;
    if (waiter_) {
      co_return store_error(Code::kInvalidArgument, "etcd watch: next() already has a waiter",
                            options_.key);
    }
    co_await wait(waiter_, true);
    if (std::exchange(waiter_canceled_, false)) {
      co_return store_error(Code::kCanceled, "etcd watch: next() canceled by the caller",
                            options_.key);
    }
  }
}

void WatchState::finish(Error error) {
  if (finished_) return;
  finished_ = std::move(error);
  create_deadline_.cancel();
  backoff_.cancel();
  if (stream_) stream_->context.TryCancel();
  if (!creation_) creation_ = Status(*finished_);
  wake(creation_waiter_);
  wake(waiter_);
}

void WatchState::on_response(std::uint64_t stream_id, const pb::WatchResponse& response) {
  if (stream_id != stream_id_ || finished_) return;
  auto log = logger("store");
  if (response.created()) {
    if (response.canceled()) {
      // etcd refused to create the watcher (bad range, no permission).
      const Code code = response.cancel_reason().find("permission denied") != std::string::npos
                            ? Code::kPermissionDenied
                            : Code::kInvalidArgument;
      finish(
          store_error(code, "etcd refused the watch: " + response.cancel_reason(), options_.key));
      return;
    }
    stream_created_ = true;
    create_deadline_.cancel();
    if (next_revision_ == 0) next_revision_ = response.header().revision() + 1;
    if (!creation_) {
      creation_ = ok_status();
      wake(creation_waiter_);
    } else {
      log->info("etcd watch resumed key={} endpoint={} revision={}", options_.key,
                client_->endpoint(endpoint_).address, next_revision_);
    }
  }
  if (response.compact_revision() != 0) {
    compact_revision_ = response.compact_revision();
    finish(store_error(Code::kCompacted,
                       fmt::format("etcd watch: revision {} is compacted; oldest available {}",
                                   next_revision_, compact_revision_),
                       options_.key));
    return;
  }
  if (response.canceled()) {
    if (response.cancel_reason().find("permission denied") != std::string::npos) {
      finish(store_error(Code::kPermissionDenied,
                         "etcd canceled the watch: " + response.cancel_reason(), options_.key));
    } else if (stream_) {
      // The stream ends; supervise() resumes elsewhere.
      stream_->context.TryCancel();
    }
    return;
  }
  WatchBatch batch;
  batch.revision = response.header().revision();
  for (const auto& event : response.events()) {
    // A resumed stream starts at next_revision_; anything older is a repeat.
    if (event.kv().mod_revision() < next_revision_) continue;
    batch.events.push_back(from_pb(event));
  }
  if (batch.events.empty()) return;
  next_revision_ = batch.events.back().kv.mod_revision + 1;
  batches_.push_back(std::move(batch));
  wake(waiter_);
}

boost::asio::awaitable<std::pair<grpc::Status, bool>> WatchState::run_stream(std::size_t index) {
  const std::uint64_t id = ++stream_id_;
  auto stream = std::make_shared<WatchStream>(weak_from_this(), client_->executor(), id);
  client_->prepare(stream->context, false);
  to_pb(options_, next_revision_, stream->create.mutable_create_request());
  stream_ = stream;
  stream_created_ = false;
  endpoint_ = index;
  // etcd answers a create at once; a stream that stays silent is given up.
  create_deadline_.expires_after(client_->options().call_timeout);
  create_deadline_.async_wait([weak = weak_from_this(), id](boost::system::error_code error) {
    if (error) return;
    auto self = weak.lock();
    if (self && self->stream_id_ == id && !self->stream_created_ && self->stream_) {
      self->stream_->context.TryCancel();
    }
  });
  client_->count_call();
  Endpoint& target = client_->endpoint(index);
  auto begin = [&target, stream](std::function<void(grpc::Status)> done) {
    WatchStream::start(stream, *target.watch, std::move(done));
  };
  grpc::Status status =
      co_await async_call(client_->tracker(), stream, client_->executor(), std::move(begin));
  create_deadline_.cancel();
  stream_.reset();
  if (status.ok()) {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream ended by the server");
  }
  co_return std::make_pair(std::move(status), stream_created_);
}

boost::asio::awaitable<void> WatchState::supervise() {
  auto self = shared_from_this();
  auto log = logger("store");
  const std::size_t count = client_->endpoint_count();
  std::size_t index = client_->preferred();
  std::size_t failures = 0;  // consecutive streams that ended without a working watch
  auto delay = client_->options().watch_retry_initial;
  while (!finished_) {
    if (client_->closed()) {
      finish(store_error(Code::kCanceled, "etcd watch: the store was closed", options_.key));
      break;
    }
    std::optional<AttemptError> failed = co_await client_->ensure_token(index);
    bool created = false;
    if (!failed) {
      auto [status, was_created] = co_await run_stream(index);
      created = was_created;
      if (finished_ || client_->closed()) continue;
      failed = client_->failure("watch", index, status, Retry::kSafe);
    }
    if (finished_ || client_->closed()) continue;
    switch (failed->verdict.action) {
      case Verdict::Action::kFail:
        finish(std::move(failed->error));
        co_return;
      case Verdict::Action::kReauthenticate:
        if (!client_->options().credentials) {
          finish(std::move(failed->error));
          co_return;
        }
        client_->drop_token();
        break;
      case Verdict::Action::kNextEndpoint:
        break;
    }
    if (created) {
      failures = 0;
      delay = client_->options().watch_retry_initial;
    }
    ++failures;
    if (!creation_ && failures >= count) {
      finish(store_error(Code::kUnavailable,
                         "etcd watch: no endpoint available; last: " + failed->error.describe(),
                         options_.key));
      co_return;
    }
    index = (index + 1) % count;
    if (creation_) {
      log->info("etcd watch broken key={} next_endpoint={} revision={} error=\"{}\"", options_.key,
                client_->endpoint(index).address, next_revision_, failed->error.describe());
    }
    // After a working stream broke the next endpoint is tried at once; after
    // that, attempts slow down up to watch_retry_max.
    if (creation_ && failures > 1) {
      backoff_.expires_after(delay);
      boost::system::error_code ignored;
      co_await backoff_.async_wait(
          boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
      delay = std::min(delay * 2, client_->options().watch_retry_max);
    }
  }
}

class EtcdWatch final : public Watch {
 public:
  explicit EtcdWatch(std::shared_ptr<WatchState> state) : state_(std::move(state)) {}
  ~EtcdWatch() override { state_->cancel(); }
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  boost::asio::awaitable<Result<WatchBatch>> next() override { return state_->next(); }
  void cancel() override { state_->cancel(); }
  Revision compact_revision() const override { return state_->compact_revision(); }

 private:
  std::shared_ptr<WatchState> state_;
};

}  // namespace

boost::asio::awaitable<Result<std::unique_ptr<Watch>>> start_watch(
    std::shared_ptr<EtcdClient> client, WatchOptions options) {
  if (!client->options_status()) co_return client->options_status().error();
  auto state = std::make_shared<WatchState>(std::move(client), std::move(options));
  Status created = co_await state->start();
  if (!created) {
    state->cancel();
    co_return created.error();
  }
  co_return std::unique_ptr<Watch>(std::make_unique<EtcdWatch>(std::move(state)));
}

}  // namespace clusweb::store::etcd
