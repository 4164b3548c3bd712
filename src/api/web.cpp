// The web page (docs/web.md): static files from web/ in the project, read once at start and
// served from memory. No build step: what is in web/ is what the browser gets. Files in one
// level of subfolders (web/js/, web/vendor/) are served as /static/<folder>/<file>. Each
// answer carries a strong ETag (a hash of the file), so a reload revalidates every module
// with a 304 instead of sending it again.

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
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".json") return "application/json";
  if (ext == ".webmanifest") return "application/manifest+json";
  if (ext == ".txt" || ext == ".md") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

struct Asset {
  std::string content_type, body, etag;
};

/// FNV-1a 64 of the body, as a quoted strong ETag.
std::string etag_of(std::string_view body) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) h = (h ^ c) * 1099511628211ull;
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

void add_common_headers(Response& r, const Asset& a) {
  r.headers.emplace_back("ETag", a.etag);
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // The page talks only to this server (REST and /ws); nothing inline, nothing foreign.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

/// 200 with the file, or 304 when the client's If-None-Match names its ETag.
Response asset_response(const Request& req, const Asset& a) {
  Response r;
  if (auto inm = req.header("if-none-match"); inm && inm->find(a.etag) != std::string_view::npos) {
    r.status = 304;
    r.content_type.clear();
  } else {
    r.content_type = a.content_type;
    r.body = a.body;
  }
  add_common_headers(r, a);
  return r;
}

using Assets = std::map<std::string, Asset, std::less<>>;

/// Every regular file of web/ and of its direct subfolders, keyed "name" or "folder/name".
std::shared_ptr<const Assets> load_assets(const std::filesystem::path& root) {
  auto assets = std::make_shared<Assets>();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec); !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() > 1 || !it->is_regular_file()) continue;
    const auto name = it->path().lexically_relative(root).generic_string();
    if (name.empty() || name.front() == '.') continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string body(std::istreambuf_iterator<char>(in), {});
    auto etag = etag_of(body);
    (*assets)[name] = {content_type_of(it->path()), std::move(body), std::move(etag)};
  }
  return assets;
}

}  // namespace

void register_web_routes(http::Router& router) {
  auto assets = load_assets(web_dir());
  if (!assets->count("index.html")) spdlog::warn("web page: no index.html in {} (set TASKSTREAM_WEB_DIR)", web_dir().string());

  router.add({"GET", "/", false, "The web page"}, [assets](Request& req) -> awaitable<Response> {
    auto it = assets->find("index.html");
    if (it == assets->end()) co_return Response::problem(404, "the web page is not installed");
    co_return asset_response(req, it->second);
  });
  // The operations console (docs/operations.md, "Console"): a page like the one above; what it
  // shows comes from /admin, which only operators' tokens may read.
  router.add({"GET", "/console", false, "The operations console"}, [assets](Request& req) -> awaitable<Response> {
    auto it = assets->find("console.html");
    if (it == assets->end()) co_return Response::problem(404, "the console is not installed");
    co_return asset_response(req, it->second);
  });
  router.add({"GET", "/static/{file}", false, "The web page's scripts and styles"}, [assets](Request& req) -> awaitable<Response> {
    auto it = assets->find(req.params["file"]);
    if (it == assets->end() || it->first == "index.html" || it->first == "console.html") co_return Response::problem(404, "no such file");
    co_return asset_response(req, it->second);
  });
  router.add({"GET", "/static/{folder}/{file}", false, "The web page's modules"}, [assets](Request& req) -> awaitable<Response> {
    const auto& folder = req.params["folder"];
    const auto& file = req.params["file"];
    // Names come from the folder listing: a "." or ".." segment, or a slash, never matches one.
    auto it = assets->find(folder + "/" + file);
    if (it == assets->end()) co_return Response::problem(404, "no such file");
    co_return asset_response(req, it->second);
  });
  router.add({"GET", "/ws", false, "WebSocket upgrade (docs/websocket.md)"}, [](Request&) -> awaitable<Response> {
    Response r = Response::problem(426, "GET /ws is a WebSocket endpoint: send Connection: Upgrade, Upgrade: websocket");
    r.headers.emplace_back("Upgrade", "websocket");
    co_return r;
  });
}

}  // namespace taskstream::api
