// Every route the router serves is described in /openapi.json, and every description is
// of a route the router serves.

#include <gtest/gtest.h>

#include <set>

#include "api/api.hpp"
#include "storage/store.hpp"

using namespace taskstream;

TEST(OpenApi, DescribesExactlyTheRoutesServed) {
  auto settings = config::Settings::load({{"DATABASE_URL", "sqlite:///:memory:"}, {"KAFKA_ENABLED", "false"}});
  auto store = storage::open_store(settings.database);
  boost::asio::thread_pool pool(1);
  auth::JwtCodec jwt(std::string(32, 's'));
  api::ApiContext ctx{settings, *store, pool, jwt, nullptr, {}, nullptr};
  http::Router router;
  api::register_routes(router, ctx);

  std::set<std::string> served;
  for (const auto& r : router.routes()) served.insert(r.method + " " + r.pattern);
  auto described_list = api::described_operations();
  std::set<std::string> described(described_list.begin(), described_list.end());
  for (const auto& op : served) EXPECT_TRUE(described.count(op)) << op << " is served but not described";
  for (const auto& op : described) EXPECT_TRUE(served.count(op)) << op << " is described but not served";

  auto doc = api::openapi_document(router);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  std::size_t operations = 0;
  for (const auto& [path, methods] : doc["paths"].items()) operations += methods.size();
  EXPECT_EQ(operations, served.size());
  // Generated from the route table: every operation names its security; one that needs a
  // token documents 401, a role 403, a body 400 and 413, the database 503 (and 507 for a
  // write) with Retry-After; each has an operationId and documents 500.
  std::set<std::string> ids;
  for (const auto& r : router.routes()) {
    std::string method = r.method;
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto& op = doc["paths"][r.pattern][method];
    const auto where = r.method + " " + r.pattern;
    ASSERT_TRUE(op.contains("security")) << where;
    EXPECT_EQ(op["security"].empty(), !r.requires_auth) << where;
    if (r.requires_auth) EXPECT_TRUE(op["responses"].contains("401")) << where;
    if (!r.role.empty()) EXPECT_TRUE(op["responses"].contains("403")) << where;
    if (op.contains("requestBody")) EXPECT_TRUE(op["responses"].contains("400") && op["responses"].contains("413")) << where;
    EXPECT_TRUE(op["responses"].contains("500")) << where;
    EXPECT_TRUE(ids.insert(op["operationId"].get<std::string>()).second) << where << ": operationId taken";
  }
  const auto& patch = doc["paths"]["/tasks/{id}"]["patch"];
  EXPECT_TRUE(patch["responses"]["503"]["headers"]["Retry-After"]["required"].get<bool>());
  EXPECT_TRUE(patch["responses"].contains("507"));
  EXPECT_TRUE(patch["responses"]["200"]["headers"]["ETag"]["required"].get<bool>());
  EXPECT_FALSE(doc["paths"]["/tasks"]["get"]["responses"].contains("507"));
  EXPECT_TRUE(doc["paths"]["/auth/token"]["post"]["security"].empty());
  pool.join();
}
