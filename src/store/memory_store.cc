#include "store/memory_store.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <deque>

#include "base/log.h"

namespace clusweb::store {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::chrono::seconds kMinimumTtl{1};

bool matches(const std::string& key, const std::string& wanted, bool prefix) {
  return prefix ? key.starts_with(wanted) : key == wanted;
}

template <class T>
bool compare_with(const T& actual, Compare::Op op, const T& expected) {
  switch (op) {
    case Compare::Op::kEqual:
      return actual == expected;
    case Compare::Op::kNotEqual:
      return actual != expected;
    case Compare::Op::kLess:
      return actual < expected;
    case Compare::Op::kGreater:
      return actual > expected;
  }
  return false;
}

// The state file's payload: "revision R\n" then, per key not bound to a
// lease, "key CREATE MOD VERSION KEYLEN VALUELEN\n" KEY VALUE "\n".
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view text) : text_(text) {}
  bool done() const { return text_.empty(); }
  bool word(std::string_view expected) {
    if (!text_.starts_with(expected)) return false;
    text_.remove_prefix(expected.size());
    return true;
  }
  bool number(std::int64_t& out, char end) {
    auto [p, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), out);
    if (ec != std::errc() || p == text_.data() + text_.size() || *p != end) return false;
    text_.remove_prefix(static_cast<std::size_t>(p - text_.data()) + 1);
    return true;
  }
  bool bytes(std::string& out, std::int64_t count) {
    if (count < 0 || static_cast<std::uint64_t>(count) > text_.size()) return false;
    out.assign(text_.substr(0, static_cast<std::size_t>(count)));
    text_.remove_prefix(static_cast<std::size_t>(count));
    return true;
  }

 private:
  std::string_view text_;
};

}  // namespace

// A watch fed by the store as it commits; replayed history first.
class MemoryWatch final : public Watch {
 public:
  MemoryWatch(MemoryStore& store, WatchOptions options)
      : store_(&store), options_(std::move(options)), wake_(store.executor_) {}
  ~MemoryWatch() override { detach(); }

