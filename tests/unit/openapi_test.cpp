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
  // Public routes say so; the rest inherit the bearer requirement.
  EXPECT_TRUE(doc["paths"]["/auth/token"]["post"]["security"].empty());
  EXPECT_FALSE(doc["paths"]["/tasks"]["post"].contains("security"));
  pool.join();
}
