#include "resources/website_resource.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/testing/manual_clock.h"
#include "resources/registry.h"
#include "resources/site_probe.h"
#include "resources/testing/fake_web_service.h"

namespace clusweb::resources {
namespace {

using cluster::Verb;
using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using namespace std::chrono_literals;
using resources::testing::FakeBinding;
using resources::testing::FakeWebService;

constexpr std::int64_t kBoottimeMs = 1'000'000;

// --- probe targets --------------------------------------------------------

TEST(ProbeTarget, PrefersThePlainHttpBindingAndReachesAnyAddressOnLoopback) {
  auto target = probe_target({"https://*:8443/www.example.com", "http://*:8080"}, "/health");
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_FALSE(target->https);
  EXPECT_EQ(target->address, "127.0.0.1");
  EXPECT_EQ(target->port, 8080);
  EXPECT_EQ(target->host, "127.0.0.1:8080");
  EXPECT_EQ(target->server_name, "");
  EXPECT_EQ(target->path, "/health");
}

TEST(ProbeTarget, HttpsUsesTheHostNameForSniAndHost) {
  auto target = probe_target({"https://[::]:443/www.example.com"}, "/");
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_TRUE(target->https);
  EXPECT_EQ(target->address, "::1");
  EXPECT_EQ(target->host, "www.example.com");
  EXPECT_EQ(target->server_name, "www.example.com");
}

TEST(ProbeTarget, WildcardHostsGetAName) {
  auto target = probe_target({"http://10.77.0.10:80/*.example.com"}, "/");
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_EQ(target->address, "10.77.0.10");
  EXPECT_EQ(target->host, "probe.example.com");
}

TEST(ProbeTarget, AnIpv6AddressIsBracketedInTheHostHeader) {
  auto target = probe_target({"http://[fd00::10]:8080"}, "/");
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_EQ(target->address, "fd00::10");
  EXPECT_EQ(target->host, "[fd00::10]:8080");
}

TEST(ProbeTarget, RefusesNoBindingsAndMalformedOnes) {
  EXPECT_THAT(probe_target({}, "/").error().message, HasSubstr("no binding"));
  EXPECT_THAT(probe_target({"ftp://*:21"}, "/").error().message, HasSubstr("ftp://*:21"));
  EXPECT_FALSE(probe_target({"http://*:0"}, "/").ok());
  EXPECT_FALSE(probe_target({"http://nohost:80"}, "/").ok());
}

// --- registry -------------------------------------------------------------

TEST(Registry, MakesTheKnownTypesAndNamesTheUnknownOne) {
  boost::asio::io_context io;
  clusweb::testing::ManualClock clock;
  ResourceDeps deps;
  deps.clock = &clock;
  EXPECT_TRUE(make_resource("website", io.get_executor(), deps).ok());
  EXPECT_TRUE(make_resource("ip", io.get_executor(), deps).ok());
  EXPECT_TRUE(make_resource("mount", io.get_executor(), deps).ok());

  auto unknown = make_resource("disk", io.get_executor(), deps);
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error().message, HasSubstr("\"disk\""));
  EXPECT_THAT(unknown.error().message, HasSubstr("ip, mount, ocf, script, website"));

