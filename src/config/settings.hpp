#pragma once
// Settings: every variable of docs/configuration.md, loaded once at start-up.
//
// Lifecycle: built by Settings::load() and then read-only; safe to share between threads.
// Errors: load() throws ConfigError whose what() is one line naming the variable and what
// is allowed. Secrets are kept out of every message and out of describe().

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace taskstream::config {

/// One bad value: what() reads "NAME: problem; allowed: ...".
class ConfigError final : public std::runtime_error {
 public:
  ConfigError(std::string variable, const std::string& message)
      : std::runtime_error(variable + ": " + message), variable_(std::move(variable)) {}
  const std::string& variable() const noexcept { return variable_; }

 private:
  std::string variable_;
};

/// Variables from the environment and from a .env file; the environment wins.
using EnvMap = std::map<std::string, std::string, std::less<>>;

/// Reads KEY=VALUE lines (`export ` prefix, quotes and # comments allowed). A missing file is
/// an empty map; a malformed line throws ConfigError naming the file and line.
EnvMap parse_dotenv(const std::string& text, const std::string& origin = ".env");
EnvMap read_dotenv_file(const std::filesystem::path& path);
/// The process environment merged over `.env` in `dir` (the working directory by default).
EnvMap process_env(const std::filesystem::path& dotenv = ".env");

enum class SecurityProtocol { plaintext, ssl, sasl_plaintext, sasl_ssl };
enum class SaslMechanism { none, plain, scram_sha_256, scram_sha_512 };
enum class LogFormat { text, json };
enum class DatabaseKind { sqlite, postgresql };

std::string_view to_string(SecurityProtocol p);
std::string_view to_string(SaslMechanism m);

struct DatabaseUrl {
  DatabaseKind kind = DatabaseKind::sqlite;
  std::string url;   ///< as given
  std::string path;  ///< sqlite: the file path (":memory:" allowed)
};

struct Settings {
  // Kafka connection
  std::string kafka_bootstrap_servers = "localhost:9092";
  SecurityProtocol kafka_security_protocol = SecurityProtocol::plaintext;
  SaslMechanism kafka_sasl_mechanism = SaslMechanism::none;
  std::string kafka_sasl_username;
  std::string kafka_sasl_password;  // secret
  std::string kafka_ssl_ca_location;
  // Topics and groups
  std::string kafka_topic_task_events = "task-events";
  std::string kafka_topic_task_updates = "task-updates";
  std::string kafka_topic_notification_request = "notification.request";
  std::string kafka_consumer_group_audit = "audit-service";
  std::string kafka_consumer_group_websocket = "websocket-service";
  std::string kafka_consumer_group_notification = "notification-service";
  bool kafka_enabled = true;
  int kafka_topic_partitions = 6;
  int kafka_replication_factor = 1;
  // Producer tuning (not in the seed; defaults keep the seed's consumers able to read us)
  // 0: the relay already hands librdkafka whole batches of outbox rows, so lingering only
  // adds latency (5 ms cost 8-10 ms of POST-to-frame p50 at 100 changes/s).
  int kafka_producer_linger_ms = 0;
  int kafka_producer_batch_size = 1'000'000;
  std::string kafka_producer_compression = "none";
  // Storage, HTTP, auth
  DatabaseUrl database{DatabaseKind::sqlite, "sqlite:///taskstream.db", "taskstream.db"};
  std::string http_host = "127.0.0.1";
  std::uint16_t http_port = 8000;
  std::optional<std::string> jwt_secret;  // secret; required by `serve` (checked there)
  std::vector<std::string> cors_origins;
  /// ADMIN_EMAILS: accounts (lower-cased emails) that are operators: their tokens carry the
  /// `operator` role, which every /admin route requires. Empty: nobody (but see serve --dev).
  std::vector<std::string> admin_emails;
  /// POST /auth/token attempts per minute (token bucket, burst of the same size); 0: no limit.
  /// Per client address (the TCP peer; IPv6 by /64), every attempt counts; per account
  /// (the email), failed attempts only. Beyond either: 429 with Retry-After.
  int auth_rate_limit_per_address = 20;
  int auth_rate_limit_per_account = 10;
  // Email
  bool email_notifications_enabled = true;
  std::string smtp_host = "localhost";
  std::uint16_t smtp_port = 25;
  std::string smtp_username;
  std::string smtp_password;  // secret
  std::string smtp_from = "taskstream@localhost";
  bool smtp_starttls = false;
  /// Email retries: attempts in all, and the backoff between them (doubling, ±25% jitter).
  /// The defaults ride out an SMTP outage of about 90 s.
  int email_max_attempts = 8;
  std::int64_t email_retry_initial_ms = 1000;
  std::int64_t email_retry_max_ms = 30'000;
  // WebSocket (docs/websocket.md)
  int ws_send_queue_max = 1024;      ///< frames waiting per socket; beyond it the socket is closed
  int ws_max_sockets_per_user = 16;  ///< per instance; one more is refused with 429
  /// Published outbox rows are kept this long: a WebSocket resume from further back answers
  /// recovered:false.
  std::int64_t outbox_retention_hours = 168;
  // Scheduling and logs
  std::int64_t reminder_lead_seconds = 3600;
  std::string log_level = "info";
  LogFormat log_format = LogFormat::text;

  /// Builds settings from `env`; throws ConfigError on the first bad value.
  static Settings load(const EnvMap& env);
  /// Settings::load(process_env()).
  static Settings from_environment();

  bool kafka_embedded() const { return kafka_bootstrap_servers == "embedded"; }
  /// Every variable with its effective value, secrets masked: for `--describe` and logs.
  std::vector<std::pair<std::string, std::string>> describe() const;
};

/// Shown in place of a secret that is set.
inline constexpr std::string_view kMasked = "******";
/// A DATABASE_URL with its password replaced by kMasked.
std::string mask_url_password(std::string_view url);

}  // namespace taskstream::config
