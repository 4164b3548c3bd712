#pragma once
// JWTs built by hand with libsodium's HMACs, independently of libjwt and of the code under
// test: for tests of hostile tokens (alg none, another algorithm, bad signatures, claims).

#include <sodium.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace taskstream::testjwt {

inline std::string b64url(std::string_view bin) {
  std::string out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()), bin.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

inline std::string hmac256(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state st;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_auth_hmacsha256_final(&st, mac);
  return std::string(reinterpret_cast<char*>(mac), sizeof mac);
}

inline std::string hmac512(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha512_state st;
  unsigned char mac[crypto_auth_hmacsha512_BYTES];
  crypto_auth_hmacsha512_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha512_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_auth_hmacsha512_final(&st, mac);
  return std::string(reinterpret_cast<char*>(mac), sizeof mac);
}

enum class Sig { hs256, hs512, none };

/// header.payload.signature with `key`; Sig::none leaves the signature empty.
inline std::string craft(const nlohmann::json& header, const nlohmann::json& payload, std::string_view key, Sig sig = Sig::hs256) {
  const std::string signing_input = b64url(header.dump()) + "." + b64url(payload.dump());
  switch (sig) {
    case Sig::hs256: return signing_input + "." + b64url(hmac256(key, signing_input));
    case Sig::hs512: return signing_input + "." + b64url(hmac512(key, signing_input));
    case Sig::none: return signing_input + ".";
  }
  return {};
}

inline long now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace taskstream::testjwt
