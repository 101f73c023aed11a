#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "store/store.h"

namespace clusweb::store::etcd {

class EtcdClient;

// Creates an etcd watch (one Watch stream per watch) and returns once etcd has
// registered it on some endpoint. The watch then survives broken streams: it
// resumes on the next endpoint from the revision after the last one received,
// waiting watch_retry_initial..watch_retry_max between failed attempts, until
// it is canceled, its history is compacted, or the store is closed.
boost::asio::awaitable<Result<std::unique_ptr<Watch>>> start_watch(
    std::shared_ptr<EtcdClient> client, WatchOptions options);

}  // namespace clusweb::store::etcd