  asio::awaitable<Result<WatchBatch>> next() override {
    for (;;) {
      if (canceled_) co_return store_error(Code::kCanceled, "the watch was canceled");
      if (compacted_) {
        co_return store_error(Code::kCompacted,
                              fmt::format("revision {} has been compacted (oldest available: {})",
                                          options_.start_revision, compact_revision_));
      }
      if (!pending_.empty()) {
        WatchBatch batch;
        batch.revision = store_ != nullptr ? store_->revision_ : pending_.back().revision;
        batch.events.reserve(pending_.size());
        for (auto& logged : pending_) batch.events.push_back(std::move(logged.event));
        pending_.clear();
        co_return batch;
      }
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  void cancel() override {
    canceled_ = true;
    detach();
    wake_.cancel();
  }

  Revision compact_revision() const override { return compact_revision_; }

  // Called by the store.
  void deliver(Revision revision, const std::vector<WatchEvent>& events) {
    for (const auto& event : events) {
      if (!matches(event.kv.key, options_.key, options_.prefix)) continue;
      LoggedEvent logged{revision, event};
      if (!options_.prev_kv) logged.event.prev.reset();
      pending_.push_back(std::move(logged));
    }
    if (!pending_.empty()) wake_.cancel();
  }
  void compacted(Revision compact_revision) {
    compacted_ = true;
    compact_revision_ = compact_revision;
    wake_.cancel();
  }
  void store_gone() {
    store_ = nullptr;
    canceled_ = true;
    wake_.cancel();
  }
  const WatchOptions& options() const { return options_; }

 private:
  struct LoggedEvent {
    Revision revision;
    WatchEvent event;
  };
  void detach() {
    if (store_ == nullptr) return;
    auto& list = store_->watches_;
    list.erase(std::remove(list.begin(), list.end(), this), list.end());
    store_ = nullptr;
  }

  MemoryStore* store_;
  WatchOptions options_;
  asio::steady_timer wake_;
  std::deque<LoggedEvent> pending_;
  bool canceled_ = false;
  bool compacted_ = false;
  Revision compact_revision_ = 0;
};

namespace {

// Another client's view of the same MemoryStore.
class MemoryStoreClient final : public Store {
 public:
  explicit MemoryStoreClient(MemoryStore& store) : store_(store) {}
  asio::any_io_executor get_executor() const override { return store_.get_executor(); }
  asio::awaitable<Result<RangeResult>> range(Range r) override {
    return store_.range(std::move(r));
  }
  asio::awaitable<Result<PutResult>> put(Put r) override { return store_.put(std::move(r)); }
  asio::awaitable<Result<DeleteResult>> erase(Delete r) override {
    return store_.erase(std::move(r));
  }
  asio::awaitable<Result<TxnResult>> txn(Txn r) override { return store_.txn(std::move(r)); }
  asio::awaitable<Status> compact(Revision r) override { return store_.compact(r); }
  asio::awaitable<Result<LeaseGrant>> grant(std::chrono::seconds ttl, LeaseId id) override {
    return store_.grant(ttl, id);
  }
  asio::awaitable<Result<std::chrono::seconds>> keepalive(LeaseId id) override {
    return store_.keepalive(id);
  }
  asio::awaitable<Status> revoke(LeaseId id) override { return store_.revoke(id); }
  asio::awaitable<Result<LeaseStatus>> time_to_live(LeaseId id, bool with_keys) override {
    return store_.time_to_live(id, with_keys);
  }
  asio::awaitable<Result<std::unique_ptr<Watch>>> watch(WatchOptions o) override {
    return store_.watch(std::move(o));
  }
  asio::awaitable<Result<StoreHealth>> members(std::chrono::milliseconds timeout) override {
    return store_.members(timeout);
  }

 private:
  MemoryStore& store_;
};

}  // namespace

MemoryStore::MemoryStore(asio::any_io_executor executor, const Clock& clock,
                         MemoryStoreOptions options)
    : executor_(std::move(executor)),
      clock_(clock),
      options_(std::move(options)),
      files_(options_.file_system != nullptr ? *options_.file_system : os_file_system()),
      expiry_timer_(executor_),
      lease_ids_(std::random_device{}()) {}

Result<std::unique_ptr<MemoryStore>> MemoryStore::open(asio::any_io_executor executor,
                                                       const Clock& clock,
                                                       MemoryStoreOptions options) {
  std::unique_ptr<MemoryStore> store(
      new MemoryStore(std::move(executor), clock, std::move(options)));
  if (!store->options_.state_file.empty()) {
    if (auto loaded = store->load(); !loaded) return loaded.error();
  }
  store->schedule_expiry();
  return store;
}

MemoryStore::~MemoryStore() {
  for (auto* watch : watches_) watch->store_gone();
  watches_.clear();
}

std::unique_ptr<Store> MemoryStore::client() { return std::make_unique<MemoryStoreClient>(*this); }

void MemoryStore::schedule_expiry() {
  if (options_.expiry_interval <= 0ms) return;
  expiry_timer_.expires_after(options_.expiry_interval);
  // The timer dies with the store; a canceled wait must not touch it.
  expiry_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    expire_leases();
    schedule_expiry();
  });
}

asio::awaitable<void> MemoryStore::yield() {
  co_await asio::post(executor_, asio::use_awaitable);
  expire_leases();
}

// ---- persistence ----

std::string MemoryStore::serialize() const {
  std::string out = fmt::format("revision {}\n", revision_);
  for (const auto& [key, versions] : keys_) {
    const Version& last = versions.back();
    if (last.tombstone || last.kv.lease != 0) continue;
    out += fmt::format("key {} {} {} {} {}\n", last.kv.create_revision, last.kv.mod_revision,
                       last.kv.version, key.size(), last.kv.value.size());
    out += key;
    out += last.kv.value;
    out += '\n';
  }
  return out;
}

