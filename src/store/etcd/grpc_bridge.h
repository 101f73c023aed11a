#pragma once

// Bridges gRPC's callback API to Asio: a gRPC thread finishes a call, the
// result is posted to the Asio executor that awaits it. Internal to EtcdStore.

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace clusweb::store::etcd {

// One gRPC call or stream: its context outlives it (the state is shared with
// gRPC's callbacks). `canceled_by_caller` is set and read on the executor.
//
// A Call is never destroyed on a gRPC thread: its ClientContext holds the
// grpc::Channel, and destroying the last channel inside one of gRPC's
// callbacks shuts down the completion queue that thread is serving and tries
// to join the thread itself; gRPC then aborts on the freed queue
// ("ref_counted.h: assertion failed: prior > 0", see grpc/grpc#32584). So
// async_call() hands gRPC's reference back to the executor when the call ends.
struct Call {
  virtual ~Call() = default;
  grpc::ClientContext context;
  bool canceled_by_caller = false;
};

// The calls in flight of one store, so that closing the store can cancel them
// and wait until gRPC has finished with each. Thread-safe.
class CallTracker {
 public:
  using Ticket = std::uint64_t;

  // Registers a call about to start and returns its ticket for end(); nothing
  // once closed: start nothing then.
  std::optional<Ticket> begin(const std::shared_ptr<Call>& call);
  // The call's final callback is done with everything but its own captures.
  // By ticket, not by address: the call may already be gone and its address
  // reused by a new call.
  void end(Ticket ticket);
  // Refuses new calls, cancels those in flight and blocks until each has ended.
  // gRPC runs the final callbacks promptly after a cancel, on its own threads.
  void close();
  bool closed() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::unordered_map<Ticket, std::weak_ptr<Call>> active_;
  Ticket next_ticket_ = 0;
  bool closed_ = false;
};

// A completion handler that may be completed once from any thread: it is
// posted to its associated executor (else `fallback`), and keeps that
// executor's work count up until then so the io_context does not run dry.
template <class... Args>
class Completion {
 public:
  virtual ~Completion() = default;
  virtual void complete(Args... args) = 0;
};

template <class Handler, class... Args>
class PostingCompletion final : public Completion<Args...> {
 public:
  PostingCompletion(Handler handler, const boost::asio::any_io_executor& fallback)
      : work_(boost::asio::prefer(boost::asio::get_associated_executor(handler, fallback),
                                  boost::asio::execution::outstanding_work.tracked)),
        handler_(std::move(handler)) {}

  void complete(Args... args) override {
    auto work = std::move(work_);
    boost::asio::post(work, [handler = std::move(handler_), ... args = std::move(args)]() mutable {
      // A cancellation handler installed by the initiation must not outlive it.
      auto slot = boost::asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected()) slot.clear();
      std::move(handler)(std::move(args)...);
    });
  }

 private:
  using WorkExecutor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>>(),
      boost::asio::execution::outstanding_work.tracked))>;
  WorkExecutor work_;
  Handler handler_;
};

// The status of a finished call; `start(on_done)` starts it and has gRPC call
// `on_done(status)` exactly once (unless the tracker refused the call, which
// completes with CANCELLED). Cancelling the awaiting coroutine (its
// cancellation slot) cancels the call and sets call->canceled_by_caller.
//
// `on_done` owns a reference to the call, so the call lives until gRPC is done
// with it; on_done runs on a gRPC thread and passes that reference to the
// executor (see Call) before it ends the call in the tracker.
template <class Start>
boost::asio::awaitable<grpc::Status> async_call(std::shared_ptr<CallTracker> tracker,
                                                std::shared_ptr<Call> call,
                                                boost::asio::any_io_executor fallback,
                                                Start start) {
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(grpc::Status)>(
      [tracker = std::move(tracker), call = std::move(call), fallback = std::move(fallback)](
          auto handler, Start start_call) {
        using Handler = decltype(handler);
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        auto completion = std::make_shared<PostingCompletion<Handler, grpc::Status>>(
            std::move(handler), fallback);
        const std::optional<CallTracker::Ticket> ticket = tracker->begin(call);
        if (!ticket) {
          completion->complete(grpc::Status(grpc::StatusCode::CANCELLED, "store closed"));
          return;
        }
        if (slot.is_connected()) {
          slot.assign([weak = std::weak_ptr<Call>(call)](boost::asio::cancellation_type) {
            if (auto alive = weak.lock()) {
              alive->canceled_by_caller = true;
              alive->context.TryCancel();
            }
          });
        }
        start_call(
            std::function<void(grpc::Status)>([tracker, call, completion, executor = fallback,
                                               ticket = *ticket](grpc::Status status) mutable {
              completion->complete(std::move(status));
              // gRPC's reference goes to the executor (see Call), before
              // end(): until then closing the store waits, so the executor's
              // execution context still exists.
              boost::asio::post(executor, [released = std::move(call)] {});
              tracker->end(ticket);
            }));
      },
      boost::asio::use_awaitable, std::move(start));
}

// A unary call's state: request and response live as long as gRPC needs them.
// The request is shared by the attempts of one call.
template <class Request, class Response>
struct UnaryCall final : Call {
  std::shared_ptr<const Request> request;
  Response response;
};

// A bidi stream used for one request and one response (etcd's LeaseKeepAlive
// has no unary form): writes the request with writes-done, reads one reply,
// then reports the status; `got_response` says whether the reply came.
template <class Request, class Response>
class OneShotStream final : public Call, public grpc::ClientBidiReactor<Request, Response> {
 public:
  Request request;
  Response response;
  bool got_response = false;  // written by gRPC before on_done runs

  // `open(context, reactor)` binds the stream (stub->async()->Method(...)).
  // `on_done` is async_call's: it keeps the stream alive until OnDone, the
  // last reaction, and then releases it on the executor.
  // (clang-tidy 14 misreads the move below as a copy.)
  template <class Open>
  static void start(
      const std::shared_ptr<OneShotStream>& stream, const Open& open,
      std::function<void(grpc::Status)> on_done) {  // NOLINT(performance-unnecessary-value-param)
    stream->on_done_ = std::move(on_done);
    open(&stream->context, stream.get());
    stream->StartWriteLast(&stream->request, grpc::WriteOptions());
    stream->StartRead(&stream->response);
    stream->StartCall();
  }

  void OnReadDone(bool ok) override { got_response = ok; }
  void OnDone(const grpc::Status& status) override {
    // Out of the member first: on_done may let the stream be destroyed.
    auto on_done = std::move(on_done_);
    if (status.ok() && !got_response) {
      on_done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed without a reply"));
    } else {
      on_done(status);
    }
  }

 private:
  std::function<void(grpc::Status)> on_done_;
};

}  // namespace clusweb::store::etcd
