#include "agent/agent.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/testing/fake_liveness.h"
#include "agent/testing/fake_resources.h"
#include "base/testing/manual_clock.h"
#include "cluster/store_keys.h"
#include "store/memory_store.h"
#include "store/testing/faulty_store.h"

// The agent shell against the in-process store, a liveness and resources the
// test drives by hand, and a ManualClock. Nothing here waits for real time:
// the agent's wakeup timer is off (AgentOptions::wakeup_timer) and the test
// calls wake() after moving the clock; settle() runs the io_context until
// nothing is ready, so every assertion sees the agent at rest. Only
// shutdown() polls in real time (a few tens of milliseconds).
namespace clusweb::agent {
namespace {

namespace asio = boost::asio;
using cluster::Verb;
using nlohmann::json;
using ::testing::ElementsAre;
using testing::FakeLiveness;
using testing::FakeResources;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using namespace std::chrono_literals;
using namespace std::string_literals;

constexpr auto kNode = "n1";

cluster::ResourceSpec resource(std::string name, std::string type,
                               std::vector<std::vector<std::string>> depends_on = {}) {
  cluster::ResourceSpec spec;
  spec.name = std::move(name);
  spec.type = std::move(type);
  spec.depends_on = std::move(depends_on);
  return spec;
}

// "web": site needs data, data needs addr. Listed out of dependency order so
// that bottom-up is not merely the order of the list. The types are ones
// that fence themselves, so a new owner never waits a TTL before online.
cluster::GroupSpec stack_group(std::string name = "web") {
  cluster::GroupSpec group;
  group.name = std::move(name);
  group.preferred_owners = {kNode};
  group.resources.push_back(resource("site", "website", {{"data"}}));
  group.resources.push_back(resource("addr", "ip"));
  group.resources.push_back(resource("data", "ip", {{"addr"}}));
  return group;
}

class AgentTest : public ::testing::Test {
 protected:
  AgentTest() : keys_("test") {
    store::MemoryStoreOptions options;
    options.expiry_interval = 0ms;  // leases end only by the ManualClock
    auto opened = store::MemoryStore::open(io_.get_executor(), clock_, options);
    if (!opened.ok()) throw std::runtime_error(opened.error().describe());
    memory_ = std::move(*opened);
    other_ = memory_->client();
    liveness_store_ = memory_->client();
    faulty_ = std::make_unique<store::testing::FaultyStore>(*memory_);
    liveness_ = std::make_unique<FakeLiveness>(*liveness_store_, keys_.node(kNode));
  }

  // Runs every handler that is ready, until none is.
  void settle() {
    io_.restart();
    while (io_.poll() > 0) {
    }
  }

  // Runs `work` to completion; fails the test when it stalls.
  template <class T>
  T await(asio::awaitable<T> work) {
    auto out = std::make_shared<std::optional<T>>();
    asio::co_spawn(io_, keep(std::move(work), out), [](std::exception_ptr failure) {
      if (failure) std::rethrow_exception(failure);
    });
    settle();
    if (!out->has_value()) throw std::runtime_error("the coroutine stalled");
    return std::move(**out);
  }
  template <class T>
  static asio::awaitable<void> keep(asio::awaitable<T> work,
                                    std::shared_ptr<std::optional<T>> out) {
    out->emplace(co_await std::move(work));
  }

  // Runs until `done` holds, in real time; only for shutdown(), which polls.
  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds limit = 3000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    io_.restart();
    while (!done() && std::chrono::steady_clock::now() < deadline) io_.run_one_for(10ms);
    return done();
  }

  // --- the store, as another client sees it ---