  EXPECT_THAT(make_resource("script", io.get_executor(), deps).error().message,
              HasSubstr("reaper"));
  EXPECT_THAT(make_resource("website", io.get_executor(), ResourceDeps{}).error().message,
              HasSubstr("clock"));
}

TEST(Registry, MakesAScriptFromItsPath) {
  boost::asio::io_context io;
  ChildReaper reaper(io);
  ResourceDeps deps;
  deps.reaper = &reaper;
  EXPECT_THAT(make_resource("script", io.get_executor(), deps).error().message, HasSubstr("path"));
  deps.parameters = {{"path", "/bin/true"}};
  EXPECT_TRUE(make_resource("script", io.get_executor(), deps).ok());
}

// --- the resource against a fake web service ------------------------------

class WebsiteResourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = std::filesystem::temp_directory_path() / "website_resource_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    socket_ = dir_ + "/web.sock";
    service_ = std::make_unique<FakeWebService>(io_, socket_, journal_);
    ASSERT_TRUE(service_->listen());
    binding_ = std::make_unique<FakeBinding>(io_, journal_);
    FakeWebService::Site shop;
    shop.bindings = {binding_->url()};
    shop.applications = {{"/", "shop-pool"}};
    service_->sites()["shop"] = shop;
    service_->pools()["shop-pool"] = {};
    service_->boottime_ms() = kBoottimeMs;
    resource_ = std::make_unique<WebsiteResource>(io_.get_executor(), clock_,
                                                  std::map<std::string, std::string>{},
                                                  [] { return kBoottimeMs; });
    deadline_ = clock_.now() + 10s;
  }

  void TearDown() override {
    resource_.reset();
    binding_.reset();
    service_.reset();
    std::filesystem::remove_all(dir_);
  }

  CallContext context(milliseconds timeout = 3000ms) {
    CallContext c;
    c.resource = "web";
    c.group = "shop";
    c.node = "node-a";
    c.fencing_token = 7;
    c.timeout = timeout;
    c.clock = &clock_;
    c.fencing_deadline = [this] { return deadline_; };
    c.parameters = {{"site", "shop"},
                    {"adminSocket", socket_},
                    {"probeTimeout", "1s"},
                    {"workerGrace", "200ms"}};
    return c;
  }

  // The site serving: permit live, site and pool Started, one worker.
  void make_running() {
    auto& site = service_->sites()["shop"];
    site.state = "Started";
    site.permit_deadline_ms = kBoottimeMs + 10'000;
    auto& pool = service_->pools()["shop-pool"];
    pool.state = "Started";
    pool.workers = {1234};
  }

  void start(Verb verb, const CallContext& c, std::optional<CallResult>& out) {
    boost::asio::co_spawn(io_, resource_->call(verb, c),
                          [&out](const std::exception_ptr& error, CallResult result) {
                            ASSERT_FALSE(error);
                            out = std::move(result);
                          });
  }

  // Runs io_ until `done` holds, at most `limit`.
  template <class Done>
  bool run_until(Done done, milliseconds limit = 3000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    io_.restart();
    while (!done() && std::chrono::steady_clock::now() < deadline) io_.run_one_for(10ms);
    return done();
  }

  CallResult call(Verb verb, const CallContext& c) {
    std::optional<CallResult> out;
    start(verb, c, out);
    EXPECT_TRUE(run_until([&] { return out.has_value(); }));
    return out.value_or(CallResult{});
  }

  CallResult call(Verb verb) { return call(verb, context()); }

  // What changed state, in order: the admin API's POSTs and the probes.
  std::vector<std::string> actions() const {
    std::vector<std::string> out;
    for (const std::string& entry : journal_) {
      if (entry.starts_with("POST") || entry.starts_with("probe")) out.push_back(entry);
    }
    return out;
  }

  std::size_t count_of(std::string_view prefix) const {
    std::size_t n = 0;
    for (const std::string& entry : journal_) n += entry.starts_with(prefix) ? 1 : 0;
    return n;
  }

  boost::asio::io_context io_;
  clusweb::testing::ManualClock clock_;
  Clock::TimePoint deadline_;
  std::string dir_;
  std::string socket_;
  std::vector<std::string> journal_;
  std::unique_ptr<FakeWebService> service_;
  std::unique_ptr<FakeBinding> binding_;
  std::unique_ptr<WebsiteResource> resource_;
};