Status MemoryStore::load() {
  auto contents = read_file_checked(files_, options_.state_file);
  if (!contents) return contents.error();
  if (!contents->has_value()) return ok_status();
  PayloadReader reader(**contents);
  auto bad = [&] {
    return Error{"not a valid store state", options_.state_file.string(), 0,
                 static_cast<int>(Code::kInternal)};
  };
  std::int64_t revision = 0;
  if (!reader.word("revision ") || !reader.number(revision, '\n') || revision < 1) return bad();
  while (!reader.done()) {
    std::int64_t create = 0, mod = 0, version = 0, key_length = 0, value_length = 0;
    KeyValue kv;
    if (!reader.word("key ") || !reader.number(create, ' ') || !reader.number(mod, ' ') ||
        !reader.number(version, ' ') || !reader.number(key_length, ' ') ||
        !reader.number(value_length, '\n') || !reader.bytes(kv.key, key_length) ||
        !reader.bytes(kv.value, value_length) || !reader.word("\n") || mod > revision ||
        create > mod || version < 1) {
      return bad();
    }
    kv.create_revision = create;
    kv.mod_revision = mod;
    kv.version = version;
    keys_[kv.key].push_back(Version{mod, false, kv});
  }
  revision_ = revision;
  // History before the restart is gone, as if compacted.
  compact_revision_ = revision;
  logger("store")->info("store state loaded file={} revision={} keys={}",
                        options_.state_file.string(), revision_, keys_.size());
  return ok_status();
}

// ---- reads ----

const KeyValue* MemoryStore::current(const std::string& key) const {
  auto it = keys_.find(key);
  if (it == keys_.end() || it->second.back().tombstone) return nullptr;
  return &it->second.back().kv;
}

std::vector<const KeyValue*> MemoryStore::select(const std::string& key, bool prefix,
                                                 Revision at) const {
  std::vector<const KeyValue*> found;
  auto visit = [&](const std::vector<Version>& versions) {
    // The last version at or before `at`.
    auto it = std::upper_bound(versions.begin(), versions.end(), at,
                               [](Revision r, const Version& v) { return r < v.revision; });
    if (it == versions.begin()) return;
    --it;
    if (!it->tombstone) found.push_back(&it->kv);
  };
  if (!prefix) {
    if (auto it = keys_.find(key); it != keys_.end()) visit(it->second);
    return found;
  }
  for (auto it = keys_.lower_bound(key); it != keys_.end() && it->first.starts_with(key); ++it) {
    visit(it->second);
  }
  return found;
}

Result<RangeResult> MemoryStore::do_range(const Range& request, Revision current) const {
  Revision at = request.revision == 0 ? current : request.revision;
  if (at > current) {
    return store_error(Code::kFutureRevision,
                       fmt::format("revision {} is newer than the store's {}", at, current));
  }
  if (at < compact_revision_) {
    return store_error(Code::kCompacted,
                       fmt::format("revision {} has been compacted (oldest available: {})", at,
                                   compact_revision_));
  }
  auto found = select(request.key, request.prefix, at);
  RangeResult result;
  result.revision = current;
  result.count = static_cast<std::int64_t>(found.size());
  if (request.count_only) return result;
  std::size_t take = found.size();
  if (request.limit > 0 && static_cast<std::size_t>(request.limit) < take) {
    take = static_cast<std::size_t>(request.limit);
    result.more = true;
  }
  result.kvs.reserve(take);
  for (std::size_t i = 0; i < take; ++i) {
    result.kvs.push_back(*found[i]);
    if (request.keys_only) result.kvs.back().value.clear();
  }
  return result;
}

bool MemoryStore::holds(const Compare& compare) const {
  const KeyValue* kv = current(compare.key);
  switch (compare.target) {
    case Compare::Target::kValue:
      // etcd: a value comparison with a missing key fails whatever the operator.
      return kv != nullptr && compare_with(kv->value, compare.op, compare.value);
    case Compare::Target::kVersion:
      return compare_with(kv ? kv->version : 0, compare.op, compare.number);
    case Compare::Target::kCreateRevision:
      return compare_with(kv ? kv->create_revision : 0, compare.op, compare.number);
    case Compare::Target::kModRevision:
      return compare_with(kv ? kv->mod_revision : 0, compare.op, compare.number);
    case Compare::Target::kLease:
      return compare_with(kv ? kv->lease : 0, compare.op, compare.number);
  }
  return false;
}

// ---- writes ----