  std::optional<store::KeyValue> get(const std::string& key, store::Revision at = 0) {
    store::Range range(key);
    range.revision = at;
    auto read = await(other_->range(std::move(range)));
    EXPECT_TRUE(read.ok()) << read.error().describe();
    if (!read.ok() || read->kvs.empty()) return std::nullopt;
    return read->kvs.front();
  }
  std::vector<store::KeyValue> under(const std::string& prefix) {
    auto read = await(other_->range(store::Range(prefix, /*prefix_in=*/true)));
    EXPECT_TRUE(read.ok()) << read.error().describe();
    return read.ok() ? read->kvs : std::vector<store::KeyValue>{};
  }
  void put(const std::string& key, const std::string& value) {
    auto written = await(other_->put(store::Put(key, value)));
    EXPECT_TRUE(written.ok()) << written.error().describe();
  }
  void erase(const std::string& key) {
    auto erased = await(other_->erase(store::Delete(key)));
    EXPECT_TRUE(erased.ok()) << erased.error().describe();
  }
  void put_group(const cluster::GroupSpec& group) { put(keys_.group(group.name), encode(group)); }

  json status(const std::string& group) {
    auto kv = get(keys_.status(group));
    return kv ? json::parse(kv->value) : json();
  }
  // The event log, oldest first.
  std::vector<json> events() {
    std::vector<json> out;
    for (const store::KeyValue& kv : under(keys_.events())) out.push_back(json::parse(kv.value));
    return out;
  }
  // "what" of the log's events of `group` ("" = the node's own), in order.
  std::vector<std::string> event_names(const std::string& group, size_t from = 0) {
    std::vector<std::string> out;
    std::vector<json> all = events();
    for (size_t i = from; i < all.size(); ++i) {
      if (all[i]["group"] == group && all[i]["resource"] == "") {
        out.push_back(all[i]["what"].get<std::string>());
      }
    }
    return out;
  }

  // --- the agent ---

  void start_agent() {
    AgentOptions options;
    options.cluster = "test";
    options.node = kNode;
    options.wakeup_timer = false;
    options.lease_file = lease_file_;
    agent_ = std::make_unique<Agent>(io_.get_executor(), *faulty_, *liveness_, fakes_.factory(),
                                     clock_, options);
    asio::co_spawn(io_, agent_->run(), [this](std::exception_ptr failure, Status status) {
      if (failure) std::rethrow_exception(failure);
      run_status_ = std::move(status);
    });
    settle();
  }
  int64_t join() {
    const int64_t lease = await(liveness_->join(clock_.now() + 1000h));
    EXPECT_NE(lease, 0);
    settle();
    return lease;
  }
  // Starts the agent, joins, and waits for `group` to be Online here;
  // returns its fencing token.
  int64_t own_online(const std::string& group) {
    start_agent();
    join();
    auto owner = get(keys_.owner(group));
    EXPECT_TRUE(owner.has_value());
    EXPECT_EQ(status(group).value("state", ""), "Online");
    return owner ? owner->create_revision : 0;
  }
  // Calls made after the first `from`, as "verb resource".
  std::vector<std::string> calls_since(size_t from) const {
    std::vector<std::string> all = fakes_.journal();
    return {all.begin() + static_cast<std::ptrdiff_t>(std::min(from, all.size())), all.end()};
  }
  std::vector<int64_t> tokens_since(size_t from) const {
    std::vector<int64_t> out;
    for (size_t i = from; i < fakes_.calls().size(); ++i) out.push_back(fakes_.calls()[i].token);
    return out;
  }

  // Declared first: destroyed last, after everything that runs on it; the
  // coroutines still waiting then are destroyed with it and never resume.
  asio::io_context io_;
  clusweb::testing::ManualClock clock_;
  cluster::StoreKeys keys_;
  std::unique_ptr<store::MemoryStore> memory_;
  std::unique_ptr<store::Store> other_;                  // the test's own client
  std::unique_ptr<store::Store> liveness_store_;         // the liveness' own client
  std::unique_ptr<store::testing::FaultyStore> faulty_;  // the agent's way to the store
  FakeResources fakes_;
  std::unique_ptr<FakeLiveness> liveness_;
  std::unique_ptr<Agent> agent_;
  std::optional<Status> run_status_;
  std::filesystem::path lease_file_;  // AgentOptions::lease_file
};

// A state folder of its own, removed at the end.
class AgentRestartTest : public AgentTest {
 protected:
  AgentRestartTest()
      : dir_(std::filesystem::temp_directory_path() /
             fmt::format("clusweb-agent-test-{}", ::getpid())) {
    std::filesystem::create_directories(dir_);
    lease_file_ = dir_ / "lease";
  }
  ~AgentRestartTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string kept_lease() const {
    std::ifstream in(lease_file_);
    std::string text;
    in >> text;
    return text;
  }
  // The agent process ends without leaving: its resources run on, its lease lives.
  void kill_agent() {
    agent_.reset();
    settle();
    liveness_ = std::make_unique<FakeLiveness>(*liveness_store_, keys_.node(kNode));
  }