TEST_F(WebsiteResourceTest, OpenAndCloseCheckTheParametersOnly) {
  EXPECT_TRUE(call(Verb::kOpen).ok);
  EXPECT_TRUE(call(Verb::kClose).ok);
  EXPECT_THAT(journal_, IsEmpty());

  CallContext missing = context();
  missing.parameters.erase("site");
  EXPECT_THAT(call(Verb::kOpen, missing).detail, HasSubstr("missing parameter site"));
  CallContext unknown = context();
  unknown.parameters["probepath"] = "/";
  EXPECT_THAT(call(Verb::kOpen, unknown).detail, HasSubstr("unknown parameter probepath"));
  CallContext status = context();
  status.parameters["expectStatus"] = "2xx";
  EXPECT_THAT(call(Verb::kOpen, status).detail, HasSubstr("expectStatus"));
  CallContext timeout = context();
  timeout.parameters["probeTimeout"] = "0s";
  EXPECT_THAT(call(Verb::kOpen, timeout).detail, HasSubstr("probeTimeout"));
}

TEST_F(WebsiteResourceTest, ConstructorParametersAreDefaultsForEveryCall) {
  make_running();
  resource_ = std::make_unique<WebsiteResource>(
      io_.get_executor(), clock_,
      std::map<std::string, std::string>{{"adminSocket", socket_}, {"site", "shop"}},
      [] { return kBoottimeMs; });
  CallContext c = context();
  c.parameters = {{"probePath", "/ping"}};
  CallResult result = call(Verb::kIsAlive, c);
  EXPECT_TRUE(result.ok) << result.detail;
  // The probe, then the permit this object takes over (it never went online itself).
  EXPECT_THAT(actions(),
              ElementsAre(StartsWith("probe /ping"), StartsWith("POST /v1/permits/shop")));

  // Complete defaults are enough to watch before any call.
  resource_ = std::make_unique<WebsiteResource>(
      io_.get_executor(), clock_,
      std::map<std::string, std::string>{{"adminSocket", socket_}, {"site", "shop"}},
      [] { return kBoottimeMs; });
  std::vector<std::string> reasons;
  resource_->watch(io_.get_executor(), [&](std::string reason) { reasons.push_back(reason); });
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 1; }));
  service_->emit({{"seq", 9}, {"type", "site"}, {"name", "shop"}, {"state", "Stopped"}});
  ASSERT_TRUE(run_until([&] { return !reasons.empty(); }));
  resource_->unwatch();
}

TEST_F(WebsiteResourceTest, OnlineGrantsThePermitThenStartsPoolThenSiteThenProbes) {
  CallResult result = call(Verb::kOnline);
  ASSERT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(), ElementsAre("POST /v1/permits/shop {\"deadlineBoottimeMs\":1010000}",
                                     "POST /v1/pools/shop-pool/start", "POST /v1/sites/shop/start",
                                     "probe / Host=127.0.0.1:" + std::to_string(binding_->port())));
  EXPECT_EQ(service_->sites()["shop"].state, "Started");
  EXPECT_EQ(service_->pools()["shop-pool"].state, "Started");
  EXPECT_THAT(result.output, Contains(HasSubstr("permit granted until boottime 1010000 ms")));
  EXPECT_THAT(result.output, Contains(HasSubstr("answered 200")));
}

TEST_F(WebsiteResourceTest, OnlineLeavesStartedPoolAndSiteAloneAndUsesThePoolParameter) {
  service_->pools()["other-pool"] = {};
  make_running();
  CallContext c = context();
  c.parameters["pool"] = "other-pool";
  c.parameters["probePath"] = "/health";
  CallResult result = call(Verb::kOnline, c);
  ASSERT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(),
              ElementsAre(StartsWith("POST /v1/permits/shop"), "POST /v1/pools/other-pool/start",
                          StartsWith("probe /health")));
}

TEST_F(WebsiteResourceTest, OnlineRefusesOnceTheFencingDeadlineHasPassed) {
  deadline_ = clock_.now();
  CallResult result = call(Verb::kOnline);
  EXPECT_FALSE(result.ok);
  EXPECT_FALSE(result.timed_out);
  EXPECT_THAT(result.detail, HasSubstr("fencing deadline passed"));
  EXPECT_THAT(actions(), IsEmpty());
  EXPECT_EQ(service_->sites()["shop"].state, "Stopped");
}