PutResult MemoryStore::do_put(Batch& batch, const Put& request) {
  auto& versions = keys_[request.key];
  std::optional<KeyValue> prev;
  if (!versions.empty() && !versions.back().tombstone) prev = versions.back().kv;
  KeyValue kv;
  kv.key = request.key;
  kv.value = request.value;
  kv.create_revision = prev ? prev->create_revision : batch.revision;
  kv.mod_revision = batch.revision;
  kv.version = prev ? prev->version + 1 : 1;
  kv.lease = request.lease;
  if (prev && prev->lease != 0 && prev->lease != request.lease) {
    if (auto it = leases_.find(prev->lease); it != leases_.end()) it->second.keys.erase(kv.key);
  }
  if (request.lease != 0) leases_[request.lease].keys.insert(kv.key);
  versions.push_back(Version{batch.revision, false, kv});
  batch.events.push_back(WatchEvent{WatchEvent::Type::kPut, kv, prev});
  PutResult result;
  if (request.prev_kv) result.prev = std::move(prev);
  return result;
}

DeleteResult MemoryStore::do_delete(Batch& batch, const Delete& request) {
  DeleteResult result;
  std::vector<std::string> doomed;
  for (const KeyValue* kv : select(request.key, request.prefix, revision_)) {
    doomed.push_back(kv->key);
  }
  for (const auto& key : doomed) {
    auto& versions = keys_[key];
    if (versions.back().tombstone) continue;  // deleted earlier in this batch
    KeyValue prev = versions.back().kv;
    if (prev.lease != 0) {
      if (auto it = leases_.find(prev.lease); it != leases_.end()) it->second.keys.erase(key);
    }
    KeyValue gone;
    gone.key = key;
    gone.mod_revision = batch.revision;
    versions.push_back(Version{batch.revision, true, gone});
    batch.events.push_back(WatchEvent{WatchEvent::Type::kDelete, gone, prev});
    ++result.deleted;
    if (request.prev_kv) result.prev.push_back(std::move(prev));
  }
  return result;
}

Status MemoryStore::check_writes(const std::vector<Operation>& operations) const {
  std::set<std::string> put_keys;
  for (const auto& operation : operations) {
    if (const auto* put = std::get_if<Put>(&operation)) {
      if (!put_keys.insert(put->key).second) {
        return store_error(Code::kInvalidArgument, "duplicate key given in txn request", put->key);
      }
      if (put->lease != 0 && leases_.count(put->lease) == 0) {
        return store_error(Code::kLeaseNotFound, fmt::format("lease {:x} not found", put->lease),
                           put->key);
      }
    }
  }
  for (const auto& operation : operations) {
    if (const auto* erase = std::get_if<Delete>(&operation)) {
      for (const auto& key : put_keys) {
        if (matches(key, erase->key, erase->prefix)) {
          return store_error(Code::kInvalidArgument, "duplicate key given in txn request", key);
        }
      }
    }
  }
  return ok_status();
}

void MemoryStore::undo(const Batch& batch) {
  for (auto it = batch.events.rbegin(); it != batch.events.rend(); ++it) {
    const std::string& key = it->kv.key;
    auto& versions = keys_[key];
    versions.pop_back();
    if (it->type == WatchEvent::Type::kPut && it->kv.lease != 0) {
      if (auto lease = leases_.find(it->kv.lease); lease != leases_.end()) {
        lease->second.keys.erase(key);
      }
    }
    if (it->prev && it->prev->lease != 0) {
      if (auto lease = leases_.find(it->prev->lease); lease != leases_.end()) {
        lease->second.keys.insert(key);
      }
    }
    if (versions.empty()) keys_.erase(key);
  }
}

Status MemoryStore::commit(Batch& batch, bool undo_on_failure) {
  if (batch.events.empty()) return ok_status();
  const Revision previous = revision_;
  revision_ = batch.revision;
  Status saved;
  if (!options_.state_file.empty()) {
    saved = write_file_atomically(files_, options_.state_file, serialize());
    if (!saved) {
      logger("store")->error("cannot persist store state file={} error=\"{}\"",
                             options_.state_file.string(), saved.error().describe());
      if (undo_on_failure) {
        revision_ = previous;
        undo(batch);
        return store_error(Code::kUnavailable,
                           "cannot persist the store state: " + saved.error().describe());
      }
    }
  }
  for (const auto& event : batch.events) log_.push_back(LoggedEvent{batch.revision, event});
  // Watchers may detach while being told; work on a copy of the list.
  auto watches = watches_;
  for (auto* watch : watches) watch->deliver(batch.revision, batch.events);
  return ok_status();
}

