#include "kafka/impl/client.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

#include "kafka/clients.hpp"

namespace taskstream::kafka::impl {
namespace {

// OpenSSL's X509_V_ERR_* codes (stable ABI values) that a misconfigured client meets.
std::string describe_x509_error(int code) {
  switch (code) {
    case 62:  // X509_V_ERR_HOSTNAME_MISMATCH
    case 64:  // X509_V_ERR_IP_ADDRESS_MISMATCH
      return "the certificate is not issued for this host name or address (host name verification)";
    case 2:   // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    case 18:  // X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    case 19:  // X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    case 20:  // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    case 21:  // X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
      return "the certificate is not signed by a CA in KAFKA_SSL_CA_LOCATION";
    case 9: return "the certificate is not yet valid";
    case 10: return "the certificate has expired";
    default: return "OpenSSL verify error " + std::to_string(code);
  }
}

// librdkafka can repeat one line hundreds of times a second (a partition whose leader is
// unknown logs "not found in cache" on every metadata answer): per client and facility,
// at most kLogBurst lines of warning or info level per kLogWindow; then one line says how
// many were left out. Debug lines (KAFKA_DEBUG) are never held back.
constexpr int kLogBurst = 10;
constexpr auto kLogWindow = std::chrono::seconds(10);
struct LogWindow {
  std::chrono::steady_clock::time_point start{};
  int lines = 0;
  std::uint64_t suppressed = 0;
};

/// One client's context: librdkafka's opaque of its handle, made by make_client and deleted
/// with the handle (HandleDeleter, destroy_without_close).
struct ClientContext {
  void* owner = nullptr;  ///< make_client's `owner`, for the creator's own callbacks
  std::pair<std::string, std::string> key;  ///< librdkafka type and client.id, for live_clients()
  std::mutex mutex;       ///< guards what follows (callbacks run on librdkafka's threads)
  std::optional<Error> last_error;  ///< the last non-retriable error
  std::string cert_refusal;         ///< why a broker certificate was last refused, until one passes
  std::map<std::string, LogWindow, std::less<>> log_windows;  ///< by facility
};

// Every librdkafka client alive in this process, by type and client.id: made by make_client,
// gone with its context (HandleDeleter, destroy_without_close). Read by live_clients().
// Never destroyed, so that a client outliving static destruction still counts itself out.
std::mutex& g_live_mutex = *new std::mutex;
std::map<std::pair<std::string, std::string>, std::size_t>& g_live = *new std::map<std::pair<std::string, std::string>, std::size_t>;

void count_client(const std::pair<std::string, std::string>& key, bool made) noexcept {
  std::lock_guard lock(g_live_mutex);
  if (made) {
    try {
      ++g_live[key];
    } catch (...) {  // an allocation failure must not lose the client: its figure is then short
    }
    return;
  }
  auto it = g_live.find(key);
  if (it != g_live.end() && --it->second == 0) g_live.erase(it);
}

/// Deletes a client's context after its handle is gone, and counts the client out.
void forget(ClientContext* ctx) noexcept {
  if (!ctx) return;
  count_client(ctx->key, false);
  delete ctx;
}

ClientContext* context_of(const rd_kafka_t* rk) noexcept { return rk ? static_cast<ClientContext*>(rd_kafka_opaque(rk)) : nullptr; }

// Keeps OpenSSL's verdict exactly (a certificate passes only if OpenSSL found no error:
// CA chain and, with ssl.endpoint.identification.algorithm=https, the host name); it only
// records why a certificate was refused, which librdkafka's error string does not say.
int cert_verify_cb(rd_kafka_t*, const char*, int32_t, int* x509_error, int depth, const char*, size_t, char* errstr,
                   size_t errstr_size, void* opaque) {
  auto& ctx = *static_cast<ClientContext*>(opaque);
  std::lock_guard lock(ctx.mutex);
  if (*x509_error == 0) {
    if (depth == 0) ctx.cert_refusal.clear();
    return 1;
  }
  std::string why = "broker certificate refused: " + describe_x509_error(*x509_error);
  std::snprintf(errstr, errstr_size, "%s", why.c_str());
  ctx.cert_refusal = std::move(why);
  return 0;
}

/// True when this line may be logged; `suppressed` is set to the count left out in the
/// window that just ended, to report once.
bool log_allowed(ClientContext& ctx, const char* fac, std::uint64_t& suppressed) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(ctx.mutex);
  auto it = ctx.log_windows.find(std::string_view(fac));
  if (it == ctx.log_windows.end()) it = ctx.log_windows.emplace(fac, LogWindow{}).first;
  auto& w = it->second;
  suppressed = 0;
  if (now - w.start >= kLogWindow) {
    suppressed = w.suppressed;
    w = {now, 0, 0};
  }
  if (w.lines < kLogBurst) {
    ++w.lines;
    return true;
  }
  ++w.suppressed;
  return false;
}

void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // librdkafka logs a refused connection at level 3 although it retries by itself; the
  // error callback reports what an operator must act on, so its logs stay warnings.
  auto lvl = level <= 4 ? spdlog::level::warn : level <= 6 ? spdlog::level::info : spdlog::level::debug;
  // The relay sets enable.gapless.guarantee on purpose (outbox/relay.hpp); librdkafka warns
  // that the property is experimental each time a client is built.
  if (std::string_view(fac) == "CONFWARN" && std::string_view(buf).find("enable.gapless.guarantee is experimental") != std::string_view::npos)
    lvl = spdlog::level::debug;
  ClientContext* ctx = context_of(rk);
  const char* name = rk ? rd_kafka_name(rk) : "client";
  if (lvl != spdlog::level::debug && ctx) {
    std::uint64_t suppressed = 0;
    const bool allowed = log_allowed(*ctx, fac, suppressed);
    if (suppressed > 0)
      spdlog::log(lvl, "kafka {} {}: {} similar line(s) left out in the last {} s", name, fac, suppressed,
                  std::chrono::duration_cast<std::chrono::seconds>(kLogWindow).count());
    if (!allowed) return;
  }
  spdlog::log(lvl, "kafka {} {}: {}", name, fac, buf);
  // A listener that hangs up before answering ApiVersion is, most likely, a TLS listener
  // seen by a plaintext client. librdkafka 2.12 only logs this (no error callback, and no
  // longer with its security.protocol hint), so it is kept here to explain a failed call.
  const std::string_view msg(buf);
  if (ctx && std::string_view(fac) == "FAIL" && msg.find("Disconnected") != std::string_view::npos &&
      msg.find("in state APIVERSION_QUERY") != std::string_view::npos) {
    std::lock_guard lock(ctx->mutex);
    ctx->last_error = Error(RD_KAFKA_RESP_ERR__TRANSPORT,
                            std::string(msg) + ": might be caused by a security.protocol that does not match the listener", false, false);
  }
}