TEST_F(WebsiteResourceTest, OnlineTimesOutWhenTheProbeNeverAnswers) {
  binding_->silent() = true;
  CallContext c = context(400ms);
  c.parameters["probeTimeout"] = "100ms";
  CallResult result = call(Verb::kOnline, c);
  EXPECT_FALSE(result.ok);
  EXPECT_TRUE(result.timed_out);
  EXPECT_THAT(result.detail, HasSubstr("no answer in time"));
  EXPECT_GE(binding_->probes(), 1);
}

TEST_F(WebsiteResourceTest, OnlineKeepsProbingUntilTheExpectedStatus) {
  binding_->status() = 503;
  CallContext c = context();
  c.parameters["expectStatus"] = "204";
  std::optional<CallResult> out;
  start(Verb::kOnline, c, out);
  ASSERT_TRUE(run_until([&] { return binding_->probes() >= 1; }));
  binding_->status() = 204;
  ASSERT_TRUE(run_until([&] { return out.has_value(); }));
  EXPECT_TRUE(out->ok) << out->detail;
  EXPECT_GE(binding_->probes(), 2);
}

TEST_F(WebsiteResourceTest, OnlineWaitsForTheAdminSocket) {
  service_ = std::make_unique<FakeWebService>(io_, socket_, journal_);
  FakeWebService::Site shop;
  shop.bindings = {binding_->url()};
  shop.applications = {{"/", "shop-pool"}};
  service_->sites()["shop"] = shop;
  service_->pools()["shop-pool"] = {};
  // The service comes up a little after the call starts, as when the agent
  // has just started it.
  boost::asio::steady_timer later(io_, 100ms);
  later.async_wait([this](const boost::system::error_code&) { ASSERT_TRUE(service_->listen()); });
  CallResult result = call(Verb::kOnline);
  ASSERT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(result.output, Contains(HasSubstr("web service answers")));
}

TEST_F(WebsiteResourceTest, OnlineReportsTheServiceRefusingTheSite) {
  service_->overrides()["POST /v1/sites/shop/start"] = {409, R"({"error": "site is busy"})"};
  CallResult result = call(Verb::kOnline);
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.detail, HasSubstr("site is busy"));
  EXPECT_EQ(binding_->probes(), 0);
}

TEST_F(WebsiteResourceTest, OnlineFailsForAnUnknownSite) {
  CallContext c = context();
  c.parameters["site"] = "nosuch";
  CallResult result = call(Verb::kOnline, c);
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.detail, HasSubstr("does not exist"));
  EXPECT_THAT(actions(), IsEmpty());
}

TEST_F(WebsiteResourceTest, LooksAliveReadsTheAdminApiOnly) {
  make_running();
  CallResult result = call(Verb::kLooksAlive);
  EXPECT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(), IsEmpty());
}

TEST_F(WebsiteResourceTest, LooksAliveFailsForEachMissingPiece) {
  make_running();
  service_->sites()["shop"].state = "Stopped";
  EXPECT_THAT(call(Verb::kLooksAlive).detail, HasSubstr("site shop is Stopped"));

  make_running();
  service_->sites()["shop"].permit_deadline_ms = kBoottimeMs;
  EXPECT_THAT(call(Verb::kLooksAlive).detail, HasSubstr("no live permit"));

  make_running();
  service_->pools()["shop-pool"].state = "Stopped";
  service_->pools()["shop-pool"].reason = "RapidFailProtection";
  EXPECT_THAT(call(Verb::kLooksAlive).detail,
              HasSubstr("pool shop-pool is Stopped (RapidFailProtection)"));

  make_running();
  service_->pools()["shop-pool"].workers.clear();
  EXPECT_THAT(call(Verb::kLooksAlive).detail, HasSubstr("no live worker"));

  service_.reset();
  CallResult unreachable = call(Verb::kLooksAlive);
  EXPECT_FALSE(unreachable.ok);
  EXPECT_THAT(unreachable.detail, HasSubstr(socket_));
}