  std::filesystem::path dir_;
};

TEST_F(AgentTest, AJoinedAgentTakesItsPreferredGroupOnlineBottomUpWithTheFencingToken) {
  put_group(stack_group());
  start_agent();
  ASSERT_TRUE(run_status_.has_value());
  EXPECT_TRUE(run_status_->ok());
  const size_t probed = fakes_.calls().size();
  const int64_t lease = join();
  EXPECT_TRUE(agent_->joined());

  // As coordinator (the only node) it placed the group here, then took it.
  auto placement = get(keys_.placement("web"));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(cluster::decode_placement(placement->value, placement->key)->node, kNode);
  auto owner = get(keys_.owner("web"));
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->value, kNode);
  EXPECT_EQ(owner->lease, lease);
  const int64_t token = owner->create_revision;

  EXPECT_THAT(calls_since(probed), ElementsAre("online addr", "online data", "online site"));
  EXPECT_THAT(tokens_since(probed), ElementsAre(token, token, token));

  json reported = status("web");
  EXPECT_EQ(reported["state"], "Online"s);
  EXPECT_EQ(reported["token"], token);
  EXPECT_EQ(reported["node"], kNode);
  ASSERT_EQ(reported["resources"].size(), 3u);
  for (const json& r : reported["resources"]) EXPECT_EQ(r["state"], "Online"s) << r.dump();

  EXPECT_THAT(event_names("web"), ElementsAre("placed", "acquired", "online"));
  size_t online_resources = 0;
  for (const json& event : events()) {
    online_resources += event["group"] == "web" && event["resource"] != "" &&
                        event["what"] == "online" && event["node"] == kNode;
  }
  EXPECT_EQ(online_resources, 3u);
}

TEST_F(AgentTest, AnAcquireWhoseReplyWasLostIsResolvedByReadingTheKeyBack) {
  cluster::GroupSpec group = stack_group();
  group.resources[1].type = "script";  // addr cannot fence itself
  put_group(group);
  // The last owner let go gracefully; another node coordinates, so that
  // placement is the test's to write.
  put(keys_.released("web"), "3");
  put(keys_.coordinator(), "elsewhere");
  start_agent();
  const size_t probed = fakes_.calls().size();
  const int64_t lease = join();
  EXPECT_FALSE(get(keys_.owner("web")).has_value());

  faulty_->lose_reply();  // the next write is the acquire
  put(keys_.placement("web"), encode(cluster::PlacementValue{kNode, 0, "by the test"}));
  EXPECT_EQ(faulty_->injected(), 1);

  // The acquire was applied (the marker went with it) and read back as ours.
  auto owner = get(keys_.owner("web"));
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->lease, lease);
  EXPECT_FALSE(get(keys_.released("web")).has_value());
  const int64_t token = owner->create_revision;
  // Whether the marker was there is unknown now: the slow path, which waits
  // one TTL before bringing online a resource that cannot fence itself.
  std::vector<json> acquired;
  for (const json& event : events()) {
    if (event["what"] == "acquired") acquired.push_back(event);
  }
  ASSERT_EQ(acquired.size(), 1u);
  EXPECT_THAT(acquired[0]["why"].get<std::string>(), HasSubstr("expired or absent"));
  EXPECT_EQ(fakes_.calls().size(), probed);
  clock_.advance(2s);  // AgentOptions::ttl
  agent_->wake();
  settle();

  // Written once: no second put, no delete and create again.
  owner = get(keys_.owner("web"));
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->version, 1);
  EXPECT_EQ(owner->create_revision, token);
  EXPECT_EQ(owner->mod_revision, token);
  EXPECT_THAT(calls_since(probed), ElementsAre("online addr", "online data", "online site"));
  EXPECT_THAT(tokens_since(probed), ElementsAre(token, token, token));
  EXPECT_EQ(status("web")["state"], "Online"s);
  EXPECT_EQ(status("web")["token"], token);
}

