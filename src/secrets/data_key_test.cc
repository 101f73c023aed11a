#include "secrets/data_key.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

namespace clusweb::secrets {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kPassword = "correct horse battery staple";
constexpr std::string_view kCluster = "prod";

// Fixed key bytes, so a test can look for them (and their encodings) where they must not be.
std::string raw_key(unsigned char seed) {
  std::string raw(DataKey::kSize, '\0');
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(seed + i * 7);
  return raw;
}

DataKey key_from(unsigned char seed) {
  return std::move(DataKey::from_bytes(raw_key(seed))).value();
}

std::string hex(std::string_view data) {
  std::string text(data.size() * 2 + 1, '\0');
  sodium_bin2hex(text.data(), text.size(), reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  text.pop_back();
  return text;
}

std::string base64(std::string_view data, int variant) {
  std::string text(sodium_base64_ENCODED_LEN(data.size(), variant), '\0');
  sodium_bin2base64(text.data(), text.size(), reinterpret_cast<const unsigned char*>(data.data()),
                    data.size(), variant);
  text.pop_back();
  return text;
}

// Every form in which `secret` could leak into a text.
std::vector<std::string> encodings(std::string_view secret) {
  return {std::string(secret), hex(secret), base64(secret, sodium_base64_VARIANT_ORIGINAL),
          base64(secret, sodium_base64_VARIANT_ORIGINAL_NO_PADDING),
          base64(secret, sodium_base64_VARIANT_URLSAFE_NO_PADDING)};
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The nonce || ciphertext of a sealed value, and the value rebuilt around an altered one.
std::string payload_of(const std::string& sealed) {
  std::string encoded = sealed.substr(sealed.rfind(':') + 1);
  std::string data(encoded.size(), '\0');
  std::size_t size = 0;
  EXPECT_EQ(
      sodium_base642bin(reinterpret_cast<unsigned char*>(data.data()), data.size(), encoded.data(),
                        encoded.size(), nullptr, &size, nullptr, sodium_base64_VARIANT_ORIGINAL),
      0);
  data.resize(size);
  return data;
}
std::string with_payload(const std::string& sealed, std::string_view payload) {
  return sealed.substr(0, sealed.rfind(':') + 1) + base64(payload, sodium_base64_VARIANT_ORIGINAL);
}

// ---------------------------------------------------------------------------------------------
// Sealing.

TEST(DataKeyTest, SealedValuesOpenInTheirContext) {
  DataKey key = DataKey::generate();
  std::string binary("a\0b\xff\n", 5);
  for (std::string_view plaintext :
       {std::string_view("s3cret-value"), std::string_view(""), std::string_view(binary)}) {
    std::string sealed = key.seal(plaintext, "site/shop/bindings[0].key");
    EXPECT_TRUE(is_sealed(sealed));
    EXPECT_TRUE(sealed.starts_with("sealed:v1:" + key.id() + ":")) << sealed;
    auto opened = key.open(sealed, "site/shop/bindings[0].key");
    ASSERT_TRUE(opened) << opened.error().describe();
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(DataKeyTest, SealingIsDeterministicPerContext) {
  DataKey key = key_from(1);
  std::string once = key.seal("hunter22", "pool/app/env.TOKEN");
  EXPECT_EQ(key.seal("hunter22", "pool/app/env.TOKEN"), once);
  // The same key, loaded again, seals the same way: the nonce depends on nothing else.
  EXPECT_EQ(key_from(1).seal("hunter22", "pool/app/env.TOKEN"), once);
  EXPECT_NE(key.seal("hunter22", "pool/app/env.OTHER"), once);
  EXPECT_NE(key.seal("hunter23", "pool/app/env.TOKEN"), once);
  // The length prefix keeps context and plaintext apart: moving a byte between them changes it.
  EXPECT_NE(key.seal("bc", "a"), key.seal("c", "ab"));
}

TEST(DataKeyTest, AValueMovedToAnotherFieldDoesNotOpen) {
  DataKey key = key_from(1);
  std::string sealed = key.seal("private key", "site/shop/bindings[0].key");
  auto opened = key.open(sealed, "site/shop/bindings[1].key");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().describe(), "does not open (altered, or sealed for another field)");
}

TEST(DataKeyTest, AnyAlteredByteIsDetected) {
  DataKey key = key_from(1);
  std::string sealed = key.seal("private key", "ctx");
  std::string payload = payload_of(sealed);
  ASSERT_EQ(payload.size(), 24u + 11u + 16u);  // nonce, ciphertext, tag
  for (std::size_t i = 0; i < payload.size(); ++i) {
    SCOPED_TRACE(i);
    std::string altered = payload;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    auto opened = key.open(with_payload(sealed, altered), "ctx");
    ASSERT_FALSE(opened);
    EXPECT_TRUE(contains(opened.error().describe(), "does not open")) << opened.error().describe();
  }
  std::string truncated = payload.substr(0, payload.size() - 1);
  EXPECT_FALSE(key.open(with_payload(sealed, truncated), "ctx"));
}

TEST(DataKeyTest, AValueOfAnotherKeyNamesBothKeys) {
  DataKey mine = key_from(1);
  DataKey theirs = key_from(2);
  ASSERT_NE(mine.id(), theirs.id());
  auto opened = mine.open(theirs.seal("secret", "ctx"), "ctx");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().describe(),
            "sealed with key " + theirs.id() + ", this node holds key " + mine.id());
}

TEST(DataKeyTest, TextsThatAreNotSealedValuesAreNamedSo) {
  DataKey key = key_from(1);
  std::string sealed = key.seal("secret", "ctx");
  std::string prefix = "sealed:v1:" + key.id() + ":";
  struct Case {
    std::string text;
    std::string expected;
  };
  for (const Case& c : {
           Case{"secret", "not a sealed value (no \"sealed:\" prefix)"},
           Case{"sealed:v1:", "not a sealed value (no key id)"},
           Case{"sealed:v1:nope:AAAA", "not a sealed value (bad key id)"},
           Case{prefix + "not base64!", "not a sealed value (bad base64)"},
           Case{prefix + sealed.substr(prefix.size()) + "x", "not a sealed value (bad base64)"},
           Case{prefix + "AAAA", "not a sealed value (too short)"},
           Case{"sealed:v2:" + sealed.substr(10),
                "sealed value of unknown version \"v2\" (this clusweb reads v1)"},
       }) {
    SCOPED_TRACE(c.text);
    auto opened = key.open(c.text, "ctx");
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().describe(), c.expected);
  }
  EXPECT_TRUE(is_sealed("sealed:v2:anything"));
  EXPECT_FALSE(is_sealed("-----BEGIN PRIVATE KEY-----"));
  EXPECT_FALSE(is_sealed(""));
}

TEST(DataKeyTest, TheKeyIdOfASealedValueIsReadWithoutTheKey) {
  DataKey key = key_from(1);
  auto id = sealed_key_id(key.seal("secret", "ctx"));
  ASSERT_TRUE(id.ok()) << id.error().describe();
  EXPECT_EQ(*id, key.id());
  EXPECT_EQ(sealed_key_id("secret").error().describe(),
            "not a sealed value (no \"sealed:\" prefix)");
  EXPECT_EQ(sealed_key_id("sealed:v1:nope:AAAA").error().describe(),
            "not a sealed value (bad key id)");
  EXPECT_EQ(sealed_key_id("sealed:v9:x").error().describe(),
            "sealed value of unknown version \"v9\" (this clusweb reads v1)");
}

TEST(DataKeyTest, SealedTextsHoldNoPlaintextOrKey) {
  std::string raw = raw_key(1);
  DataKey key = key_from(1);
  const std::string plaintext = "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
  std::string sealed = key.seal(plaintext, "site/shop/bindings[0].key");
  for (const std::string& form : encodings(plaintext)) EXPECT_FALSE(contains(sealed, form));
  for (const std::string& form : encodings(raw)) EXPECT_FALSE(contains(sealed, form));
  // Nor any 6-byte piece of the plaintext.
  for (std::size_t i = 0; i + 6 <= plaintext.size(); ++i) {
    EXPECT_FALSE(contains(sealed, plaintext.substr(i, 6))) << plaintext.substr(i, 6);
  }
}

TEST(DataKeyTest, TheIdIsShortStableAndNotTheKey) {
  std::string raw = raw_key(1);
  DataKey key = key_from(1);
  ASSERT_EQ(key.id().size(), 17u);
  EXPECT_EQ(key.id()[0], 'k');
  EXPECT_EQ(key.id().find_first_not_of("0123456789abcdef", 1), std::string::npos);
  EXPECT_EQ(key_from(1).id(), key.id());
  EXPECT_FALSE(contains(hex(raw), key.id().substr(1)));
  EXPECT_NE(DataKey::generate().id(), DataKey::generate().id());
}

TEST(DataKeyTest, KeysAreMadeOnlyFromExactlyTheirSize) {
  auto short_key = DataKey::from_bytes(std::string(31, 'x'));
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().describe(), "a data key is 32 bytes, this is 31 bytes");
  EXPECT_FALSE(DataKey::from_bytes(std::string(33, 'x')));
  EXPECT_FALSE(DataKey::from_bytes(""));
}

TEST(DataKeyTest, AMovedKeyKeepsWorking) {
  DataKey first = key_from(1);
  std::string id = first.id();
  std::string sealed = first.seal("secret", "ctx");
  DataKey second = std::move(first);
  EXPECT_EQ(second.id(), id);
  EXPECT_EQ(*second.open(sealed, "ctx"), "secret");
  DataKey third = key_from(2);
  third = std::move(second);
  EXPECT_EQ(third.id(), id);
  EXPECT_EQ(*third.open(sealed, "ctx"), "secret");
}

// ---------------------------------------------------------------------------------------------
// Wrapping with a password.

std::string wrap_for_test(const DataKey& key) {
  auto record = wrap(key, kPassword, kCluster, kTestingMinimum);
  EXPECT_TRUE(record) << record.error().describe();
  return record ? *record : std::string();
}

TEST(WrapTest, UnwrapsWithThePasswordAndTheCluster) {
  DataKey key = key_from(1);
  std::string record = wrap_for_test(key);
  Json json = Json::parse(record);
  EXPECT_EQ(json["version"], 1);
  EXPECT_EQ(json["keyId"], key.id());
  EXPECT_EQ(json["kdf"], "argon2id13");
  EXPECT_EQ(json["opslimit"], 1);
  EXPECT_EQ(json["memlimit"], 8192);
  EXPECT_EQ(json.size(), 8u);

  auto id = record_key_id(record);
  ASSERT_TRUE(id) << id.error().describe();
  EXPECT_EQ(*id, key.id());

  auto unwrapped = unwrap(record, kPassword, kCluster);
  ASSERT_TRUE(unwrapped) << unwrapped.error().describe();
  EXPECT_EQ(unwrapped->id(), key.id());
  EXPECT_EQ(*unwrapped->open(key.seal("secret", "ctx"), "ctx"), "secret");
}

TEST(WrapTest, EachWrapIsFreshlySalted) {
  DataKey key = key_from(1);
  std::string first = wrap_for_test(key);
  std::string second = wrap_for_test(key);
  EXPECT_NE(Json::parse(first)["salt"], Json::parse(second)["salt"]);
  EXPECT_NE(Json::parse(first)["nonce"], Json::parse(second)["nonce"]);
}

TEST(WrapTest, TheRecordHoldsNeitherThePasswordNorTheKey) {
  std::string raw = raw_key(1);
  std::string record = wrap_for_test(key_from(1));
  for (const std::string& form : encodings(kPassword)) EXPECT_FALSE(contains(record, form));
  for (const std::string& form : encodings(raw)) EXPECT_FALSE(contains(record, form));
}

TEST(WrapTest, AWrongPasswordIsNamed) {
  std::string record = wrap_for_test(key_from(1));
  auto unwrapped = unwrap(record, "correct horse battery stapler", kCluster);
  ASSERT_FALSE(unwrapped);
  EXPECT_TRUE(unwrapped.error().describe().starts_with("wrong password"))
      << unwrapped.error().describe();
  EXPECT_FALSE(contains(unwrapped.error().describe(), "stapler"));
}

TEST(WrapTest, ARecordOfAnotherClusterDoesNotUnwrap) {
  std::string record = wrap_for_test(key_from(1));
  auto unwrapped = unwrap(record, kPassword, "staging");
  ASSERT_FALSE(unwrapped);
  EXPECT_TRUE(unwrapped.error().describe().starts_with("wrong password"));
}

TEST(WrapTest, ARecordWithAnotherKeyIdDoesNotUnwrap) {
  Json json = Json::parse(wrap_for_test(key_from(1)));
  json["keyId"] = key_from(2).id();
  auto unwrapped = unwrap(json.dump(), kPassword, kCluster);
  ASSERT_FALSE(unwrapped);
  EXPECT_TRUE(unwrapped.error().describe().starts_with("wrong password"));
}

TEST(WrapTest, ShortPasswordsAndLimitsOutOfRangeAreRefused) {
  DataKey key = key_from(1);
  auto short_password = wrap(key, "1234567", kCluster, kTestingMinimum);
  ASSERT_FALSE(short_password);
  EXPECT_EQ(short_password.error().describe(), "the password is too short: at least 8 characters");
  EXPECT_TRUE(wrap(key, "12345678", kCluster, kTestingMinimum));

  auto no_passes = wrap(key, kPassword, kCluster, KdfLimits{0, 8192});
  ASSERT_FALSE(no_passes);
  EXPECT_TRUE(contains(no_passes.error().describe(), "outside the accepted range"));
  EXPECT_FALSE(wrap(key, kPassword, kCluster, KdfLimits{1, 4096}));
}

TEST(WrapTest, MalformedRecordsNameTheProblem) {
  const Json good = Json::parse(wrap_for_test(key_from(1)));
  auto changed = [&](const char* field, Json value) {
    Json json = good;
    json[field] = std::move(value);
    return json.dump();
  };
  auto without = [&](const char* field) {
    Json json = good;
    json.erase(field);
    return json.dump();
  };
  struct Case {
    std::string record;
    std::string expected;
  };
  const std::string prefix = "wrapped data key record: ";
  for (const Case& c : {
           Case{"{not json", "not JSON"},
           Case{"[1, 2]", "not a JSON object"},
           Case{without("version"), "field \"version\" is missing"},
           Case{changed("version", 2), "unknown version 2 (this clusweb reads version 1)"},
           Case{changed("version", "1"), "field \"version\" is not an integer"},
           Case{changed("kdf", "scrypt"),
                "unknown kdf \"scrypt\" (this clusweb knows \"argon2id13\")"},
           Case{without("keyId"), "field \"keyId\" is missing"},
           Case{changed("keyId", "0123"),
                "field \"keyId\" is not a key id (\"k\" and 16 hex digits)"},
           Case{without("salt"), "field \"salt\" is missing"},
           Case{changed("salt", "***"), "field \"salt\" is not valid base64"},
           Case{changed("salt", "AAAA"), "field \"salt\" holds 3 bytes, expected 16"},
           Case{changed("nonce", 7), "field \"nonce\" is not a string"},
           Case{changed("wrapped", "AAAA"), "field \"wrapped\" holds 3 bytes, expected 48"},
           Case{changed("opslimit", -1), "field \"opslimit\" is not a non-negative integer"},
           Case{without("memlimit"), "field \"memlimit\" is missing"},
           Case{changed("opslimit", 0),
                "key derivation limits opslimit=0 memlimit=8192 are outside the accepted range"},
           Case{changed("memlimit", 1024),
                "key derivation limits opslimit=1 memlimit=1024 are outside the accepted range"},
           // A record cannot make the nodes that unwrap it spend gigabytes.
           Case{changed("memlimit", std::uint64_t{2} << 30),
                "key derivation limits opslimit=1 memlimit=2147483648 are outside the accepted "
                "range"},
       }) {
    SCOPED_TRACE(c.record);
    auto unwrapped = unwrap(c.record, kPassword, kCluster);
    ASSERT_FALSE(unwrapped);
    EXPECT_TRUE(unwrapped.error().describe().starts_with(prefix + c.expected))
        << unwrapped.error().describe();
    auto id = record_key_id(c.record);
    ASSERT_FALSE(id);
    EXPECT_EQ(id.error().describe(), unwrapped.error().describe());
  }
}

// ---------------------------------------------------------------------------------------------
// Files.

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/data-key-test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static mode_t mode_of(const std::filesystem::path& path) {
    struct stat status {};
    EXPECT_EQ(::stat(path.c_str(), &status), 0);
    return status.st_mode & 07777;
  }
  void write_text(const std::filesystem::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }

