#include "kafka/impl/client.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>

namespace taskstream::kafka::impl {
namespace {

std::mutex g_errors_mutex;
std::map<const rd_kafka_t*, Error> g_errors;  // last non-retriable error per live client

void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // librdkafka logs a refused connection at level 3 although it retries by itself; the
  // error callback reports what an operator must act on, so its logs stay warnings.
  const auto lvl = level <= 4 ? spdlog::level::warn : level <= 6 ? spdlog::level::info : spdlog::level::debug;
  spdlog::log(lvl, "kafka {} {}: {}", rd_kafka_name(rk), fac, buf);
}

void error_cb(rd_kafka_t* rk, int err, const char* reason, void*) {
  Error e(err, reason);
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
    std::lock_guard lock(g_errors_mutex);
    g_errors.insert_or_assign(rk, e);
  }
}

bool is_secret(const std::string& key) { return key.find("password") != std::string::npos || key.find("secret") != std::string::npos; }

}  // namespace

void HandleDeleter::operator()(rd_kafka_t* rk) const noexcept {
  rd_kafka_destroy(rk);
  std::lock_guard lock(g_errors_mutex);
  g_errors.erase(rk);
}

std::optional<Error> last_client_error(const rd_kafka_t* rk) {
  std::lock_guard lock(g_errors_mutex);
  auto it = g_errors.find(rk);
  if (it == g_errors.end()) return std::nullopt;
  return it->second;
}

Handle make_client(rd_kafka_type_t type, const Properties& props, const std::function<void(rd_kafka_conf_t*)>& customize) {
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
  if (customize) customize(conf);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw KafkaException(Error(errc::invalid_config, errstr, false, false));
  }
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
