#include "auth/jwt.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>

#include <jwt.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

namespace taskstream::auth {

namespace {

constexpr std::size_t kMinSecretBytes = 32;
// Far above any token we issue; bounds the work an attacker can make us do.
constexpr std::size_t kMaxTokenBytes = 8192;

struct JwtDeleter {
  void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;

struct FreeDeleter {
  void operator()(char* p) const noexcept { std::free(p); }
};

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out(text.size(), '\0');  // decoded is never longer than encoded
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

/// Decodes one base64url JSON object part; nullopt when it is not one.
std::optional<nlohmann::json> decode_part(std::string_view part) {
  auto raw = base64url_decode(part);
  if (!raw) return std::nullopt;
  auto j = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

JwtCodec::JwtCodec(std::string secret, std::chrono::seconds ttl) : secret_(std::move(secret)), ttl_(ttl) {
  if (secret_.size() < kMinSecretBytes) {
    throw std::invalid_argument("JWT secret must be at least 32 bytes, got " + std::to_string(secret_.size()));
  }
  if (ttl_.count() <= 0) throw std::invalid_argument("JWT ttl must be positive");
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

std::string JwtCodec::issue(std::string_view subject) const {
  return issue(subject, std::chrono::system_clock::now());
}

std::string JwtCodec::issue(std::string_view subject, std::chrono::system_clock::time_point now) const {
  return issue(subject, {}, now);
}

std::string JwtCodec::issue(std::string_view subject, const std::vector<std::string>& roles,
                            std::chrono::system_clock::time_point now) const {
  if (subject.empty()) throw std::invalid_argument("JWT subject must not be empty");
  for (const auto& r : roles)
    if (r.empty()) throw std::invalid_argument("JWT role must not be empty");
  const long iat = static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  const std::string sub{subject};

  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new failed");
  JwtPtr token{raw};
  if (jwt_set_alg(token.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret_.data()),
                  static_cast<int>(secret_.size())) != 0 ||
      jwt_add_grant(token.get(), "sub", sub.c_str()) != 0 || jwt_add_grant_int(token.get(), "iat", iat) != 0 ||
      jwt_add_grant_int(token.get(), "exp", iat + static_cast<long>(ttl_.count())) != 0) {
    throw std::runtime_error("building the JWT failed");
  }
  if (!roles.empty() && jwt_add_grants_json(token.get(), nlohmann::json{{"roles", roles}}.dump().c_str()) != 0)
    throw std::runtime_error("building the JWT failed");
  std::unique_ptr<char, FreeDeleter> encoded{jwt_encode_str(token.get())};
  if (!encoded) throw std::runtime_error("jwt_encode_str failed");
  return std::string{encoded.get()};
}

std::string JwtCodec::verify(std::string_view token) const { return verify(token, std::chrono::system_clock::now()); }

std::string JwtCodec::verify(std::string_view token, std::chrono::system_clock::time_point now) const {
  return verify_claims(token, now).subject;
}

JwtCodec::Claims JwtCodec::verify_claims(std::string_view token, std::chrono::system_clock::time_point now) const {
  const long long now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  {
    std::lock_guard lock(verified_->mutex);
    if (const auto it = verified_->tokens.find(std::string(token)); it != verified_->tokens.end()) {
      const auto& v = it->second;
      if (std::chrono::duration_cast<std::chrono::seconds>(v.claims.expires.time_since_epoch()).count() <= now_s)
        throw AuthError("token expired");
      if (v.nbf && *v.nbf > now_s + kNotBeforeLeeway.count()) throw AuthError("token not yet valid");
      return v.claims;
    }
  }
  std::optional<long long> nbf;
  auto claims = verify_uncached(token, now, nbf);
  std::lock_guard lock(verified_->mutex);
  if (verified_->tokens.size() >= kVerifiedCacheSize) verified_->tokens.clear();
  verified_->tokens.emplace(std::string(token), Verified{claims, nbf});
  return claims;
}

JwtCodec::Claims JwtCodec::verify_uncached(std::string_view token, std::chrono::system_clock::time_point now,
                                           std::optional<long long>& nbf) const {
  // Structure and alg are checked here, before libjwt, so that the reasons stay precise and
  // a foreign alg is refused whatever libjwt would do with it (1.10 accepts "none").
  if (token.empty() || token.size() > kMaxTokenBytes) throw AuthError("malformed token");
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    throw AuthError("malformed token");
  }
  const auto header = decode_part(token.substr(0, dot1));
  const auto payload = decode_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!header || !payload) throw AuthError("malformed token");
  const auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || alg->get<std::string>() != "HS256") {
    throw AuthError("unsupported alg");
  }
  if (dot2 + 1 == token.size()) throw AuthError("bad signature");

