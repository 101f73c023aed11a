#include "web/permit_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace clusweb::web {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::Pair;

// A table on a CLOCK_BOOTTIME that moves only when the test says so.
class PermitTableTest : public ::testing::Test {
 protected:
  std::int64_t now_ = 1'000'000;
  PermitTable table_{[this] { return now_; }};
};

TEST_F(PermitTableTest, SitesAreNotClusteredUntilListedOrGranted) {
  EXPECT_FALSE(table_.clustered("shop"));
  EXPECT_TRUE(table_.may_serve("shop"));
  EXPECT_EQ(table_.remaining_ms("shop"), std::nullopt);
  EXPECT_THAT(table_.deadlines(), IsEmpty());
}

TEST_F(PermitTableTest, ListedSiteIsClusteredWithoutAPermit) {
  table_.set_listed({"shop"});

  EXPECT_TRUE(table_.clustered("shop"));
  EXPECT_FALSE(table_.may_serve("shop"));
  EXPECT_EQ(table_.remaining_ms("shop"), std::nullopt);
  EXPECT_THAT(table_.deadlines(), ElementsAre(Pair("shop", 0)));
  EXPECT_EQ(table_.next_deadline(), std::nullopt);
}

TEST_F(PermitTableTest, GrantMakesTheSiteClusteredAndLetsItServeUntilTheDeadline) {
  auto grant = table_.grant("shop", now_ + 2000);

  EXPECT_FALSE(grant.was_live);
  EXPECT_TRUE(grant.live);
  EXPECT_TRUE(table_.clustered("shop"));
  EXPECT_TRUE(table_.may_serve("shop"));
  EXPECT_THAT(table_.remaining_ms("shop"), Optional(2000));
  EXPECT_THAT(table_.next_deadline(), Optional(now_ + 2000));

  now_ += 1999;
  EXPECT_TRUE(table_.may_serve("shop"));
  EXPECT_THAT(table_.remaining_ms("shop"), Optional(1));
  EXPECT_THAT(table_.take_lapsed(), IsEmpty());

  now_ += 1;  // the deadline itself is past the permit
  EXPECT_FALSE(table_.may_serve("shop"));
  EXPECT_THAT(table_.remaining_ms("shop"), Optional(0));
  EXPECT_TRUE(table_.clustered("shop"));
}

TEST_F(PermitTableTest, LapseIsReportedOnce) {
  table_.grant("shop", now_ + 1000);
  table_.grant("blog", now_ + 3000);

  now_ += 1000;
  EXPECT_THAT(table_.take_lapsed(), ElementsAre("shop"));
  EXPECT_THAT(table_.take_lapsed(), IsEmpty());
  EXPECT_THAT(table_.next_deadline(), Optional(now_ + 2000));

  now_ += 5000;
  EXPECT_THAT(table_.take_lapsed(), ElementsAre("blog"));
  EXPECT_EQ(table_.next_deadline(), std::nullopt);
}

TEST_F(PermitTableTest, RenewalBeforeTheDeadlineExtendsWithoutALapse) {
  table_.grant("shop", now_ + 1000);
  for (int i = 0; i < 5; ++i) {
    now_ += 600;
    auto grant = table_.grant("shop", now_ + 1000);
    EXPECT_TRUE(grant.was_live);
    EXPECT_TRUE(grant.live);
    EXPECT_THAT(table_.take_lapsed(), IsEmpty());
  }
  EXPECT_TRUE(table_.may_serve("shop"));
  EXPECT_THAT(table_.next_deadline(), Optional(now_ + 1000));
}

TEST_F(PermitTableTest, RevokingEndsThePermitAtOnceAndIsNotReportedAsALapse) {
  table_.grant("shop", now_ + 5000);

  auto grant = table_.grant("shop", 0);

  EXPECT_TRUE(grant.was_live);
  EXPECT_FALSE(grant.live);
  EXPECT_FALSE(table_.may_serve("shop"));
  EXPECT_THAT(table_.remaining_ms("shop"), Optional(0));
  EXPECT_THAT(table_.take_lapsed(), IsEmpty());
  EXPECT_EQ(table_.next_deadline(), std::nullopt);
  EXPECT_THAT(table_.deadlines(), ElementsAre(Pair("shop", 0)));
}

TEST_F(PermitTableTest, DeadlineInThePastRevokesToo) {
  auto grant = table_.grant("shop", now_ - 1);

  EXPECT_FALSE(grant.was_live);
  EXPECT_FALSE(grant.live);
  EXPECT_TRUE(table_.clustered("shop"));
  EXPECT_FALSE(table_.may_serve("shop"));
}

TEST_F(PermitTableTest, GrantAfterALapseStartsAgain) {
  table_.grant("shop", now_ + 100);
  now_ += 200;
  ASSERT_THAT(table_.take_lapsed(), ElementsAre("shop"));

  auto grant = table_.grant("shop", now_ + 100);

  EXPECT_FALSE(grant.was_live);
  EXPECT_TRUE(grant.live);
  now_ += 100;
  EXPECT_THAT(table_.take_lapsed(), ElementsAre("shop"));
}

TEST_F(PermitTableTest, GrantedSiteStaysClusteredWhenTheListDropsIt) {
  table_.set_listed({"shop", "blog"});
  table_.grant("shop", now_ + 1000);

  table_.set_listed({});

  EXPECT_TRUE(table_.clustered("shop"));
  EXPECT_FALSE(table_.clustered("blog"));
  EXPECT_TRUE(table_.may_serve("blog"));
}

TEST_F(PermitTableTest, SitesLeavingTheConfigurationAreForgotten) {
  table_.set_listed({"blog"});
  table_.grant("shop", now_ + 1000);

  table_.retain({"other"});

  EXPECT_FALSE(table_.clustered("shop"));
  EXPECT_FALSE(table_.clustered("blog"));
  EXPECT_EQ(table_.remaining_ms("shop"), std::nullopt);
  EXPECT_EQ(table_.next_deadline(), std::nullopt);
  EXPECT_THAT(table_.deadlines(), IsEmpty());
}

TEST_F(PermitTableTest, DeadlinesNameEveryClusteredSite) {
  table_.set_listed({"blog"});
  table_.grant("shop", now_ + 1000);

  EXPECT_THAT(table_.deadlines(), ElementsAre(Pair("blog", 0), Pair("shop", now_ + 1000)));
}

}  // namespace
}  // namespace clusweb::web