TEST_F(WebsiteResourceTest, IsAliveProbesWithTheExpectedStatus) {
  make_running();
  EXPECT_TRUE(call(Verb::kIsAlive).ok);
  EXPECT_EQ(binding_->probes(), 1);

  binding_->status() = 404;
  EXPECT_TRUE(call(Verb::kIsAlive).ok) << "any status below 500 answers by default";

  CallContext c = context();
  c.parameters["expectStatus"] = "200";
  CallResult wrong = call(Verb::kIsAlive, c);
  EXPECT_FALSE(wrong.ok);
  EXPECT_THAT(wrong.detail, HasSubstr("answered 404, expected status 200"));

  binding_->status() = 503;
  EXPECT_FALSE(call(Verb::kIsAlive).ok);
}

TEST_F(WebsiteResourceTest, APoolWhoseWorkerIsReplacedWithinTheGraceIsAlive) {
  make_running();
  service_->pools()["shop-pool"].workers.clear();
  // The web service starts a new worker 100 ms later.
  boost::asio::steady_timer replaced(io_, 100ms);
  replaced.async_wait(
      [this](boost::system::error_code) { service_->pools()["shop-pool"].workers = {5678}; });
  CallContext c = context();
  c.parameters["workerGrace"] = "2s";
  CallResult result = call(Verb::kLooksAlive, c);
  EXPECT_TRUE(result.ok) << result.detail;
}

TEST_F(WebsiteResourceTest, APoolStoppingDuringTheGraceFailsAtOnce) {
  make_running();
  service_->pools()["shop-pool"].workers.clear();
  boost::asio::steady_timer stopped(io_, 100ms);
  stopped.async_wait([this](boost::system::error_code) {
    service_->pools()["shop-pool"].state = "Stopped";
    service_->pools()["shop-pool"].reason = "RapidFailProtection";
  });
  CallContext c = context();
  c.parameters["workerGrace"] = "2s";
  CallResult result = call(Verb::kLooksAlive, c);
  EXPECT_FALSE(result.ok);
  // The pool was read again during the grace: its stop is the reason given.
  EXPECT_THAT(result.detail, HasSubstr("pool shop-pool is Stopped (RapidFailProtection)"));
}

TEST_F(WebsiteResourceTest, RefusesABadWorkerGrace) {
  CallContext c = context();
  c.parameters["workerGrace"] = "-1s";
  EXPECT_THAT(call(Verb::kLooksAlive, c).detail, HasSubstr("parameter workerGrace"));
}

TEST_F(WebsiteResourceTest, IsAliveFailsWithoutProbingWhenTheSiteLooksDead) {
  make_running();
  service_->pools()["shop-pool"].workers.clear();
  EXPECT_FALSE(call(Verb::kIsAlive).ok);
  EXPECT_EQ(binding_->probes(), 0);
}

TEST_F(WebsiteResourceTest, IsAliveProbesHttpsWithTheHostNameAsSni) {
  FakeBinding secure(io_, journal_, /*tls=*/true);
  make_running();
  service_->sites()["shop"].bindings = {secure.url() + "/www.example.com"};
  CallResult result = call(Verb::kIsAlive);
  EXPECT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(), ElementsAre("probe / Host=www.example.com:" +
                                         std::to_string(secure.port()) + " SNI=www.example.com",
                                     StartsWith("POST /v1/permits/shop")));
}

TEST_F(WebsiteResourceTest, OfflineStopsSiteThenPoolThenRevokesThePermit) {
  make_running();
  CallResult result = call(Verb::kOffline);
  ASSERT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(), ElementsAre("POST /v1/sites/shop/stop", "POST /v1/pools/shop-pool/stop",
                                     "POST /v1/permits/shop {\"deadlineBoottimeMs\":0}"));
  EXPECT_EQ(service_->sites()["shop"].state, "Stopped");
  EXPECT_EQ(service_->pools()["shop-pool"].state, "Stopped");
}

