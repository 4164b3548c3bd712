#include "auth/password.hpp"

#include <algorithm>
#include <semaphore>
#include <stdexcept>
#include <thread>

#include <sodium.h>

namespace taskstream::auth {

static_assert(PasswordParams{}.ops_limit == crypto_pwhash_OPSLIMIT_INTERACTIVE);
static_assert(PasswordParams{}.mem_limit == crypto_pwhash_MEMLIMIT_INTERACTIVE);
static_assert(PasswordParams::minimal().ops_limit == crypto_pwhash_argon2id_OPSLIMIT_MIN);
static_assert(PasswordParams::minimal().mem_limit == crypto_pwhash_argon2id_MEMLIMIT_MIN);

namespace {

void ensure_sodium() {
  // A function-local static is initialised once even with concurrent callers (and
  // sodium_init itself is idempotent), so no extra locking is needed.
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium failed to initialise");
}

/// Argon2id is built to cost CPU and memory (64 MiB per hash with the interactive
/// limits). Callers run on the server's blocking pool, which is sized for many concurrent
/// database calls that mostly wait; without this bound a burst of sign-ups or logins
/// would run as many hashes at once as that pool has threads. One per core is all the
/// CPU can do anyway; the others queue here.
struct HashSlot {
  HashSlot() { slots().acquire(); }
  ~HashSlot() { slots().release(); }
  HashSlot(const HashSlot&) = delete;
  HashSlot& operator=(const HashSlot&) = delete;
  static std::counting_semaphore<1024>& slots() {
    static std::counting_semaphore<1024> s(std::max<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(std::thread::hardware_concurrency())));
    return s;
  }
};

}  // namespace

std::string hash_password(std::string_view password, const PasswordParams& params) {
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  const HashSlot slot;
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), params.ops_limit, params.mem_limit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("password hashing failed (out of memory or limits out of range)");
  }
  return std::string{out};
}

bool verify_password(std::string_view hash, std::string_view password) {
  ensure_sodium();
  // crypto_pwhash_str_verify reads a NUL-terminated string of at most STRBYTES - 1 chars.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  const std::string terminated{hash};
  const HashSlot slot;
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

}  // namespace taskstream::auth
