#pragma once
// Access tokens: HS256 JWTs carrying `sub` (the user id), `iat`, `exp` and, for operators,
// `roles` (["operator"]), through libjwt. A role counts only because the signature covers it:
// a token whose roles were edited fails the signature check like any other edit.
// Only HS256 is accepted: a token whose header names another alg ("none", HS512, RS256, ...)
// is refused before its signature is even looked at, so no key confusion is possible.
// A token carrying `nbf` (not before; we never issue one, another issuer sharing the secret
// may) is refused until nbf - kNotBeforeLeeway: 30 s of tolerance for clocks that disagree.
//
// Lifecycle: built once at start from the JWT secret, then read-only. Thread-safety: const
// methods are safe from any thread. Blocking: no (a few microseconds of HMAC).
// Verified tokens are remembered (up to kVerifiedCacheSize, then forgotten all at once):
// a client sends the same token with every request, and decoding and checking it again
// (two base64 decodes, three JSON parses, an HMAC) was 5 % of serve's CPU under load. A
// remembered token is still checked against exp and nbf at each use.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskstream::auth {

/// A token or Authorization header was refused; what() is a short reason safe to show the
/// client ("token expired"), never the token itself.
class AuthError final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// How far in the future a token's `nbf` may lie and still be accepted (clock skew between
/// the issuer and us). `exp` gets no leeway: we issue it ourselves.
inline constexpr std::chrono::seconds kNotBeforeLeeway{30};

/// The role operators' tokens carry (ADMIN_EMAILS accounts): every /admin route and the
/// console's live feed require it (docs/operations.md, "Operators").
inline constexpr const char* kOperatorRole = "operator";

/// A fresh random secret for `serve --dev` (32 bytes from libsodium, as 64 hex digits).
/// Throws std::runtime_error when libsodium cannot initialise.
std::string random_jwt_secret();

class JwtCodec final {
 public:
  /// Throws std::invalid_argument when `secret` is shorter than 32 bytes (HS256 wants a key
  /// at least as long as its output) or `ttl` is not positive.
  explicit JwtCodec(std::string secret, std::chrono::seconds ttl = std::chrono::seconds{3600});

  /// A token for `subject` valid for ttl() from now. Throws std::invalid_argument for an
  /// empty subject, std::runtime_error if libjwt fails (out of memory).
  std::string issue(std::string_view subject) const;
  /// Same, with an explicit clock (tests, replay tools).
  std::string issue(std::string_view subject, std::chrono::system_clock::time_point now) const;
  /// A token carrying `roles` (none: no claim at all). Throws std::invalid_argument for an
  /// empty role name.
  std::string issue(std::string_view subject, const std::vector<std::string>& roles,
                    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  /// Returns the token's `sub`, or throws AuthError with one of: "malformed token",
  /// "unsupported alg", "bad signature", "missing exp", "token expired", "bad nbf" (present
  /// but not an integer), "token not yet valid" (nbf beyond now + kNotBeforeLeeway),
  /// "missing sub", "bad roles" (present but not an array of strings).
  std::string verify(std::string_view token) const;
  /// Same, judging expiry at `now`.
  std::string verify(std::string_view token, std::chrono::system_clock::time_point now) const;

  struct Claims {
    std::string subject;
    std::chrono::system_clock::time_point expires;
    std::vector<std::string> roles;  ///< from the signed `roles` claim; empty when absent
    bool has_role(std::string_view role) const noexcept {
      for (const auto& r : roles)
        if (r == role) return true;
      return false;
    }
  };
  /// verify(), also returning when the token expires (a WebSocket closes then).
  Claims verify_claims(std::string_view token,
                       std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;
  std::chrono::seconds ttl() const noexcept { return ttl_; }

  static constexpr std::size_t kVerifiedCacheSize = 4096;

 private:
  struct Verified {
    Claims claims;
    std::optional<long long> nbf;
  };
  struct VerifiedCache {
    std::mutex mutex;
    std::unordered_map<std::string, Verified> tokens;
  };
  Claims verify_uncached(std::string_view token, std::chrono::system_clock::time_point now, std::optional<long long>& nbf) const;

  std::string secret_;
  std::chrono::seconds ttl_;
  std::shared_ptr<VerifiedCache> verified_ = std::make_shared<VerifiedCache>();
};

/// The token of an "Authorization: Bearer <token>" value (scheme case-insensitive, blanks
/// around it ignored). Throws AuthError("missing bearer token") otherwise.
std::string bearer_token(std::string_view authorization_header);

}  // namespace taskstream::auth
