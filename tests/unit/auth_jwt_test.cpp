// JWT issue/verify. Hostile tokens (alg none, HS512 with the same secret, missing claims)
// are built by hand with libsodium's HMACs, independently of libjwt, so the tests do not
// share the code under test.

#include "auth/jwt.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hand_made_jwt.hpp"

using namespace taskstream;
using namespace taskstream::auth;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

using testjwt::b64url;
using testjwt::now_s;
using testjwt::Sig;

std::string craft(const json& header, const json& payload, Sig sig = Sig::hs256, std::string_view key = kSecret) {
  return testjwt::craft(header, payload, key, sig);
}

const json kHs256 = {{"alg", "HS256"}, {"typ", "JWT"}};

std::string reason(const JwtCodec& codec, const std::string& token) {
  try {
    codec.verify(token);
  } catch (const AuthError& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST(Jwt, RoundTrip) {
  JwtCodec codec{kSecret, 900s};
  EXPECT_EQ(codec.ttl(), 900s);
  const auto token = codec.issue("user-123");
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2);
  EXPECT_EQ(codec.verify(token), "user-123");
}

TEST(Jwt, HandCraftedHs256IsAccepted) {
  // Guards the helpers: the refusals below are meaningful only if a correct token passes.
  JwtCodec codec{kSecret};
  EXPECT_EQ(codec.verify(craft(kHs256, {{"sub", "u1"}, {"exp", now_s() + 60}})), "u1");
}

TEST(Jwt, TamperedTokenIsBadSignature) {
  JwtCodec codec{kSecret};
  auto token = codec.issue("user-1");
  const auto sig_start = token.rfind('.') + 1;
  auto tampered_sig = token;
  auto& c = tampered_sig[sig_start + 5];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_EQ(reason(codec, tampered_sig), "bad signature");

  // Someone else's sub with the original signature.
  const auto forged = craft(kHs256, {{"sub", "admin"}, {"exp", now_s() + 60}});
  const auto swapped = forged.substr(0, forged.rfind('.')) + token.substr(token.rfind('.'));
  EXPECT_EQ(reason(codec, swapped), "bad signature");

  JwtCodec other{std::string(40, 'z')};
  EXPECT_EQ(reason(other, token), "bad signature");
}

TEST(Jwt, RolesAreSignedClaims) {
  JwtCodec codec{kSecret};
  const auto op = codec.verify_claims(codec.issue("ops-1", {"operator"}));
  EXPECT_EQ(op.subject, "ops-1");
  EXPECT_TRUE(op.has_role("operator"));
  const auto plain = codec.verify_claims(codec.issue("user-1"));
  EXPECT_TRUE(plain.roles.empty());
  EXPECT_FALSE(plain.has_role("operator"));
  EXPECT_THROW(codec.issue("u", std::vector<std::string>{""}), std::invalid_argument);

  // A user's own token with "roles" written into its payload, keeping its signature.
  const auto token = codec.issue("user-1");
  const auto forged_payload = craft(kHs256, {{"sub", "user-1"}, {"exp", now_s() + 3600}, {"roles", {"operator"}}}, Sig::hs256, "a different secret of 32 bytes or more");
  const auto dot1 = token.find('.');
  const auto swapped = token.substr(0, dot1) + forged_payload.substr(forged_payload.find('.'), forged_payload.rfind('.') - forged_payload.find('.')) +
                       token.substr(token.rfind('.'));
  EXPECT_EQ(reason(codec, swapped), "bad signature");
  // Signed with another secret.
  EXPECT_EQ(reason(codec, forged_payload), "bad signature");
  // Signed with ours, but roles that are not a list of names.
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u"}, {"exp", now_s() + 60}, {"roles", "operator"}})), "bad roles");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u"}, {"exp", now_s() + 60}, {"roles", {1}}})), "bad roles");
  EXPECT_TRUE(codec.verify_claims(craft(kHs256, {{"sub", "u"}, {"exp", now_s() + 60}, {"roles", {"operator"}}})).has_role("operator"));
}

TEST(Jwt, AlgNoneIsRefused) {
  JwtCodec codec{kSecret};
  const auto token = craft({{"alg", "none"}, {"typ", "JWT"}}, {{"sub", "admin"}, {"exp", now_s() + 3600}}, Sig::none);
  EXPECT_EQ(reason(codec, token), "unsupported alg");
  const auto upper = craft({{"alg", "NONE"}}, {{"sub", "admin"}, {"exp", now_s() + 3600}}, Sig::none);
  EXPECT_EQ(reason(codec, upper), "unsupported alg");
}

TEST(Jwt, OtherAlgsWithTheSameSecretAreRefused) {
  JwtCodec codec{kSecret};
  const json payload = {{"sub", "u1"}, {"exp", now_s() + 3600}};
  EXPECT_EQ(reason(codec, craft({{"alg", "HS512"}, {"typ", "JWT"}}, payload, Sig::hs512)), "unsupported alg");
  // An HS256 signature under a header claiming RS256 must not pass either.
  EXPECT_EQ(reason(codec, craft({{"alg", "RS256"}, {"typ", "JWT"}}, payload, Sig::hs256)), "unsupported alg");
  EXPECT_EQ(reason(codec, craft({{"typ", "JWT"}}, payload, Sig::hs256)), "unsupported alg");
}

TEST(Jwt, ExpiredTokenIsRefused) {
  JwtCodec codec{kSecret, 3600s};
  const auto old = codec.issue("user-1", std::chrono::system_clock::now() - 2h);
  EXPECT_EQ(reason(codec, old), "token expired");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", now_s() - 1}})), "token expired");
  // Valid at issue time, judged later with the explicit clock.
  const auto fresh = codec.issue("user-1");
  EXPECT_THROW(codec.verify(fresh, std::chrono::system_clock::now() + 3601s), AuthError);
}

