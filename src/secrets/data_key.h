#pragma once

// The cluster data key and what is done with it (libsodium underneath; no libsodium type
// appears here). Secrets in the shared configuration (TLS private keys, pool environment
// secrets) are stored only *sealed* with the data key; the data key is stored in the cluster's
// store only *wrapped* with a key derived from an administrator password; each node unwraps it
// once when it joins and keeps it in a root-only key file. No function here puts a secret (a
// key, a password, a plaintext) into an error message.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/atomic_file.h"
#include "base/result.h"

namespace clusweb::secrets {

// How hard the password-based key derivation (Argon2id) works: passes and memory in bytes.
struct KdfLimits {
  std::uint64_t opslimit;
  std::size_t memlimit;
};
// libsodium's crypto_pwhash_*_INTERACTIVE (2 passes, 64 MiB).
inline constexpr KdfLimits kInteractive{2, std::size_t{64} << 20};
// libsodium's crypto_pwhash_*_MODERATE (3 passes, 256 MiB): the default for `clusweb` itself.
inline constexpr KdfLimits kModerate{3, std::size_t{256} << 20};
// libsodium's minimums (1 pass, 8 KiB): for tests only, it gives a password no protection.
inline constexpr KdfLimits kTestingMinimum{1, 8192};

class DataKey;

// The wrapped-key record for `key`, JSON text:
//   {"version":1,"keyId":"k…","kdf":"argon2id13","opslimit":N,"memlimit":N,
//    "salt":"<base64, 16 random bytes>","nonce":"<base64, 24 random bytes>",
//    "wrapped":"<base64 of the key's 32 bytes encrypted>"}
// The wrapping key is Argon2id(password, salt, limits); the encryption (XChaCha20-Poly1305)
// binds the record to `cluster` and the key id, so a record copied to another cluster or given
// another keyId does not unwrap. Refuses a password shorter than 8 bytes and limits outside
// libsodium's range; an Error also when the derivation fails (not enough memory).
Result<std::string> wrap(const DataKey& key, std::string_view password, std::string_view cluster,
                         KdfLimits limits);

// Writes `key` (its 32 raw bytes) to the node's key file with write_file_atomically, mode
// 0600; creates the parent folder with mode 0700 when it is missing.
Status write_key_file(FileSystem& fs, const std::filesystem::path& path, const DataKey& key);

// The 256-bit cluster data key, held in memory from sodium_malloc (guard pages, mlocked where
// the system allows, read-only once made, zeroed when freed) and never copied elsewhere by this
// class. Move-only; a moved-from DataKey may only be destroyed or assigned to. The const
// members are safe to call from several threads at once.
class DataKey {
 public:
  static constexpr std::size_t kSize = 32;

  // A new key of random bytes.
  static DataKey generate();
  // A key from its raw bytes (a key file's contents); an Error unless `raw` is kSize bytes.
  static Result<DataKey> from_bytes(std::string_view raw);

  DataKey(DataKey&& other) noexcept = default;
  DataKey& operator=(DataKey&& other) noexcept = default;
  DataKey(const DataKey&) = delete;
  DataKey& operator=(const DataKey&) = delete;
  ~DataKey() = default;

  // The key's public name, "k" + 16 lowercase hex digits: derived from the key one way, so it
  // tells which key sealed a value and reveals nothing of the key.
  const std::string& id() const { return id_; }

  // `plaintext` sealed for the field `context` (e.g. "site/shop/bindings[0].key"):
  //   sealed:v1:<key id>:<base64 of nonce (24 bytes) || XChaCha20-Poly1305 ciphertext>
  // with `context` as the additional data, so a value moved to another field does not open.
  // Deterministic: the nonce is a keyed BLAKE2b hash of the context and the plaintext, so the
  // same plaintext sealed for the same context gives the same text (a diff can tell a secret
  // is unchanged). That reveals only whether two sealed values of one field are equal.
  std::string seal(std::string_view plaintext, std::string_view context) const;

  // The plaintext of seal(plaintext, context). An Error, naming no secret, when `sealed` is not
  // a sealed value of a known version, was sealed with another key (both key ids named), or
  // does not open (altered, or sealed for another field).
  Result<std::string> open(std::string_view sealed, std::string_view context) const;

 private:
  struct Material;  // the key and its subkeys, in sodium_malloc memory
  struct FreeMaterial {
    void operator()(Material* material) const noexcept;  // sodium_free: zeroes, then frees
  };
  explicit DataKey(const unsigned char* raw);
  std::string_view bytes() const;

  friend Result<std::string> wrap(const DataKey& key, std::string_view password,
                                  std::string_view cluster, KdfLimits limits);
  friend Status write_key_file(FileSystem& fs, const std::filesystem::path& path,
                               const DataKey& key);

  std::unique_ptr<Material, FreeMaterial> material_;
  std::string id_;
};

// Whether `text` is a sealed value ("sealed:" prefix, of any version: a value of a newer
// version is still not a plaintext, open() reports the version it does not know).
bool is_sealed(std::string_view text);

// The data key in a wrapped-key record. Errors: the record is malformed (naming the field), of
// an unknown version or kdf, or has limits outside the accepted range (libsodium's minimums; at
// most 10 passes, 1 GiB); for a wrong password (or a record of another cluster) a message starting
// with "wrong password".
Result<DataKey> unwrap(std::string_view record, std::string_view password,
                       std::string_view cluster);

// The key id a sealed value names ("sealed:v1:<key id>:..."), so a value can be checked against
// the cluster's key without the key. Errors: not a sealed value, of a version this clusweb does
// not read, or without a well-formed key id.
Result<std::string> sealed_key_id(std::string_view sealed);

// The keyId of a wrapped-key record, after the same checks of its form as unwrap().
Result<std::string> record_key_id(std::string_view record);

// The node's key file: std::nullopt when it does not exist. Refuses, with an Error naming the
// file, a file that group or others may access (mode & 077), a damaged file, or one that does
// not hold exactly a key.
Result<std::optional<DataKey>> read_key_file(FileSystem& fs, const std::filesystem::path& path);

// The first line of the password file, without its "\n" or "\r\n". An Error naming the file
// when it cannot be read or the password is empty.
Result<std::string> read_password_file(const std::filesystem::path& path);

}  // namespace clusweb::secrets