TEST_F(AgentTest, TheStartupProbeTerminatesEverythingThisNodeCouldHostBeforeItJoins) {
  put_group(stack_group("web"));
  cluster::GroupSpec elsewhere;  // n1 is not a possible owner of it
  elsewhere.name = "elsewhere";
  elsewhere.resources.push_back(resource("far", "ip"));
  elsewhere.resources.back().possible_owners = {"n2"};
  put_group(elsewhere);
  cluster::GroupSpec unmade;  // the factory fails for its first resource
  unmade.name = "unmade";
  unmade.resources.push_back(resource("odd", "odd"));
  unmade.resources.push_back(resource("mount", "ip"));
  put_group(unmade);
  fakes_.refuse_type("odd");

  fakes_.hold_next("site", Verb::kTerminate);
  start_agent();
  // One call at a time, top-down; the node does not take part meanwhile.
  EXPECT_THAT(fakes_.journal(), ElementsAre("terminate mount", "terminate site"));
  EXPECT_EQ(liveness_->starts(), 0);

  fakes_.release_held();
  settle();
  EXPECT_THAT(fakes_.journal(),
              ElementsAre("terminate mount", "terminate site", "terminate data", "terminate addr"));
  for (const FakeResources::Call& call : fakes_.calls()) EXPECT_EQ(call.token, 0);
  EXPECT_EQ(liveness_->starts(), 1);
  EXPECT_EQ(fakes_.alive(), 0);  // the probe's objects are gone
  EXPECT_THAT(under(keys_.owners()), IsEmpty());
}

TEST_F(AgentTest, ALostLeaseFencesAtOnceThenRejoinsAndOwnsAgainWithALargerToken) {
  put_group(stack_group());
  const int64_t first = own_online("web");
  const int64_t first_lease = liveness_->lease();
  const size_t before = fakes_.calls().size();

  fakes_.hold_next("addr", Verb::kTerminate);
  liveness_->lose("the store no longer has our lease");
  settle();
  EXPECT_FALSE(agent_->joined());
  // Terminate, not Offline: every resource at once, with the old token.
  EXPECT_THAT(calls_since(before),
              UnorderedElementsAre("terminate site", "terminate data", "terminate addr"));
  EXPECT_THAT(tokens_since(before), ElementsAre(first, first, first));
  EXPECT_THAT(event_names(""), ::testing::Contains("fenced"));
  // No rejoin while a terminate runs.
  EXPECT_EQ(liveness_->rejoins(), 0);

  // A renewal reported after the loss (LeaseLiveness never does) revives
  // nothing.
  liveness_->renew(clock_.now() + 2000h);
  clock_.advance(2s);
  agent_->wake();
  settle();
  EXPECT_EQ(fakes_.calls().size(), before + 3);
  EXPECT_EQ(liveness_->rejoins(), 0);

  fakes_.release_held();
  settle();
  EXPECT_EQ(liveness_->rejoins(), 1);
  EXPECT_EQ(fakes_.alive(), 0);  // the fenced ownership's objects are gone
  EXPECT_EQ(fakes_.calls().size(), before + 3);

  // The new membership revokes the old lease (and the keys bound to it).
  const size_t fenced = fakes_.calls().size();
  const int64_t second_lease = join();
  EXPECT_NE(second_lease, first_lease);
  EXPECT_TRUE(agent_->joined());
  auto owner = get(keys_.owner("web"));
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->lease, second_lease);
  const int64_t second = owner->create_revision;
  EXPECT_GT(second, first);
  EXPECT_THAT(calls_since(fenced), ElementsAre("online addr", "online data", "online site"));
  EXPECT_THAT(tokens_since(fenced), ElementsAre(second, second, second));
  EXPECT_EQ(status("web")["state"], "Online"s);
  EXPECT_EQ(status("web")["token"], second);
}