TEST_F(WebsiteResourceTest, OfflineKeepsThePoolAnotherStartedSiteUses) {
  make_running();
  FakeWebService::Site blog;
  blog.state = "Started";
  blog.applications = {{"/", "blog-pool"}, {"/shop", "shop-pool"}};
  service_->sites()["blog"] = blog;
  CallResult result = call(Verb::kOffline);
  ASSERT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(), ElementsAre("POST /v1/sites/shop/stop",
                                     "POST /v1/permits/shop {\"deadlineBoottimeMs\":0}"));
  EXPECT_EQ(service_->pools()["shop-pool"].state, "Started");
  EXPECT_THAT(result.output, Contains("pool shop-pool kept: used by site blog"));

  // A stopped user does not keep it.
  make_running();
  service_->sites()["blog"].state = "Stopped";
  ASSERT_TRUE(call(Verb::kOffline).ok);
  EXPECT_EQ(service_->pools()["shop-pool"].state, "Stopped");
}

TEST_F(WebsiteResourceTest, TerminateRevokesThePermitFirst) {
  make_running();
  CallResult result = call(Verb::kTerminate);
  ASSERT_TRUE(result.ok) << result.detail;
  EXPECT_THAT(actions(), ElementsAre("POST /v1/permits/shop {\"deadlineBoottimeMs\":0}",
                                     "POST /v1/sites/shop/stop", "POST /v1/pools/shop-pool/stop"));
}

TEST_F(WebsiteResourceTest, TerminateFailsWhenTheServiceCannotBeReached) {
  make_running();
  service_.reset();
  CallResult result = call(Verb::kTerminate, context(500ms));
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.detail, HasSubstr("may still serve"));
}

TEST_F(WebsiteResourceTest, TerminateSupersedesARunningOnline) {
  binding_->silent() = true;
  std::optional<CallResult> online;
  start(Verb::kOnline, context(5000ms), online);
  ASSERT_TRUE(run_until([&] { return binding_->probes() >= 1; }));
  std::optional<CallResult> terminate;
  start(Verb::kTerminate, context(), terminate);
  ASSERT_TRUE(run_until([&] { return online.has_value() && terminate.has_value(); }));
  EXPECT_FALSE(online->ok);
  EXPECT_EQ(online->detail, "superseded by terminate");
  EXPECT_TRUE(terminate->ok) << terminate->detail;
  EXPECT_EQ(service_->sites()["shop"].state, "Stopped");
}

