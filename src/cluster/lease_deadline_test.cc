#include "cluster/lease_deadline.h"

#include <gtest/gtest.h>

namespace clusweb::cluster {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::TimePoint kStart{std::chrono::hours(5)};

TEST(LeaseDeadlineTest, DeadlineCountsFromTheSendTimeMinusTheMargin) {
  LeaseDeadline lease({});
  EXPECT_FALSE(lease.held());
  EXPECT_TRUE(lease.expired(kStart));
  lease.granted(kStart, seconds(2));
  EXPECT_EQ(lease.deadline(), kStart + milliseconds(1500));
  EXPECT_FALSE(lease.expired(kStart + milliseconds(1499)));
  EXPECT_TRUE(lease.expired(kStart + milliseconds(1500)));
}

TEST(LeaseDeadlineTest, AcknowledgementsMoveTheDeadlineOnlyForward) {
  LeaseDeadline lease({});
  lease.granted(kStart, seconds(2));
  lease.acknowledged(kStart + milliseconds(700), seconds(2));
  EXPECT_EQ(lease.deadline(), kStart + milliseconds(2200));
  // The late reply of an older keepalive changes nothing.
  lease.acknowledged(kStart + milliseconds(100), seconds(2));
  EXPECT_EQ(lease.deadline(), kStart + milliseconds(2200));
  EXPECT_EQ(lease.next_renewal(), kStart + milliseconds(700) + Clock::Duration(seconds(2)) / 3);
}

TEST(LeaseDeadlineTest, TheStoreTakesTheGrantedTtlNotTheOneAskedFor) {
  LeaseDeadline lease({});
  lease.granted(kStart, seconds(5));  // asked for 2, granted 5
  EXPECT_EQ(lease.deadline(), kStart + milliseconds(4500));
}

TEST(LeaseDeadlineTest, AKeepaliveIsOverdueAfterOneRenewalInterval) {
  LeaseDeadline lease({});
  lease.granted(kStart, seconds(3));
  const Clock::TimePoint sent = kStart + seconds(1);
  EXPECT_FALSE(lease.overdue(sent, sent + milliseconds(999)));
  EXPECT_TRUE(lease.overdue(sent, sent + seconds(1)));
}

TEST(LeaseDeadlineTest, TtlMustSurviveOneLostKeepalive) {
  LeaseDeadline lease({});
  EXPECT_TRUE(lease.check_ttl(seconds(2)).ok());
  EXPECT_TRUE(lease.check_ttl(seconds(10)).ok());
  Status short_ttl = lease.check_ttl(seconds(1));
  ASSERT_FALSE(short_ttl.ok());
  EXPECT_EQ(short_ttl.error().describe(),
            "lease TTL 1000 ms is too short: two renewal intervals plus the 500 ms margin need "
            "more");
  LeaseDeadline once({milliseconds(500), 1});
  EXPECT_FALSE(once.check_ttl(seconds(10)).ok());
}

TEST(LeaseDeadlineTest, TheDeadlineComesBeforeTheStoreCanExpireTheLease) {
  // The store restarts the TTL when it receives the keepalive; any network
  // delay only puts its expiry later than the holder's deadline.
  LeaseDeadline lease({});
  lease.granted(kStart, seconds(2));
  for (int i = 1; i <= 50; ++i) {
    const Clock::TimePoint sent = kStart + i * milliseconds(666);
    const Clock::TimePoint received = sent + milliseconds(i % 7 * 40);
    lease.acknowledged(sent, seconds(2));
    EXPECT_LT(lease.deadline(), received + seconds(2));
  }
}

}  // namespace
}  // namespace clusweb::cluster