TEST_F(AgentTest, ReachingTheFencingDeadlineWithoutARenewalFences) {
  put_group(stack_group());
  start_agent();
  // Deadlines shorter than the first LooksAlive (1 s), so that the only
  // calls are the fencing's.
  await(liveness_->join(clock_.now() + 200ms));
  settle();
  auto owner = get(keys_.owner("web"));
  ASSERT_TRUE(owner.has_value());
  const int64_t token = owner->create_revision;
  const size_t before = fakes_.calls().size();

  // A renewal moves the deadline: passing the first one changes nothing.
  liveness_->renew(clock_.now() + 300ms);
  clock_.advance(200ms);
  agent_->wake();
  settle();
  EXPECT_EQ(fakes_.calls().size(), before);
  EXPECT_TRUE(agent_->joined());

  clock_.advance(100ms);
  agent_->wake();
  settle();
  EXPECT_THAT(calls_since(before),
              UnorderedElementsAre("terminate site", "terminate data", "terminate addr"));
  EXPECT_THAT(tokens_since(before), ElementsAre(token, token, token));
  EXPECT_EQ(liveness_->rejoins(), 1);
}

TEST_F(AgentTest, GracefulShutdownGoesOfflineTopDownAndReleasesWithTheMarkerBeforeLeaving) {
  put_group(stack_group());
  const int64_t token = own_online("web");
  const size_t before = fakes_.calls().size();
  store::Revision at_stop = 0;
  liveness_->on_stop = [&] { at_stop = memory_->revision(); };

  bool done = false;
  asio::co_spawn(io_, agent_->shutdown(5s), [&](std::exception_ptr failure) {
    if (failure) std::rethrow_exception(failure);
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }));
  settle();

  EXPECT_THAT(calls_since(before), ElementsAre("offline site", "offline data", "offline addr"));
  EXPECT_THAT(tokens_since(before), ElementsAre(token, token, token));
  EXPECT_FALSE(get(keys_.node(kNode)).has_value());  // membership ended first
  EXPECT_FALSE(get(keys_.owner("web")).has_value());

  // One transaction: the owner key deleted, the marker (with the token) and
  // the final status written at the same revision.
  auto marker = get(keys_.released("web"));
  ASSERT_TRUE(marker.has_value());
  EXPECT_EQ(marker->value, std::to_string(token));
  const store::Revision released_at = marker->mod_revision;
  auto final_status = get(keys_.status("web"));
  ASSERT_TRUE(final_status.has_value());
  EXPECT_EQ(final_status->mod_revision, released_at);
  EXPECT_EQ(json::parse(final_status->value)["state"], "Offline"s);
  auto owner_before = get(keys_.owner("web"), released_at - 1);
  ASSERT_TRUE(owner_before.has_value());
  EXPECT_EQ(owner_before->create_revision, token);
  EXPECT_FALSE(get(keys_.owner("web"), released_at).has_value());

  // The membership is given up last.
  EXPECT_EQ(liveness_->stops(), 1);
  EXPECT_GE(at_stop, released_at);
  std::vector<std::string> names = event_names("web");
  EXPECT_EQ(names.back(), "released");
  EXPECT_THAT(event_names(""), ::testing::Contains("leaving"));
}

TEST_F(AgentTest, StatusAndEventWritesOfAReplacedOwnerDoNotLand) {
  put_group(stack_group());
  const int64_t token = own_online("web");
  const size_t before = fakes_.calls().size();
  const size_t logged = events().size();

  // Behind the agent's back: another owner, which reports its own status.
  // The agent notices the deletion and terminates at once; the terminates
  // are held, so that everything it reports about them comes after the new
  // owner's key and status are in place.
  for (const char* name : {"site", "data", "addr"}) fakes_.hold_next(name, Verb::kTerminate);
  erase(keys_.owner("web"));
  EXPECT_THAT(calls_since(before),
              UnorderedElementsAre("terminate site", "terminate data", "terminate addr"));
  EXPECT_THAT(tokens_since(before), ElementsAre(token, token, token));
  put(keys_.owner("web"), "n2");
  put(keys_.status("web"), R"({"node":"n2"})");
  const store::Revision replaced = memory_->revision();
  fakes_.release_held();
  settle();
  EXPECT_EQ(fakes_.calls().size(), before + 3);

  // What the old owner wrote about it with the old token landed nowhere.
  EXPECT_EQ(status("web"), json::parse(R"({"node":"n2"})"));
  EXPECT_THAT(event_names("web", logged), IsEmpty());
  std::vector<json> all = events();
  for (size_t i = logged; i < all.size(); ++i) EXPECT_NE(all[i]["group"], "web"s) << all[i].dump();
  EXPECT_EQ(get(keys_.owner("web")).value().value, "n2");
  EXPECT_EQ(get(keys_.status("web")).value().mod_revision, replaced);
}