TEST_F(WebsiteResourceTest, RenewedRepostsThePermitOnlyWhileOnline) {
  resource_->renewed(clock_.now() + 20s);
  make_running();
  ASSERT_TRUE(call(Verb::kLooksAlive).ok);
  EXPECT_EQ(count_of("POST /v1/permits"), 0U) << "not online yet";

  ASSERT_TRUE(call(Verb::kOnline).ok);
  clock_.advance(1s);
  resource_->renewed(clock_.now() + 20s);
  ASSERT_TRUE(run_until([&] { return service_->permits().size() == 2; }));
  EXPECT_EQ(service_->permits().back().second, kBoottimeMs + 20'000);

  ASSERT_TRUE(call(Verb::kOffline).ok);
  const std::size_t posted = service_->permits().size();
  resource_->renewed(clock_.now() + 30s);
  EXPECT_FALSE(call(Verb::kLooksAlive).ok);
  EXPECT_EQ(service_->permits().size(), posted) << "no renewal after offline";
  EXPECT_EQ(service_->permits().back().second, 0);
}

TEST_F(WebsiteResourceTest, AnIsAliveOfASiteServingUnderAnotherPermitTakesOverItsRenewals) {
  // Started and permitted by the agent's previous run; this object never went online.
  make_running();
  ASSERT_TRUE(call(Verb::kIsAlive).ok);
  ASSERT_EQ(count_of("POST /v1/permits"), 1U) << "the permit is granted anew";
  clock_.advance(1s);
  resource_->renewed(clock_.now() + 20s);
  ASSERT_TRUE(run_until([&] { return service_->permits().size() == 2; }));
  EXPECT_EQ(service_->permits().back().second, kBoottimeMs + 20'000);
}

TEST_F(WebsiteResourceTest, RenewedKeepsOnePostInFlightAndSendsTheNewestDeadlineNext) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  service_->held().insert("POST /v1/permits/shop");
  resource_->renewed(clock_.now() + 20s);
  ASSERT_TRUE(run_until([&] { return service_->requests_in_flight() == 1; }));
  resource_->renewed(clock_.now() + 30s);
  resource_->renewed(clock_.now() + 40s);
  ASSERT_TRUE(call(Verb::kLooksAlive).ok);
  EXPECT_EQ(count_of("POST /v1/permits"), 2U) << "the online grant and one renewal";

  service_->release();
  ASSERT_TRUE(run_until([&] { return service_->permits().size() == 3; }));
  EXPECT_EQ(service_->permits()[1].second, kBoottimeMs + 20'000);
  EXPECT_EQ(service_->permits()[2].second, kBoottimeMs + 40'000);
  ASSERT_TRUE(call(Verb::kLooksAlive).ok);
  EXPECT_EQ(service_->permits().size(), 3U);
}

TEST_F(WebsiteResourceTest, RenewedSkipsADeadlineThatHasPassed) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  resource_->renewed(clock_.now() - 1ms);
  ASSERT_TRUE(call(Verb::kLooksAlive).ok);
  EXPECT_EQ(service_->permits().size(), 1U);
}

TEST_F(WebsiteResourceTest, WatchReportsASiteThatStops) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  std::vector<std::string> reasons;
  resource_->watch(io_.get_executor(), [&](std::string reason) { reasons.push_back(reason); });
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 1; }));
  // The event alone tells: no need to look.
  service_->emit({{"seq", 9},
                  {"type", "site"},
                  {"name", "shop"},
                  {"state", "Stopped"},
                  {"reason", "Disabled"},
                  {"message", "site stopped by administrator"}});
  ASSERT_TRUE(run_until([&] { return !reasons.empty(); }));
  EXPECT_THAT(reasons, ElementsAre("site shop is Stopped (Disabled)"));
  resource_->unwatch();
}

TEST_F(WebsiteResourceTest, WatchReportsThePoolsLastWorkerExitingOncePerFailure) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  std::vector<std::string> reasons;
  resource_->watch(io_.get_executor(), [&](std::string reason) { reasons.push_back(reason); });
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 1; }));
  const nlohmann::json pool_event = {{"seq", 9},
                                     {"type", "pool"},
                                     {"name", "shop-pool"},
                                     {"state", "Started"},
                                     {"message", "pool Started with 0 ready worker(s)"}};
  service_->pools()["shop-pool"].workers.clear();
  service_->emit(pool_event);
  ASSERT_TRUE(run_until([&] { return !reasons.empty(); }));
  EXPECT_THAT(reasons, ElementsAre("pool shop-pool has no live worker"));

  // The same failure again is not news; after a recovery it is. Each event
  // makes the watcher read the pool, and it reads one answer at a time, so a
  // read seen by the service means the answers before it have been handled.
  const auto pool_reads = [this] { return count_of("GET /v1/pools/shop-pool"); };
  std::size_t before = pool_reads();
  service_->emit(pool_event);
  ASSERT_TRUE(run_until([&] { return pool_reads() > before; }));
  service_->pools()["shop-pool"].workers = {4321};
  before = pool_reads();
  service_->emit(pool_event);
  ASSERT_TRUE(run_until([&] { return pool_reads() > before; }));
  service_->pools()["shop-pool"].workers.clear();
  service_->emit(pool_event);
  ASSERT_TRUE(run_until([&] { return reasons.size() >= 2; }));
  before = pool_reads();
  service_->emit({{"seq", 10}, {"type", "reload"}, {"state", "Applied"}, {"message", "fake"}});
  ASSERT_TRUE(run_until([&] { return pool_reads() > before; }));
  EXPECT_THAT(reasons, ElementsAre("pool shop-pool has no live worker",
                                   "pool shop-pool has no live worker"));
  resource_->unwatch();
}