  std::filesystem::path dir_;
};

TEST_F(KeyFileTest, TheKeyFileIsPrivateAndReadsBack) {
  std::filesystem::path path = dir_ / "state" / "data-key";
  DataKey key = key_from(1);
  auto written = write_key_file(os_file_system(), path, key);
  ASSERT_TRUE(written) << written.error().describe();
  EXPECT_EQ(mode_of(dir_ / "state"), 0700u);
  EXPECT_EQ(mode_of(path), 0600u);

  auto read = read_key_file(os_file_system(), path);
  ASSERT_TRUE(read) << read.error().describe();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->id(), key.id());
  EXPECT_EQ(*(*read)->open(key.seal("secret", "ctx"), "ctx"), "secret");

  // Rewriting it replaces the key.
  ASSERT_TRUE(write_key_file(os_file_system(), path, key_from(2)));
  EXPECT_EQ((*read_key_file(os_file_system(), path))->id(), key_from(2).id());
}

TEST_F(KeyFileTest, AMissingKeyFileIsNoKey) {
  auto read = read_key_file(os_file_system(), dir_ / "data-key");
  ASSERT_TRUE(read) << read.error().describe();
  EXPECT_FALSE(read->has_value());
}

TEST_F(KeyFileTest, AKeyFileOthersMayReadIsRefused) {
  std::filesystem::path path = dir_ / "data-key";
  ASSERT_TRUE(write_key_file(os_file_system(), path, key_from(1)));
  for (mode_t mode : {0644, 0640, 0602, 0610}) {
    SCOPED_TRACE(mode);
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto read = read_key_file(os_file_system(), path);
    ASSERT_FALSE(read);
    EXPECT_TRUE(read.error().describe().starts_with(path.string() + ": "))
        << read.error().describe();
    EXPECT_TRUE(contains(read.error().describe(), "group or others"));
  }
}

