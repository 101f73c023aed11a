#pragma once

#include <optional>
#include <string>

#include "store/store.h"

namespace clusweb::store {

// Leadership over one key bound to the candidate's lease (the coordinator
// election; also the shape of group ownership): the leader is whoever
// created the key, and the key's create_revision is its fencing token.
// Acquired by a transaction `create_revision == 0`; a lost reply is resolved
// by reading the key back (ours if it carries our lease and value). The key
// disappears with the lease, so a dead leader is replaced once its lease
// expires. Use from the store's executor; one campaign at a time.
class Election {
 public:
  Election(Store& store, std::string key, std::string value, LeaseId lease);

  // One attempt: true when this candidate leads afterwards (already leading
  // counts). Errors only when the store cannot say (e.g. kUnavailable).
  boost::asio::awaitable<Result<bool>> try_acquire();
  // Returns once this candidate leads: tries, and between tries waits for
  // the leader's key to be deleted.
  boost::asio::awaitable<Status> campaign();
  // Steps down: deletes the key if it is still ours (compared by create
  // revision, so a successor's key is never touched).
  boost::asio::awaitable<Status> resign();
  // The current leader's key, if any.
  boost::asio::awaitable<Result<std::optional<KeyValue>>> leader();
  // Waits until the leader is no longer the one created at
  // `create_revision` (0 = no leader) and returns the new one.
  boost::asio::awaitable<Result<std::optional<KeyValue>>> observe(Revision create_revision);

  bool leading() const { return token_ != 0; }
  // The fencing token while leading: the key's create_revision; else 0.
  Revision token() const { return token_; }
  const std::string& key() const { return key_; }

 private:
  bool is_ours(const KeyValue& kv) const { return kv.lease == lease_ && kv.value == value_; }

  Store& store_;
  std::string key_;
  std::string value_;
  LeaseId lease_;
  Revision token_ = 0;
};

}  // namespace clusweb::store