TEST_F(AgentTest, AFailingResourceRestartsInPlaceThenFailsOverUntilTheThresholdLeavesItFailed) {
  cluster::GroupSpec group;
  group.name = "web";
  group.preferred_owners = {kNode};
  group.failover_threshold = 1;
  group.resources.push_back(resource("site", "website"));
  cluster::ResourcePolicy& policy = group.resources.back().policy;
  policy.restart_threshold = 1;
  policy.restart_delay = 500ms;
  policy.looks_alive_interval = 1s;
  policy.is_alive_interval = 1h;
  put_group(group);

  // The next LooksAlive and IsAlive both fail, once the poll is due.
  auto fail_next_poll = [&] {
    fakes_.fail_next("site", Verb::kLooksAlive, "worker exited");
    fakes_.fail_next("site", Verb::kIsAlive, "probe refused");
    clock_.advance(1s);
    agent_->wake();
    settle();
  };

  const int64_t first = own_online("web");
  size_t before = fakes_.calls().size();
  // Nothing is due before the clock moves.
  agent_->wake();
  settle();
  EXPECT_EQ(fakes_.calls().size(), before);

  // First failure: terminated, restarted in place after RestartDelay.
  fail_next_poll();
  EXPECT_THAT(calls_since(before),
              ElementsAre("looksalive site", "isalive site", "terminate site"));
  json reported = status("web");
  EXPECT_EQ(reported["resources"][0]["state"], "Failed"s);
  EXPECT_THAT(reported["resources"][0]["lastError"].get<std::string>(), HasSubstr("probe refused"));
  before = fakes_.calls().size();
  clock_.advance(499ms);
  agent_->wake();
  settle();
  EXPECT_EQ(fakes_.calls().size(), before);  // RestartDelay not over yet
  clock_.advance(1ms);
  agent_->wake();
  settle();
  EXPECT_THAT(calls_since(before), ElementsAre("online site"));
  EXPECT_THAT(tokens_since(before), ElementsAre(first));
  EXPECT_EQ(get(keys_.owner("web")).value().create_revision, first);  // same ownership
  reported = status("web");
  EXPECT_EQ(reported["state"], "Online"s);
  EXPECT_EQ(reported["resources"][0]["restarts"], 1);
  std::vector<json> all = events();
  EXPECT_TRUE(std::any_of(all.begin(), all.end(), [](const json& event) {
    return event["resource"] == "site" &&
           event["why"].get<std::string>().starts_with("restarting in place (1 of 1");
  }));

  // Second failure: beyond RestartThreshold, so the group fails over; the
  // coordinator (this node, the only one) places it here once more.
  before = fakes_.calls().size();
  fail_next_poll();
  auto history = get(keys_.failures("web"));
  ASSERT_TRUE(history.has_value());
  auto failures = cluster::decode_failures(history->value, history->key);
  ASSERT_TRUE(failures.ok());
  ASSERT_EQ(failures->entries.size(), 1u);
  EXPECT_EQ(failures->entries[0].record.from_node, kNode);
  EXPECT_THAT(failures->entries[0].reason, HasSubstr("failed after 1 restarts"));
  auto owner = get(keys_.owner("web"));
  ASSERT_TRUE(owner.has_value());
  const int64_t second = owner->create_revision;
  EXPECT_GT(second, first);
  EXPECT_THAT(calls_since(before),
              ElementsAre("looksalive site", "isalive site", "terminate site", "online site"));
  EXPECT_THAT(tokens_since(before), ElementsAre(first, first, first, second));
  EXPECT_EQ(status("web")["token"], second);
  EXPECT_THAT(event_names("web"), ::testing::Contains("failed-over"));

  // The new ownership restarts in place once more, then fails over a second
  // time: more than the FailoverThreshold of 1, so the group is left Failed.
  fail_next_poll();
  clock_.advance(500ms);
  agent_->wake();
  settle();
  EXPECT_EQ(status("web")["state"], "Online"s);
  before = fakes_.calls().size();
  fail_next_poll();
  EXPECT_THAT(calls_since(before),
              ElementsAre("looksalive site", "isalive site", "terminate site"));
  history = get(keys_.failures("web"));
  ASSERT_TRUE(history.has_value());
  EXPECT_EQ(cluster::decode_failures(history->value, history->key)->entries.size(), 2u);
  EXPECT_FALSE(get(keys_.owner("web")).has_value());
  auto placement = get(keys_.placement("web"));
  ASSERT_TRUE(placement.has_value());
  EXPECT_EQ(cluster::decode_placement(placement->value, placement->key)->node, "");
  EXPECT_EQ(status("web")["state"], "Failed"s);
  EXPECT_EQ(status("web")["token"], second);
}

