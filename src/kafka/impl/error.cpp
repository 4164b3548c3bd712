#include "kafka/error.hpp"

#include <librdkafka/rdkafka.h>

namespace taskstream::kafka {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "kafka"; }
  std::string message(int code) const override {
    switch (code) {
      case errc::disabled: return "Kafka is disabled";
      case errc::invalid_config: return "invalid Kafka configuration";
      case errc::timed_out: return "timed out";
      case errc::closed: return "client closed";
      default: return rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(code));
    }
  }
};

bool default_retriable(int code) {
  switch (code) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:  // may appear while a topic is being created
    case errc::timed_out:
      return true;
    default:
      return false;
  }
}

}  // namespace

const std::error_category& kafka_category() noexcept {
  static const Category category;
  return category;
}

Error::Error(int code, std::string message)
    : code_(code), message_(std::move(message)), retriable_(default_retriable(code)), fatal_(code == RD_KAFKA_RESP_ERR__FATAL) {}

Error::Error(int code, std::string message, bool retriable, bool fatal)
    : code_(code), message_(std::move(message)), retriable_(retriable), fatal_(fatal) {}

std::string Error::name() const {
  switch (code_) {
    case errc::disabled: return "DISABLED";
    case errc::invalid_config: return "INVALID_CONFIG";
    case errc::timed_out: return "DEADLINE_EXCEEDED";
    case errc::closed: return "CLOSED";
    default: return rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(code_));
  }
}

std::string Error::hint() const {
  switch (code_) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
      return "check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD";
    case RD_KAFKA_RESP_ERR__SSL:
      return "check KAFKA_SSL_CA_LOCATION (the CA that signed the broker certificates), that KAFKA_BOOTSTRAP_SERVERS "
             "names hosts the certificates are issued for, and KAFKA_SECURITY_PROTOCOL";
    case RD_KAFKA_RESP_ERR__TRANSPORT:
      if (message_.find("security.protocol") != std::string::npos)
        return "check KAFKA_SECURITY_PROTOCOL: it must match the broker listener in KAFKA_BOOTSTRAP_SERVERS (SSL/SASL_SSL "
               "for a TLS listener)";
      [[fallthrough]];
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
      return "check KAFKA_BOOTSTRAP_SERVERS and that the broker is running (scripts/kafka status)";
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
      return "create the topics with `taskstream topics ensure`";
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return "grant the KAFKA_SASL_USERNAME principal access to the topic or group";
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
      return "KAFKA_REPLICATION_FACTOR exceeds the number of brokers";
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
      return "fewer in-sync replicas than min.insync.replicas; wait for brokers to rejoin";
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return "message exceeds the broker's max.message.bytes";
    case RD_KAFKA_RESP_ERR__FATAL:
      return "the producer must be rebuilt; see the preceding fatal error";
    case errc::disabled:
      return "set KAFKA_ENABLED=true to publish";
    case errc::invalid_config:
      return "check the KAFKA_* settings";
    default:
      return {};
  }
}

std::string Error::to_string() const {
  std::string out = name() + ": " + message_;
  if (fatal_) out += " (fatal)";
  else if (retriable_) out += " (retriable)";
  auto h = hint();
  if (!h.empty()) out += "; " + h;
  return out;
}

}  // namespace taskstream::kafka
static_assert(taskstream::kafka::errc::unknown_topic == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
