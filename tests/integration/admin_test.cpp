// Operators (docs/operations.md, "Operators"): ADMIN_EMAILS accounts get tokens with the
// signed `operator` role; every /admin route answers 401 without a valid token, 403 to any
// other account, 200 to an operator; a role written into a token without the signature is
// refused; `serve --dev` without ADMIN_EMAILS makes the first account an operator and logs it.

#include <gtest/gtest.h>
#include <sodium.h>

#include "serve_process.hpp"

using namespace taskstream;
using nlohmann::json;

namespace {

std::string b64url_decode(const std::string& part) {
  std::string out(part.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), part.data(), part.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return {};
  out.resize(len);
  return out;
}

std::string b64url(const std::string& bin) {
  std::string out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()), bin.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

json payload_of(const std::string& token) {
  const auto a = token.find('.'), b = token.rfind('.');
  return json::parse(b64url_decode(token.substr(a + 1, b - a - 1)));
}

/// Registers `email` and returns its token.
std::string account(const itest::ServeProcess& serve, const std::string& email) {
  json creds{{"email", email}, {"password", "correct horse battery"}};
  EXPECT_EQ(serve.call("POST", "/auth/register", creds.dump()).status, 201);
  auto t = serve.call("POST", "/auth/token", creds.dump());
  EXPECT_EQ(t.status, 200) << t.body;
  return t.json()["access_token"];
}

const std::vector<std::string> kAdminRoutes = {"/admin/outbox"};

}  // namespace

TEST(Operators, AdminRoutesAre401WithoutATokenAnd403ForOthersAndAForgedRoleIsRefused) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"ADMIN_EMAILS", "Ops@Example.com"}, {"KAFKA_ENABLED", "false"}});
  const auto ops = account(serve, "ops@example.com");
  const auto user = account(serve, "someone@example.com");
  EXPECT_EQ(payload_of(ops)["roles"], json::array({"operator"}));
  EXPECT_FALSE(payload_of(user).contains("roles"));

  // The user's own token with the operator role written in, the signature kept.
  auto claims = payload_of(user);
  claims["roles"] = {"operator"};
  const auto a = user.find('.'), b = user.rfind('.');
  const auto forged = user.substr(0, a + 1) + b64url(claims.dump()) + user.substr(b);

  for (const auto& route : kAdminRoutes) {
    auto none = serve.call("GET", route);
    EXPECT_EQ(none.status, 401) << route;
    EXPECT_EQ(none.headers["www-authenticate"], "Bearer") << route;
    auto other = serve.call("GET", route, {}, user);
    EXPECT_EQ(other.status, 403) << route;
    EXPECT_EQ(other.headers["content-type"], "application/problem+json");
    EXPECT_NE(other.body.find("operator role"), std::string::npos) << other.body;
    auto fake = serve.call("GET", route, {}, forged);
    EXPECT_EQ(fake.status, 401) << route;
    EXPECT_NE(fake.body.find("bad signature"), std::string::npos) << fake.body;
    EXPECT_EQ(serve.call("GET", route, {}, ops).status, 200) << route;
  }

  auto outbox = serve.call("GET", "/admin/outbox", {}, ops).json();
  EXPECT_TRUE(outbox["waiting"].is_number_integer());
  EXPECT_TRUE(outbox["oldest_age_seconds"].is_number());
  EXPECT_TRUE(outbox.contains("relay"));

  // The OpenAPI says so too.
  auto doc = serve.call("GET", "/openapi.json").json();
  for (const auto& route : kAdminRoutes) {
    const auto& responses = doc["paths"][route]["get"]["responses"];
    EXPECT_TRUE(responses.contains("401") && responses.contains("403")) << route;
  }
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Operators, ServeDevWithoutAdminEmailsMakesTheFirstAccountAnOperatorAndSaysSo) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"KAFKA_ENABLED", "false"}}, {"serve", "--dev"});
  const auto first = account(serve, "first@example.com");
  const auto second = account(serve, "second@example.com");
  EXPECT_EQ(payload_of(first)["roles"], json::array({"operator"}));
  EXPECT_FALSE(payload_of(second).contains("roles"));
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, first).status, 200);
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, second).status, 403);
  const auto log = serve.log();
  EXPECT_NE(log.find("the first account registered is an operator"), std::string::npos) << log;
  EXPECT_NE(log.find("first@example.com is an operator, as the first account"), std::string::npos) << log;
  EXPECT_EQ(serve.stop(), 0);
}

TEST(Operators, ServeDevWithAdminEmailsMakesOnlyThoseOperators) {
  itest::ServeProcess serve(std::map<std::string, std::string>{{"KAFKA_ENABLED", "false"}, {"ADMIN_EMAILS", "boss@example.com"}},
                            {"serve", "--dev"});
  const auto first = account(serve, "first@example.com");
  const auto boss = account(serve, "boss@example.com");
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, first).status, 403);
  EXPECT_EQ(serve.call("GET", "/admin/outbox", {}, boss).status, 200);
  EXPECT_EQ(serve.log().find("is an operator, as the first account"), std::string::npos);
  EXPECT_EQ(serve.stop(), 0);
}
