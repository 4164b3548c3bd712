#include "api/api.hpp"

namespace taskstream::api {

void register_routes(http::Router& router, ApiContext& ctx) {
  register_user_routes(router, ctx);
  register_admin_routes(router, ctx);
  register_web_routes(router);
}

}  // namespace taskstream::api