TEST(Jwt, RememberedTokensAreStillJudgedAtEachUse) {
  JwtCodec codec{kSecret, 3600s};
  const auto token = codec.issue("user-1");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(codec.verify(token), "user-1");  // remembered after the first
  try {
    codec.verify(token, std::chrono::system_clock::now() + 3601s);
    ADD_FAILURE() << "a remembered token was accepted after its exp";
  } catch (const AuthError& e) {
    EXPECT_STREQ(e.what(), "token expired");
  }
  // One character changed in the signature is another token: checked, and refused.
  auto tampered = token;
  auto& c = tampered[tampered.size() - 5];  // inside the signature (the last one carries padding bits)
  c = c == 'A' ? 'B' : 'A';
  EXPECT_EQ(reason(codec, tampered), "bad signature");
  // More distinct tokens than the cache holds: each still verifies (the cache starts over).
  for (std::size_t i = 0; i < JwtCodec::kVerifiedCacheSize + 10; ++i)
    ASSERT_EQ(codec.verify(codec.issue("user-" + std::to_string(i))), "user-" + std::to_string(i));
  EXPECT_EQ(codec.verify(token), "user-1");
}

TEST(Jwt, MissingOrNonIntegerExpIsRefused) {
  JwtCodec codec{kSecret};
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}})), "missing exp");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", "tomorrow"}})), "missing exp");
}

TEST(Jwt, FutureNbfIsRefusedBeyondTheLeeway) {
  JwtCodec codec{kSecret};
  const long exp = now_s() + 3600;
  // Past or present nbf: fine. Within the documented leeway: fine (clock skew).
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", exp}, {"nbf", now_s() - 60}})), "accepted");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", exp}, {"nbf", now_s()}})), "accepted");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", exp}, {"nbf", now_s() + kNotBeforeLeeway.count() - 5}})), "accepted");
  // Beyond it: refused, HTTP and /ws alike (both go through verify_claims).
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", exp}, {"nbf", now_s() + kNotBeforeLeeway.count() + 60}})),
            "token not yet valid");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", exp}, {"nbf", now_s() + 1800}})), "token not yet valid");
  // A non-integer nbf is not ignored.
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", exp}, {"nbf", "later"}})), "bad nbf");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", "u1"}, {"exp", exp}, {"nbf", nullptr}})), "bad nbf");
}

TEST(Jwt, NbfIsJudgedAtTheGivenClock) {
  JwtCodec codec{kSecret};
  const auto now = std::chrono::system_clock::now();
  const long nbf = now_s() + 600;
  const auto token = craft(kHs256, {{"sub", "u1"}, {"exp", nbf + 3600}, {"nbf", nbf}});
  EXPECT_THROW(codec.verify(token, now), AuthError);
  EXPECT_EQ(codec.verify(token, now + 601s), "u1");
  EXPECT_EQ(codec.verify(token, now + 600s - kNotBeforeLeeway + 1s), "u1") << "inside the leeway";
  EXPECT_THROW(codec.verify(token, now + 600s - kNotBeforeLeeway - 5s), AuthError);
}

TEST(Jwt, IssuedTokensCarryNoNbfAndPassAtOnce) {
  JwtCodec codec{kSecret};
  const auto token = codec.issue("u1");
  const auto payload_b64 = token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1);
  std::string raw(payload_b64.size(), '\0');
  std::size_t len = 0;
  ASSERT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), payload_b64.data(), payload_b64.size(), nullptr,
                              &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
  raw.resize(len);
  EXPECT_FALSE(json::parse(raw).contains("nbf"));
  EXPECT_EQ(codec.verify(token), "u1");
}

TEST(Jwt, MissingSubIsRefused) {
  JwtCodec codec{kSecret};
  EXPECT_EQ(reason(codec, craft(kHs256, {{"exp", now_s() + 60}})), "missing sub");
  EXPECT_EQ(reason(codec, craft(kHs256, {{"sub", 42}, {"exp", now_s() + 60}})), "missing sub");
}

TEST(Jwt, MalformedTokensAreRefused) {
  JwtCodec codec{kSecret};
  for (const std::string token : {"", "abc", "a.b", "a.b.c.d", "!!!.???.xyz", "e30.bm90IGpzb24.xyz"}) {
    EXPECT_EQ(reason(codec, token), "malformed token") << token;
  }
  EXPECT_EQ(reason(codec, std::string(10000, 'a')), "malformed token");
}

TEST(Jwt, ShortSecretOrBadArgumentsThrow) {
  EXPECT_THROW(JwtCodec{std::string(31, 'x')}, std::invalid_argument);
  EXPECT_NO_THROW(JwtCodec{std::string(32, 'x')});
  EXPECT_THROW((JwtCodec{kSecret, 0s}), std::invalid_argument);
  EXPECT_THROW(JwtCodec{kSecret}.issue(""), std::invalid_argument);
}

TEST(AuthBearer, ExtractsTokenFromAuthorizationHeader) {
  EXPECT_EQ(bearer_token("Bearer abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(bearer_token("  bearer   xyz  "), "xyz");
  EXPECT_EQ(bearer_token("BEARER t"), "t");
  for (const char* bad : {"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearerxyz", "Bearer a b", "xyz"}) {
    try {
      bearer_token(bad);
      ADD_FAILURE() << "accepted: '" << bad << "'";
    } catch (const AuthError& e) {
      EXPECT_STREQ(e.what(), "missing bearer token");
    }
  }
}