TEST_F(AgentTest, EventsRecordedTogetherLandOnceEachInOrder) {
  start_agent();
  // Recorded in one handler, as the events of one step are (more than a
  // deque block of them, so that appending frees blocks under the writer).
  for (int i = 0; i < 7; ++i) agent_->record("", "", "note", std::to_string(i));
  settle();
  std::vector<json> all = events();
  ASSERT_EQ(all.size(), 7u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i]["why"], std::to_string(i));
  auto next = get(keys_.events_next());
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->value, "8");
}

// Known bug, not fixed yet (run with --gtest_also_run_disabled_tests):
// NodeCore::drive() erases the owned group,
// controller and all, in the very step that reports its kTerminated outcome,
// and the shell acts on that step's GroupEvents afterwards. on_group_event()
// then finds no controller (the last resource's change is logged without its
// name, as if the group went offline) and write_status() stops at once, so
// status/<group> keeps showing resources Online after they were terminated.
TEST_F(AgentTest, DISABLED_AfterFencingTheStatusAndTheLogShowEveryResourceTerminated) {
  put_group(stack_group());
  own_online("web");
  const size_t logged = events().size();
  liveness_->lose("the store no longer has our lease");
  settle();
  ASSERT_EQ(liveness_->rejoins(), 1);  // every terminate ended

  json reported = status("web");
  EXPECT_EQ(reported["state"], "Offline"s);
  for (const json& r : reported["resources"]) EXPECT_EQ(r["state"], "Offline"s) << r.dump();
  std::vector<json> all = events();
  std::vector<std::string> terminated;
  for (size_t i = logged; i < all.size(); ++i) {
    if (all[i]["group"] == "web" && all[i]["why"] == "terminated") {
      terminated.push_back(all[i]["resource"].get<std::string>());
    }
  }
  EXPECT_THAT(terminated, UnorderedElementsAre("site", "data", "addr"));
}

// Once the lease is lost, CallContext::fencing_deadline of the calls still in
// flight (and of the contexts resources keep, e.g. IpResource's for address
// refreshes) has passed: a resource that checks it before adding or
// refreshing an address is told it may no longer serve.
TEST_F(AgentTest, ACallInFlightWhenTheLeaseIsLostSeesItsFencingDeadlinePassed) {
  put_group(stack_group());
  own_online("web");
  fakes_.hold_next("addr", Verb::kLooksAlive);
  clock_.advance(1s);
  agent_->wake();
  settle();
  ASSERT_EQ(fakes_.held(), 1u);
  auto held = std::find_if(fakes_.calls().begin(), fakes_.calls().end(), [](const auto& call) {
    return call.resource == "addr" && call.verb == Verb::kLooksAlive;
  });
  ASSERT_NE(held, fakes_.calls().end());
  const auto fencing_deadline = held->fencing_deadline;
  EXPECT_GT(fencing_deadline(), clock_.now());

  liveness_->lose("the store no longer has our lease");
  EXPECT_LE(fencing_deadline(), clock_.now());
  settle();
}

