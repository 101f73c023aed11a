#include "web/protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace clusweb::web::protocol {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(ProtocolTest, PermitsRoundTrip) {
  PermitsMessage message;
  message.deadlines = {{"blog", 0}, {"shop", 123'456'789}};
  const std::string text = encode(message);

  ASSERT_EQ(*message_type(text), "permits");
  auto decoded = decode_permits(text);
  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_THAT(decoded->deadlines, ElementsAre(Pair("blog", 0), Pair("shop", 123'456'789)));
}

TEST(ProtocolTest, ConfigCarriesThePermits) {
  ConfigMessage message;
  message.generation = 3;
  message.seq = 7;
  message.config_json = "{}";
  message.sites_started = {{"shop", false}};
  message.permits = {{"shop", 42}};

  auto decoded = decode_config(encode(message));

  ASSERT_TRUE(decoded.ok()) << decoded.error().describe();
  EXPECT_THAT(decoded->permits, ElementsAre(Pair("shop", 42)));
}

TEST(ProtocolTest, MalformedPermitsAreAnError) {
  EXPECT_FALSE(decode_permits(R"({"type":"permits"})").ok());
  EXPECT_FALSE(decode_permits(R"({"type":"permits","deadlines":{"shop":"soon"}})").ok());
}

}  // namespace
}  // namespace clusweb::web::protocol