void MemoryStore::revoke_lease(LeaseId id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  std::set<std::string> keys = std::move(it->second.keys);
  leases_.erase(it);
  Batch batch{revision_ + 1, {}};
  for (const auto& key : keys) do_delete(batch, Delete{key});
  // The keys go with their lease whatever the disk says: keys bound to
  // leases are never persisted, and a later save records the revision.
  (void)commit(batch, /*undo_on_failure=*/false);
}

void MemoryStore::expire_leases() {
  const auto now = clock_.now();
  std::vector<LeaseId> expired;
  for (const auto& [id, lease] : leases_) {
    if (lease.deadline <= now) expired.push_back(id);
  }
  for (LeaseId id : expired) {
    logger("store")->debug("lease expired lease={:x}", id);
    revoke_lease(id);
  }
}

// ---- the Store interface ----

asio::awaitable<Result<RangeResult>> MemoryStore::range(Range request) {
  co_await yield();
  co_return do_range(request, revision_);
}

asio::awaitable<Result<PutResult>> MemoryStore::put(Put request) {
  co_await yield();
  if (request.lease != 0 && leases_.count(request.lease) == 0) {
    co_return store_error(Code::kLeaseNotFound, fmt::format("lease {:x} not found", request.lease),
                          request.key);
  }
  Batch batch{revision_ + 1, {}};
  PutResult result = do_put(batch, request);
  if (auto committed = commit(batch); !committed) co_return committed.error();
  result.revision = revision_;
  co_return result;
}

asio::awaitable<Result<DeleteResult>> MemoryStore::erase(Delete request) {
  co_await yield();
  Batch batch{revision_ + 1, {}};
  DeleteResult result = do_delete(batch, request);
  if (auto committed = commit(batch); !committed) co_return committed.error();
  result.revision = revision_;
  co_return result;
}

asio::awaitable<Result<TxnResult>> MemoryStore::txn(Txn request) {
  co_await yield();
  TxnResult result;
  result.succeeded = std::all_of(request.compare.begin(), request.compare.end(),
                                 [&](const Compare& c) { return holds(c); });
  const auto& branch = result.succeeded ? request.success : request.failure;
  if (auto checked = check_writes(branch); !checked) co_return checked.error();
  // Reads inside the branch must not fail half-way: check them first.
  for (const auto& operation : branch) {
    if (const auto* read = std::get_if<Range>(&operation)) {
      Range probe = *read;
      probe.count_only = true;
      if (auto ok = do_range(probe, revision_); !ok) co_return ok.error();
    }
  }
  Batch batch{revision_ + 1, {}};
  for (const auto& operation : branch) {
    if (const auto* read = std::get_if<Range>(&operation)) {
      // Sees the branch's earlier writes, as etcd's do.
      auto found = do_range(*read, batch.events.empty() ? revision_ : batch.revision);
      result.results.emplace_back(std::move(*found));
    } else if (const auto* write = std::get_if<Put>(&operation)) {
      result.results.emplace_back(do_put(batch, *write));
    } else {
      result.results.emplace_back(do_delete(batch, std::get<Delete>(operation)));
    }
  }
  if (auto committed = commit(batch); !committed) co_return committed.error();
  result.revision = revision_;
  for (auto& entry : result.results) {
    if (auto* put = std::get_if<PutResult>(&entry)) put->revision = revision_;
    if (auto* erased = std::get_if<DeleteResult>(&entry)) erased->revision = revision_;
    if (auto* read = std::get_if<RangeResult>(&entry)) read->revision = revision_;
  }
  co_return result;
}

asio::awaitable<Status> MemoryStore::compact(Revision revision) {
  co_await yield();
  if (revision > revision_) {
    co_return store_error(
        Code::kFutureRevision,
        fmt::format("revision {} is newer than the store's {}", revision, revision_));
  }
  if (revision <= compact_revision_) {
    co_return store_error(Code::kCompacted,
                          fmt::format("revision {} has been compacted (oldest available: {})",
                                      revision, compact_revision_));
  }
  for (auto it = keys_.begin(); it != keys_.end();) {
    auto& versions = it->second;
    // Keep the version current at `revision` and everything after it.
    auto keep = std::upper_bound(versions.begin(), versions.end(), revision,
                                 [](Revision r, const Version& v) { return r < v.revision; });
    if (keep != versions.begin()) --keep;
    versions.erase(versions.begin(), keep);
    if (versions.size() == 1 && versions.front().tombstone &&
        versions.front().revision <= revision) {
      it = keys_.erase(it);
    } else {
      ++it;
    }
  }
  log_.erase(log_.begin(), std::find_if(log_.begin(), log_.end(), [&](const LoggedEvent& e) {
               return e.revision >= revision;
             }));
  compact_revision_ = revision;
  co_return ok_status();
}