TEST_F(AgentRestartTest, ARestartedAgentResumesItsLeaseAndAdoptsItsGroupWithoutStartingIt) {
  put_group(stack_group());
  const int64_t token = own_online("web");
  const int64_t lease = liveness_->lease();
  EXPECT_EQ(kept_lease(), fmt::format("{:x}", lease));
  const size_t events_before = events().size();
  kill_agent();

  const size_t before = fakes_.calls().size();
  start_agent();
  ASSERT_TRUE(liveness_->resumed().has_value());
  EXPECT_EQ(liveness_->resumed()->lease, lease);
  // The start-up probe left the group alone.
  EXPECT_THAT(calls_since(before), IsEmpty());
  liveness_->resume(clock_.now() + 1000h);
  settle();
  EXPECT_TRUE(agent_->joined());
  // Each resource asked whether it runs, under the same fencing token; none started.
  EXPECT_THAT(calls_since(before),
              UnorderedElementsAre("isalive addr", "isalive data", "isalive site"));
  EXPECT_THAT(tokens_since(before), ElementsAre(token, token, token));
  auto owner = get(keys_.owner("web"));
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->create_revision, token);
  EXPECT_EQ(owner->lease, lease);
  EXPECT_EQ(status("web")["state"], "Online"s);
  EXPECT_EQ(status("web")["token"], token);
  std::vector<std::string> whats;
  for (const json& event : events()) whats.push_back(event["what"].get<std::string>());
  whats.erase(whats.begin(), whats.begin() + static_cast<std::ptrdiff_t>(events_before));
  EXPECT_THAT(whats, ::testing::Contains("resumed"));
  EXPECT_THAT(whats, ::testing::Not(::testing::Contains("acquired")));
  EXPECT_THAT(whats, ::testing::Not(::testing::Contains("released")));
  EXPECT_THAT(whats, ::testing::Not(::testing::Contains("joined")));
}

TEST_F(AgentRestartTest, WhatTheRestartedAgentFindsStoppedIsStartedAgain) {
  put_group(stack_group());
  const int64_t token = own_online("web");
  kill_agent();
  // The site died with the agent; the address and the data run on.
  fakes_.fail_next("site", Verb::kIsAlive, "not serving");
  const size_t before = fakes_.calls().size();
  start_agent();
  liveness_->resume(clock_.now() + 1000h);
  settle();
  std::vector<std::string> calls = calls_since(before);
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls.back(), "online site");
  EXPECT_THAT(tokens_since(before), ElementsAre(token, token, token, token));
  EXPECT_EQ(status("web")["state"], "Online"s);
}

TEST_F(AgentRestartTest, AKeptLeaseThatEndedIsNotResumedAndEverythingIsStoppedFirst) {
  put_group(stack_group());
  own_online("web");
  const int64_t lease = liveness_->lease();
  kill_agent();
  ASSERT_TRUE(await(other_->revoke(lease)).ok());
  const size_t before = fakes_.calls().size();
  start_agent();
  EXPECT_FALSE(liveness_->resumed().has_value());
  EXPECT_THAT(calls_since(before),
              UnorderedElementsAre("terminate addr", "terminate data", "terminate site"));
  const int64_t second = join();
  EXPECT_NE(second, lease);
  EXPECT_EQ(kept_lease(), fmt::format("{:x}", second));
}

TEST_F(AgentRestartTest, ALeaverKeepsNoLease) {
  put_group(stack_group());
  own_online("web");
  ASSERT_FALSE(kept_lease().empty());
  bool done = false;
  asio::co_spawn(io_, agent_->shutdown(2000ms), [&](std::exception_ptr) { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }, 10'000ms));
  EXPECT_FALSE(std::filesystem::exists(lease_file_));
}

}  // namespace
}  // namespace clusweb::agent