TEST_F(WebsiteResourceTest, WatchChecksAgainAfterReconnecting) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  std::vector<std::string> reasons;
  const std::size_t reads = count_of("GET /v1/pools/shop-pool");
  resource_->watch(io_.get_executor(), [&](std::string reason) { reasons.push_back(reason); });
  // Connected, and the first look done.
  ASSERT_TRUE(run_until([&] {
    return service_->event_streams() == 1 && count_of("GET /v1/pools/shop-pool") > reads;
  }));
  // The service restarts: its streams end, and the site comes back Stopped
  // without an event the watcher could have seen.
  service_.reset();
  service_ = std::make_unique<FakeWebService>(io_, socket_, journal_);
  FakeWebService::Site shop;
  shop.bindings = {binding_->url()};
  service_->sites()["shop"] = shop;
  ASSERT_TRUE(service_->listen());
  ASSERT_TRUE(run_until([&] { return !reasons.empty(); }));
  EXPECT_THAT(reasons, ElementsAre("site shop is Stopped"));
  EXPECT_EQ(service_->event_streams_opened(), 1);
  resource_->unwatch();
}

TEST_F(WebsiteResourceTest, NothingIsReportedAfterUnwatch) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  std::vector<std::string> reasons;
  resource_->watch(io_.get_executor(), [&](std::string reason) { reasons.push_back(reason); });
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 1; }));
  resource_->unwatch();
  service_->sites()["shop"].state = "Stopped";
  service_->emit({{"seq", 9}, {"type", "site"}, {"name", "shop"}, {"state", "Stopped"}});
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 0; }));
  ASSERT_FALSE(call(Verb::kLooksAlive).ok);
  EXPECT_THAT(reasons, IsEmpty());
  EXPECT_EQ(service_->event_streams_opened(), 1);
}

TEST_F(WebsiteResourceTest, NothingIsReportedOnceOfflineStarted) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  std::vector<std::string> reasons;
  resource_->watch(io_.get_executor(), [&](std::string reason) { reasons.push_back(reason); });
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 1; }));
  ASSERT_TRUE(call(Verb::kOffline).ok);
  ASSERT_FALSE(call(Verb::kLooksAlive).ok);
  EXPECT_THAT(reasons, IsEmpty());
  resource_->unwatch();
}

TEST_F(WebsiteResourceTest, DestroyingTheResourceEndsACallInFlight) {
  binding_->silent() = true;
  std::optional<CallResult> online;
  start(Verb::kOnline, context(5000ms), online);
  ASSERT_TRUE(run_until([&] { return binding_->probes() >= 1; }));
  resource_.reset();
  ASSERT_TRUE(run_until([&] { return online.has_value(); }, 1000ms));
  EXPECT_FALSE(online->ok);
  EXPECT_EQ(online->detail, "resource destroyed");
}

TEST_F(WebsiteResourceTest, DestroyingTheResourceEndsItsWatchAndRenewal) {
  ASSERT_TRUE(call(Verb::kOnline).ok);
  std::vector<std::string> reasons;
  resource_->watch(io_.get_executor(), [&](std::string reason) { reasons.push_back(reason); });
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 1; }));
  service_->held().insert("POST /v1/permits/shop");
  resource_->renewed(clock_.now() + 20s);
  ASSERT_TRUE(run_until([&] { return service_->requests_in_flight() == 1; }));

  resource_.reset();
  ASSERT_TRUE(run_until([&] { return service_->event_streams() == 0; }));
  service_->release();
  service_->emit({{"seq", 9}, {"type", "site"}, {"name", "shop"}, {"state", "Stopped"}});
  ASSERT_TRUE(run_until([&] { return service_->requests_in_flight() == 0; }));
  EXPECT_THAT(reasons, IsEmpty());
}

}  // namespace
}  // namespace clusweb::resources