asio::awaitable<Result<LeaseGrant>> MemoryStore::grant(std::chrono::seconds ttl, LeaseId id) {
  co_await yield();
  if (id < 0) co_return store_error(Code::kInvalidArgument, "negative lease id");
  if (id != 0 && leases_.count(id) != 0) {
    co_return store_error(Code::kInvalidArgument, fmt::format("lease {:x} already exists", id));
  }
  while (id == 0 || leases_.count(id) != 0) {
    id = static_cast<LeaseId>(lease_ids_() >> 1);
  }
  ttl = std::max(ttl, kMinimumTtl);
  leases_[id] = Lease{ttl, clock_.now() + ttl, {}};
  co_return LeaseGrant{id, ttl};
}

asio::awaitable<Result<std::chrono::seconds>> MemoryStore::keepalive(LeaseId id) {
  co_await yield();
  auto it = leases_.find(id);
  if (it == leases_.end()) {
    co_return store_error(Code::kLeaseNotFound, fmt::format("lease {:x} not found", id));
  }
  it->second.deadline = clock_.now() + it->second.ttl;
  co_return it->second.ttl;
}

asio::awaitable<Status> MemoryStore::revoke(LeaseId id) {
  co_await yield();
  if (leases_.count(id) == 0) {
    co_return store_error(Code::kLeaseNotFound, fmt::format("lease {:x} not found", id));
  }
  revoke_lease(id);
  co_return ok_status();
}

asio::awaitable<Result<LeaseStatus>> MemoryStore::time_to_live(LeaseId id, bool with_keys) {
  co_await yield();
  auto it = leases_.find(id);
  if (it == leases_.end()) {
    co_return store_error(Code::kLeaseNotFound, fmt::format("lease {:x} not found", id));
  }
  LeaseStatus status;
  status.id = id;
  status.granted = it->second.ttl;
  status.remaining =
      std::chrono::duration_cast<std::chrono::seconds>(it->second.deadline - clock_.now());
  if (with_keys) status.keys.assign(it->second.keys.begin(), it->second.keys.end());
  co_return status;
}

asio::awaitable<Result<StoreHealth>> MemoryStore::members(std::chrono::milliseconds /*timeout*/) {
  co_await yield();
  StoreMember self;
  self.id = 1;
  self.name = "memory";
  self.healthy = true;
  self.leader = true;
  self.raft_index = static_cast<std::uint64_t>(revision_);
  StoreHealth health;
  health.kind = "memory";
  health.leader = self.id;
  health.members.push_back(std::move(self));
  co_return health;
}

asio::awaitable<Result<std::unique_ptr<Watch>>> MemoryStore::watch(WatchOptions options) {
  co_await yield();
  if (options.start_revision != 0 && options.start_revision < compact_revision_) {
    auto watch = std::make_unique<MemoryWatch>(*this, options);
    watch->compacted(compact_revision_);
    co_return std::unique_ptr<Watch>(std::move(watch));
  }
  auto watch = std::make_unique<MemoryWatch>(*this, options);
  if (options.start_revision != 0) {
    // Replay history, one delivery per revision.
    auto it = std::find_if(log_.begin(), log_.end(), [&](const LoggedEvent& e) {
      return e.revision >= options.start_revision;
    });
    while (it != log_.end()) {
      Revision revision = it->revision;
      std::vector<WatchEvent> events;
      for (; it != log_.end() && it->revision == revision; ++it) events.push_back(it->event);
      watch->deliver(revision, events);
    }
  }
  watches_.push_back(watch.get());
  co_return std::unique_ptr<Watch>(std::move(watch));
}

}  // namespace clusweb::store
