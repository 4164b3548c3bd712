#pragma once
// Password hashing: Argon2id through libsodium's crypto_pwhash_str (the PHC string keeps
// the salt and the parameters, so verification needs nothing else).
//
// Thread-safety: every function is safe to call from any thread (libsodium is initialised
// once, on first use). Blocking: hashing with the interactive parameters takes ~0.1 s of
// CPU and 64 MiB of memory; call it off the request threads (http::offload).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace taskstream::auth {

/// Argon2id cost. The defaults are libsodium's INTERACTIVE limits (the production setting);
/// tests may pass minimal() to keep hashing cheap.
struct PasswordParams {
  std::uint64_t ops_limit = 2;             ///< crypto_pwhash_OPSLIMIT_INTERACTIVE
  std::size_t mem_limit = 64u << 20;       ///< crypto_pwhash_MEMLIMIT_INTERACTIVE (bytes)

  /// The smallest limits libsodium accepts: for tests only, never for stored passwords.
  static constexpr PasswordParams minimal() noexcept { return {1, 8u << 10}; }
};

/// Returns a "$argon2id$..." string with a fresh random salt. Throws std::runtime_error if
/// libsodium cannot hash (out of memory, limits out of range).
std::string hash_password(std::string_view password, const PasswordParams& params = {});

/// True when `password` matches `hash`; false for a wrong password or a malformed hash.
bool verify_password(std::string_view hash, std::string_view password);

}  // namespace taskstream::auth