void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto& ctx = *static_cast<ClientContext*>(opaque);
  Error e(err, reason);
  if (err == RD_KAFKA_RESP_ERR__SSL) {
    std::lock_guard lock(ctx.mutex);
    if (!ctx.cert_refusal.empty()) e = Error(err, ctx.cert_refusal + " (" + reason + ")");
  } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT && std::string_view(reason).find("security.protocol") != std::string_view::npos) {
    // A TLS listener dropping a plaintext client (or the reverse): retrying cannot help.
    e = Error(err, reason, false, false);
  }
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    auto orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    spdlog::critical("kafka {}: fatal error {}: {}", rd_kafka_name(rk), rd_kafka_err2name(orig), buf);
    return;
  }
  // Broker connection errors are routine while a broker restarts: librdkafka retries by
  // itself, so they are warnings; authentication failures are errors an operator must fix.
  if (e.is_retriable()) {
    spdlog::warn("kafka {}: {}", rd_kafka_name(rk), e.to_string());
  } else {
    spdlog::error("kafka {}: {}", rd_kafka_name(rk), e.to_string());
    std::lock_guard lock(ctx.mutex);
    ctx.last_error = e;
  }
}

bool is_secret(const std::string& key) { return key.find("password") != std::string::npos || key.find("secret") != std::string::npos; }

}  // namespace

void HandleDeleter::operator()(rd_kafka_t* rk) const noexcept {
  ClientContext* ctx = context_of(rk);
  rd_kafka_destroy(rk);  // no callback runs after it returns
  forget(ctx);
}

void destroy_without_close(Handle handle) noexcept {
  rd_kafka_t* rk = handle.release();
  if (!rk) return;
  ClientContext* ctx = context_of(rk);
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  forget(ctx);
}

std::optional<Error> last_client_error(const rd_kafka_t* rk) {
  ClientContext* ctx = context_of(rk);
  if (!ctx) return std::nullopt;
  std::lock_guard lock(ctx->mutex);
  return ctx->last_error;
}

void* callback_owner(void* opaque) noexcept { return opaque ? static_cast<ClientContext*>(opaque)->owner : nullptr; }

Handle make_client(rd_kafka_type_t type, const Properties& props, const std::function<void(rd_kafka_conf_t*)>& customize, void* owner) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      std::string shown = is_secret(k) ? std::string("(hidden)") : v;
      throw KafkaException(Error(errc::invalid_config, "property " + k + "=" + shown + " refused: " + errstr, false, false));
    }
  }
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_ssl_cert_verify_cb(conf, cert_verify_cb);  // RD_KAFKA_CONF_INVALID without SSL support: fine
  if (customize) customize(conf);
  auto ctx = std::make_unique<ClientContext>();
  ctx->owner = owner;
  ctx->key = {type == RD_KAFKA_PRODUCER ? "producer" : "consumer", find_property(props, "client.id")};
  if (ctx->key.second.empty()) ctx->key.second = "rdkafka";  // librdkafka's default client.id
  rd_kafka_conf_set_opaque(conf, ctx.get());
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw KafkaException(Error(errc::invalid_config, errstr, false, false));
  }
  count_client(ctx->key, true);
  ctx.release();  // the handle's now: deleted with it
  return Handle(rk);
}

Error make_error(rd_kafka_resp_err_t err, std::string_view context) {
  std::string msg = rd_kafka_err2str(err);
  if (!context.empty()) msg = std::string(context) + ": " + msg;
  return Error(err, std::move(msg));
}

Error make_error(const rd_kafka_error_t* err, std::string_view context) {
  std::string msg = rd_kafka_error_string(err);
  if (!context.empty()) msg = std::string(context) + ": " + msg;
  return Error(rd_kafka_error_code(err), std::move(msg), rd_kafka_error_is_retriable(err) || Error(rd_kafka_error_code(err), "").is_retriable(),
               rd_kafka_error_is_fatal(err));
}

}  // namespace taskstream::kafka::impl

namespace taskstream::kafka {

std::vector<LiveClients> live_clients() {
  std::vector<LiveClients> out;
  std::lock_guard lock(impl::g_live_mutex);
  out.reserve(impl::g_live.size());
  for (const auto& [key, n] : impl::g_live) out.push_back({key.first, key.second, n});
  return out;
}

}  // namespace taskstream::kafka