  const std::string terminated{token};
  jwt_t* raw = nullptr;
  const int rc = jwt_decode(&raw, terminated.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                            static_cast<int>(secret_.size()));
  JwtPtr decoded{raw};
  if (rc != 0 || !decoded) throw AuthError("bad signature");
  if (jwt_get_alg(decoded.get()) != JWT_ALG_HS256) throw AuthError("unsupported alg");

  // Read exp through libjwt (the parser whose view of the payload was verified).
  // jwt_get_grant_int cannot tell a string from 0, so take its JSON and check the type.
  std::unique_ptr<char, FreeDeleter> exp_json{jwt_get_grants_json(decoded.get(), "exp")};
  const auto exp_value = exp_json ? nlohmann::json::parse(exp_json.get(), nullptr, false) : nlohmann::json{};
  if (!exp_value.is_number_integer()) throw AuthError("missing exp");
  const auto exp = exp_value.get<long long>();
  const long long now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (exp <= now_s) throw AuthError("token expired");

  // nbf is optional (we never issue it), but a token that carries one is not used early.
  std::unique_ptr<char, FreeDeleter> nbf_json{jwt_get_grants_json(decoded.get(), "nbf")};
  if (nbf_json) {
    const auto nbf_value = nlohmann::json::parse(nbf_json.get(), nullptr, false);
    if (!nbf_value.is_number_integer()) throw AuthError("bad nbf");
    nbf = nbf_value.get<long long>();
    if (*nbf > now_s + kNotBeforeLeeway.count()) throw AuthError("token not yet valid");
  }

  const char* sub = jwt_get_grant(decoded.get(), "sub");
  if (sub == nullptr || *sub == '\0') throw AuthError("missing sub");

  // roles: optional; when present, an array of strings (from the verified payload).
  std::vector<std::string> roles;
  std::unique_ptr<char, FreeDeleter> roles_json{jwt_get_grants_json(decoded.get(), "roles")};
  if (roles_json) {
    const auto value = nlohmann::json::parse(roles_json.get(), nullptr, false);
    if (!value.is_array()) throw AuthError("bad roles");
    for (const auto& r : value) {
      if (!r.is_string()) throw AuthError("bad roles");
      roles.push_back(r.get<std::string>());
    }
  }
  return Claims{std::string{sub}, std::chrono::system_clock::time_point(std::chrono::seconds(exp)), std::move(roles)};
}

std::string bearer_token(std::string_view value) {
  auto is_blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!value.empty() && is_blank(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_blank(value.back())) value.remove_suffix(1);
  constexpr std::string_view scheme = "bearer";
  if (value.size() <= scheme.size() || !iequals(value.substr(0, scheme.size()), scheme) ||
      !is_blank(value[scheme.size()])) {
    throw AuthError("missing bearer token");
  }
  value.remove_prefix(scheme.size());
  while (!value.empty() && is_blank(value.front())) value.remove_prefix(1);
  if (value.empty() || std::any_of(value.begin(), value.end(), is_blank)) throw AuthError("missing bearer token");
  return std::string{value};
}

std::string random_jwt_secret() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return hex;
}

}  // namespace taskstream::auth