TEST_F(KeyFileTest, DamagedOrWrongSizedKeyFilesAreRefused) {
  std::filesystem::path path = dir_ / "data-key";
  ASSERT_TRUE(write_key_file(os_file_system(), path, key_from(1)));
  std::string good;
  {
    std::ifstream in(path, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string damaged = good;
  damaged.back() = static_cast<char>(damaged.back() ^ 1);
  write_text(path, damaged);
  auto read = read_key_file(os_file_system(), path);
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().describe(), path.string()));
  EXPECT_TRUE(contains(read.error().describe(), "checksum mismatch"));

  ASSERT_TRUE(write_file_atomically(os_file_system(), path, std::string(31, 'x'), 0600));
  read = read_key_file(os_file_system(), path);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().describe(),
            path.string() + ": not a data key file: a data key is 32 bytes, this is 31 bytes");
}

TEST_F(KeyFileTest, ThePasswordIsTheFirstLine) {
  std::filesystem::path path = dir_ / "password";
  for (std::string_view text : {"hunter2 with spaces\n", "hunter2 with spaces\r\n",
                                "hunter2 with spaces", "hunter2 with spaces\nsecond line\n"}) {
    SCOPED_TRACE(text);
    write_text(path, text);
    auto password = read_password_file(path);
    ASSERT_TRUE(password) << password.error().describe();
    EXPECT_EQ(*password, "hunter2 with spaces");
  }
}

TEST_F(KeyFileTest, AnEmptyOrMissingPasswordFileIsRefused) {
  std::filesystem::path path = dir_ / "password";
  for (std::string_view text : {"", "\n", "\r\n"}) {
    write_text(path, text);
    auto password = read_password_file(path);
    ASSERT_FALSE(password);
    EXPECT_EQ(password.error().describe(), path.string() + ": the password file holds no password");
  }
  auto missing = read_password_file(dir_ / "absent");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.error().describe(), (dir_ / "absent").string()));
}

}  // namespace
}  // namespace clusweb::secrets
