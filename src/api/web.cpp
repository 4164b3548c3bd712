// The web page (SPEC section 7): static files from web/ in the project, read once at start
// and served from memory. No build step: what is in web/ is what the browser gets.

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "api/api.hpp"

namespace taskstream::api {
namespace {

using http::Request;
using http::Response;
using boost::asio::awaitable;

std::filesystem::path web_dir() {
  if (const char* d = std::getenv("TASKSTREAM_WEB_DIR"); d && *d) return d;
  return TASKSTREAM_WEB_DIR;
}

std::string content_type_of(const std::filesystem::path& p) {
  const auto ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  return "application/octet-stream";
}

struct Asset {
  std::string content_type, body;
};

Response asset_response(const Asset& a) {
  Response r;
  r.content_type = a.content_type;
  r.body = a.body;
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // The page talks only to this server (REST and /ws); nothing inline, nothing foreign.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'");
  return r;
}

}  // namespace

void register_web_routes(http::Router& router) {
  auto assets = std::make_shared<std::map<std::string, Asset, std::less<>>>();
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(web_dir(), ec)) {
    if (!f.is_regular_file()) continue;
    std::ifstream in(f.path(), std::ios::binary);
    (*assets)[f.path().filename().string()] = {content_type_of(f.path()), std::string(std::istreambuf_iterator<char>(in), {})};
  }
  if (!assets->count("index.html")) spdlog::warn("web page: no index.html in {} (set TASKSTREAM_WEB_DIR)", web_dir().string());

  router.add({"GET", "/", false, "The web page"}, [assets](Request&) -> awaitable<Response> {
    auto it = assets->find("index.html");
    if (it == assets->end()) co_return Response::problem(404, "the web page is not installed");
    co_return asset_response(it->second);
  });
  router.add({"GET", "/static/{file}", false, "The web page's scripts and styles"}, [assets](Request& req) -> awaitable<Response> {
    auto it = assets->find(req.params["file"]);
    if (it == assets->end() || it->first == "index.html") co_return Response::problem(404, "no such file");
    co_return asset_response(it->second);
  });
  router.add({"GET", "/ws", false, "WebSocket upgrade (SPEC section 6)"}, [](Request&) -> awaitable<Response> {
    Response r = Response::problem(426, "GET /ws is a WebSocket endpoint: send Connection: Upgrade, Upgrade: websocket");
    r.headers.emplace_back("Upgrade", "websocket");
    co_return r;
  });
}

}  // namespace taskstream::api
