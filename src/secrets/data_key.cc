#include "secrets/data_key.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <nlohmann/json.hpp>
#include <utility>

namespace clusweb::secrets {

static_assert(kInteractive.opslimit == crypto_pwhash_OPSLIMIT_INTERACTIVE);
static_assert(kInteractive.memlimit == crypto_pwhash_MEMLIMIT_INTERACTIVE);
static_assert(kModerate.opslimit == crypto_pwhash_OPSLIMIT_MODERATE);
static_assert(kModerate.memlimit == crypto_pwhash_MEMLIMIT_MODERATE);
static_assert(kTestingMinimum.opslimit == crypto_pwhash_OPSLIMIT_MIN);
static_assert(kTestingMinimum.memlimit == crypto_pwhash_MEMLIMIT_MIN);
static_assert(DataKey::kSize == crypto_kdf_KEYBYTES);
static_assert(DataKey::kSize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;  // the record's fields in a readable order

constexpr std::string_view kSealedPrefix = "sealed:";
constexpr std::string_view kSealedV1Prefix = "sealed:v1:";
constexpr std::size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagSize = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kIdBytes = 8;  // 16 hex digits
constexpr std::size_t kMinPasswordSize = 8;
constexpr int kRecordVersion = 1;
constexpr std::string_view kRecordKdf = "argon2id13";
constexpr std::string_view kRecordName = "wrapped data key record";

// Subkeys of the data key: one key never serves two purposes.
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "cwsecret";
constexpr std::uint64_t kSealSubkey = 1;
constexpr std::uint64_t kNonceSubkey = 2;
constexpr std::uint64_t kIdSubkey = 3;
static_assert(crypto_generichash_KEYBYTES_MAX >= DataKey::kSize);
static_assert(kNonceSize >= crypto_generichash_BYTES_MIN &&
              kNonceSize <= crypto_generichash_BYTES_MAX);

// Every entry point calls this first (a DataKey's members need not: making one called it).
// libsodium must be initialised once before use (it picks implementations and checks its
// random source); without it nothing here can be trusted, so a failure aborts.
void ensure_sodium() {
  static const bool initialised = [] {
    if (sodium_init() < 0) {
      std::fputs("clusweb: libsodium failed to initialise\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialised;
}

const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

// A temporary secret (a derived wrapping key, an unwrapped key) in sodium_malloc memory.
class SecretBuffer {
 public:
  explicit SecretBuffer(std::size_t size)
      : data_(static_cast<unsigned char*>(sodium_malloc(size))), size_(size) {
    if (data_ == nullptr) throw std::bad_alloc();
  }
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  ~SecretBuffer() { sodium_free(data_); }

  unsigned char* data() { return data_; }
  std::size_t size() const { return size_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  unsigned char* data_;
  std::size_t size_;
};

// Zeroes a string that held a secret before its memory goes back to the allocator.
void erase(std::string& secret) {
  sodium_memzero(secret.data(), secret.size());
  secret.clear();
}

std::string to_base64(const unsigned char* data, std::size_t size) {
  std::string text(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(text.data(), text.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  text.pop_back();  // the terminating NUL
  return text;
}

// The bytes of canonical standard base64 (with padding, nothing after it); nullopt otherwise.
std::optional<std::string> from_base64(std::string_view text) {
  std::string data(text.size() / 4 * 3 + 3, '\0');
  std::size_t size = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(data.data()), data.size(), text.data(),
                        text.size(), nullptr, &size, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  data.resize(size);
  return data;
}

std::string key_id(const unsigned char* key) {
  std::array<unsigned char, crypto_kdf_BYTES_MIN> digest{};
  crypto_kdf_derive_from_key(digest.data(), digest.size(), kIdSubkey, kKdfContext, key);
  std::array<char, kIdBytes * 2 + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), kIdBytes);
  return "k" + std::string(hex.data(), kIdBytes * 2);
}

// The fields of a wrapped-key record, checked and decoded.
struct Record {
  std::string key_id;
  KdfLimits limits{};
  std::string salt;
  std::string nonce;
  std::string wrapped;
};

std::string wrap_additional_data(std::string_view cluster, std::string_view key_id) {
  return fmt::format("clusweb data key {} {}", cluster, key_id);
}

Error record_error(std::string_view what) { return make_error("{}: {}", kRecordName, what); }

// A record names the work its password costs; whoever can write the store must not be able to
// make every node that unwraps it spend minutes or gigabytes: at most 10 passes over 1 GiB.
constexpr std::uint64_t kMaxOpslimit = 10;
constexpr std::uint64_t kMaxMemlimit = std::uint64_t{1} << 30;

Error limits_error(std::uint64_t opslimit, std::uint64_t memlimit) {
  return make_error(
      "key derivation limits opslimit={} memlimit={} are outside the accepted range "
      "(opslimit {}..{}, memlimit {}..{})",
      opslimit, memlimit, crypto_pwhash_OPSLIMIT_MIN, kMaxOpslimit, crypto_pwhash_MEMLIMIT_MIN,
      kMaxMemlimit);
}

bool limits_in_range(std::uint64_t opslimit, std::uint64_t memlimit) {
  return opslimit >= crypto_pwhash_OPSLIMIT_MIN && opslimit <= kMaxOpslimit &&
         memlimit >= crypto_pwhash_MEMLIMIT_MIN && memlimit <= kMaxMemlimit;
}

bool is_key_id(std::string_view text) {
  if (text.size() != 1 + kIdBytes * 2 || text[0] != 'k') return false;
  for (char c : text.substr(1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<Record> parse_record(std::string_view text) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return record_error("not JSON");
  if (!json.is_object()) return record_error("not a JSON object");

  auto field = [&](const char* name) -> const Json* {
    auto it = json.find(name);
    return it == json.end() ? nullptr : &*it;
  };
  auto missing = [](std::string_view name) {
    return record_error(fmt::format("field \"{}\" is missing", name));
  };
  auto unsigned_field = [&](const char* name) -> Result<std::uint64_t> {
    const Json* value = field(name);
    if (value == nullptr) return missing(name);
    if (!value->is_number_unsigned()) {
      return record_error(fmt::format("field \"{}\" is not a non-negative integer", name));
    }
    return value->get<std::uint64_t>();
  };
  auto string_field = [&](const char* name) -> Result<std::string> {
    const Json* value = field(name);
    if (value == nullptr) return missing(name);
    if (!value->is_string()) return record_error(fmt::format("field \"{}\" is not a string", name));
    return value->get<std::string>();
  };
  auto base64_field = [&](const char* name, std::size_t size) -> Result<std::string> {
    auto text_value = string_field(name);
    if (!text_value) return text_value.error();
    auto data = from_base64(*text_value);
    if (!data) return record_error(fmt::format("field \"{}\" is not valid base64", name));
    if (data->size() != size) {
      return record_error(
          fmt::format("field \"{}\" holds {} bytes, expected {}", name, data->size(), size));
    }
    return std::move(*data);
  };

  const Json* version = field("version");
  if (version == nullptr) return missing("version");
  if (!version->is_number_integer()) return record_error("field \"version\" is not an integer");
  if (*version != kRecordVersion) {
    return record_error(fmt::format("unknown version {} (this clusweb reads version {})",
                                    version->dump(), kRecordVersion));
  }
  auto kdf = string_field("kdf");
  if (!kdf) return kdf.error();
  if (*kdf != kRecordKdf) {
    return record_error(
        fmt::format("unknown kdf \"{}\" (this clusweb knows \"{}\")", *kdf, kRecordKdf));
  }
  Record record;
  auto key_id_value = string_field("keyId");
  if (!key_id_value) return key_id_value.error();
  if (!is_key_id(*key_id_value)) {
    return record_error("field \"keyId\" is not a key id (\"k\" and 16 hex digits)");
  }
  record.key_id = std::move(*key_id_value);
  auto opslimit = unsigned_field("opslimit");
  if (!opslimit) return opslimit.error();
  auto memlimit = unsigned_field("memlimit");
  if (!memlimit) return memlimit.error();
  if (!limits_in_range(*opslimit, *memlimit)) {
    return record_error(limits_error(*opslimit, *memlimit).message);
  }
  record.limits = KdfLimits{*opslimit, static_cast<std::size_t>(*memlimit)};
  auto salt = base64_field("salt", crypto_pwhash_SALTBYTES);
  if (!salt) return salt.error();
  record.salt = std::move(*salt);
  auto nonce = base64_field("nonce", kNonceSize);
  if (!nonce) return nonce.error();
  record.nonce = std::move(*nonce);
  auto wrapped = base64_field("wrapped", DataKey::kSize + kTagSize);
  if (!wrapped) return wrapped.error();
  record.wrapped = std::move(*wrapped);
  return record;
}

// Argon2id(password, salt, limits) into `out`; false when libsodium could not (out of memory).
bool derive_wrapping_key(SecretBuffer& out, std::string_view password, std::string_view salt,
                         KdfLimits limits) {
  return crypto_pwhash(out.data(), out.size(), password.data(), password.size(), bytes_of(salt),
                       limits.opslimit, limits.memlimit, crypto_pwhash_ALG_ARGON2ID13) == 0;
}

Error derivation_error(KdfLimits limits) {
  return make_error(
      "deriving the wrapping key from the password failed (opslimit={} memlimit={}: not enough "
      "memory?)",
      limits.opslimit, limits.memlimit);
}

}  // namespace

struct DataKey::Material {
  std::array<unsigned char, kSize> key;
  std::array<unsigned char, crypto_aead_xchacha20poly1305_ietf_KEYBYTES> seal_key;
  std::array<unsigned char, kSize> nonce_key;
};

void DataKey::FreeMaterial::operator()(Material* material) const noexcept { sodium_free(material); }

DataKey::DataKey(const unsigned char* raw) {
  void* memory = sodium_malloc(sizeof(Material));
  if (memory == nullptr) throw std::bad_alloc();
  material_.reset(new (memory) Material);
  std::copy(raw, raw + kSize, material_->key.begin());
  crypto_kdf_derive_from_key(material_->seal_key.data(), material_->seal_key.size(), kSealSubkey,
                             kKdfContext, material_->key.data());
  crypto_kdf_derive_from_key(material_->nonce_key.data(), material_->nonce_key.size(), kNonceSubkey,
                             kKdfContext, material_->key.data());
  id_ = key_id(material_->key.data());
  // Read-only from here on: a stray write through a bad pointer faults instead of changing it.
  sodium_mprotect_readonly(material_.get());
}

DataKey DataKey::generate() {
  ensure_sodium();
  SecretBuffer raw(kSize);
  randombytes_buf(raw.data(), raw.size());
  return DataKey(raw.data());
}

Result<DataKey> DataKey::from_bytes(std::string_view raw) {
  ensure_sodium();
  if (raw.size() != kSize) {
    return make_error("a data key is {} bytes, this is {} bytes", kSize, raw.size());
  }
  return DataKey(bytes_of(raw));
}

std::string_view DataKey::bytes() const {
  return {reinterpret_cast<const char*>(material_->key.data()), material_->key.size()};
}

std::string DataKey::seal(std::string_view plaintext, std::string_view context) const {
  // The nonce is a PRF of (context, plaintext): the length prefix keeps the split between the
  // two unambiguous, so no two different pairs can share a nonce unless the hash collides.
  std::array<unsigned char, 8> context_size{};
  std::uint64_t size = context.size();
  for (auto& byte : context_size) {
    byte = static_cast<unsigned char>(size & 0xff);
    size >>= 8;
  }
  std::string payload(kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(payload.data());
  crypto_generichash_state state;
  crypto_generichash_init(&state, material_->nonce_key.data(), material_->nonce_key.size(),
                          kNonceSize);
  crypto_generichash_update(&state, context_size.data(), context_size.size());
  crypto_generichash_update(&state, bytes_of(context), context.size());
  crypto_generichash_update(&state, bytes_of(plaintext), plaintext.size());
  crypto_generichash_final(&state, nonce, kNonceSize);
  sodium_memzero(&state, sizeof state);

  unsigned long long ciphertext_size = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonceSize, &ciphertext_size, bytes_of(plaintext), plaintext.size(),
      bytes_of(context), context.size(), nullptr, nonce, material_->seal_key.data());
  return fmt::format("{}{}:{}", kSealedV1Prefix, id_,
                     to_base64(bytes_of(payload), kNonceSize + ciphertext_size));
}

Result<std::string> sealed_key_id(std::string_view sealed) {
  if (!is_sealed(sealed)) return make_error("not a sealed value (no \"sealed:\" prefix)");
  if (!sealed.starts_with(kSealedV1Prefix)) {
    std::string_view rest = sealed.substr(kSealedPrefix.size());
    std::string_view version = rest.substr(0, rest.find(':'));
    if (version.size() > 16) version = version.substr(0, 16);
    return make_error("sealed value of unknown version \"{}\" (this clusweb reads v1)", version);
  }
  std::string_view rest = sealed.substr(kSealedV1Prefix.size());
  auto colon = rest.find(':');
  if (colon == std::string_view::npos) return make_error("not a sealed value (no key id)");
  std::string_view sealed_id = rest.substr(0, colon);
  if (!is_key_id(sealed_id)) return make_error("not a sealed value (bad key id)");
  return std::string(sealed_id);
}

Result<std::string> DataKey::open(std::string_view sealed, std::string_view context) const {
  Result<std::string> sealed_id = sealed_key_id(sealed);
  if (!sealed_id.ok()) return sealed_id.error();
  if (*sealed_id != id_) {
    return make_error("sealed with key {}, this node holds key {}", *sealed_id, id_);
  }
  std::string_view rest = sealed.substr(kSealedV1Prefix.size() + sealed_id->size() + 1);
  auto payload = from_base64(rest);
  if (!payload) return make_error("not a sealed value (bad base64)");
  if (payload->size() < kNonceSize + kTagSize) return make_error("not a sealed value (too short)");

  const unsigned char* nonce = bytes_of(*payload);
  std::string plaintext(payload->size() - kNonceSize - kTagSize, '\0');
  unsigned long long plaintext_size = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext.data()), &plaintext_size, nullptr,
          nonce + kNonceSize, payload->size() - kNonceSize, bytes_of(context), context.size(),
          nonce, material_->seal_key.data()) != 0) {
    return make_error("does not open (altered, or sealed for another field)");
  }
  plaintext.resize(plaintext_size);
  return plaintext;
}

bool is_sealed(std::string_view text) { return text.starts_with(kSealedPrefix); }

Result<std::string> wrap(const DataKey& key, std::string_view password, std::string_view cluster,
                         KdfLimits limits) {
  ensure_sodium();
  if (password.size() < kMinPasswordSize) {
    return make_error("the password is too short: at least {} characters", kMinPasswordSize);
  }
  if (!limits_in_range(limits.opslimit, limits.memlimit)) {
    return limits_error(limits.opslimit, limits.memlimit);
  }

  std::array<unsigned char, crypto_pwhash_SALTBYTES> salt{};
  std::array<unsigned char, kNonceSize> nonce{};
  randombytes_buf(salt.data(), salt.size());
  randombytes_buf(nonce.data(), nonce.size());
  SecretBuffer wrapping_key(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
  if (!derive_wrapping_key(wrapping_key, password,
                           {reinterpret_cast<const char*>(salt.data()), salt.size()}, limits)) {
    return derivation_error(limits);
  }
  std::string additional_data = wrap_additional_data(cluster, key.id());
  std::array<unsigned char, DataKey::kSize + kTagSize> wrapped{};
  std::string_view raw = key.bytes();
  crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped.data(), nullptr, bytes_of(raw), raw.size(),
                                             bytes_of(additional_data), additional_data.size(),
                                             nullptr, nonce.data(), wrapping_key.data());
  OrderedJson record{
      {"version", kRecordVersion},
      {"keyId", key.id()},
      {"kdf", kRecordKdf},
      {"opslimit", limits.opslimit},
      {"memlimit", limits.memlimit},
      {"salt", to_base64(salt.data(), salt.size())},
      {"nonce", to_base64(nonce.data(), nonce.size())},
      {"wrapped", to_base64(wrapped.data(), wrapped.size())},
  };
  return record.dump();
}

Result<DataKey> unwrap(std::string_view record_text, std::string_view password,
                       std::string_view cluster) {
  ensure_sodium();
  auto record = parse_record(record_text);
  if (!record) return record.error();
  SecretBuffer wrapping_key(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
  if (!derive_wrapping_key(wrapping_key, password, record->salt, record->limits)) {
    return derivation_error(record->limits);
  }
  std::string additional_data = wrap_additional_data(cluster, record->key_id);
  SecretBuffer raw(DataKey::kSize);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          raw.data(), nullptr, nullptr, bytes_of(record->wrapped), record->wrapped.size(),
          bytes_of(additional_data), additional_data.size(), bytes_of(record->nonce),
          wrapping_key.data()) != 0) {
    return make_error(
        "wrong password: the data key does not open with it (or the record belongs to another "
        "cluster)");
  }
  auto key = DataKey::from_bytes(raw.view());
  if (!key) return key.error();
  if (key->id() != record->key_id) {
    return record_error(fmt::format("the key opens but its id is {} where the record says {}",
                                    key->id(), record->key_id));
  }
  return key;
}

Result<std::string> record_key_id(std::string_view record_text) {
  ensure_sodium();
  auto record = parse_record(record_text);
  if (!record) return record.error();
  return std::move(record->key_id);
}

Status write_key_file(FileSystem& fs, const std::filesystem::path& path, const DataKey& key) {
  ensure_sodium();
  std::filesystem::path folder = path.parent_path();
  if (!folder.empty()) {
    std::error_code error;
    if (!std::filesystem::exists(folder, error)) {
      if (folder.has_parent_path())
        std::filesystem::create_directories(folder.parent_path(), error);
      if (::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST) {
        return errno_error("mkdir", folder.string());
      }
    }
  }
  return write_file_atomically(fs, path, key.bytes(), 0600);
}

Result<std::optional<DataKey>> read_key_file(FileSystem& fs, const std::filesystem::path& path) {
  ensure_sodium();
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    if (errno == ENOENT) return std::optional<DataKey>();
    return errno_error("stat", path.string());
  }
  if (!S_ISREG(status.st_mode)) {
    return Error{"the data key file is not a regular file", path.string(), 0};
  }
  if ((status.st_mode & 077) != 0) {
    return Error{fmt::format("the data key file may be accessed by group or others (mode {:04o}); "
                             "it must be 0600 (chmod 600 it, or rejoin the cluster)",
                             status.st_mode & 07777),
                 path.string(), 0};
  }
  auto contents = read_file_checked(fs, path);
  if (!contents) return contents.error();
  if (!contents->has_value()) return std::optional<DataKey>();
  std::string& raw = **contents;
  auto key = DataKey::from_bytes(raw);
  erase(raw);
  if (!key) {
    return Error{fmt::format("not a data key file: {}", key.error().message), path.string(), 0};
  }
  return std::optional<DataKey>(std::move(*key));
}

Result<std::string> read_password_file(const std::filesystem::path& path) {
  ensure_sodium();
  auto contents = os_file_system().read(path);
  if (!contents) return contents.error();
  std::string& text = *contents;
  std::string_view line = text;
  line = line.substr(0, line.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  std::string password(line);
  erase(text);
  if (password.empty()) return Error{"the password file holds no password", path.string(), 0};
  return password;
}

}  // namespace clusweb::secrets
