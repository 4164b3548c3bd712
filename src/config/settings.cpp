#include "config/settings.hpp"

#include <algorithm>
#include <regex>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

extern char** environ;

namespace taskstream::config {
namespace {

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::toupper(c); });
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

/// Looks up `name`; an empty value counts as unset for every variable with a default.
const std::string* find(const EnvMap& env, std::string_view name) {
  auto it = env.find(name);
  return it == env.end() ? nullptr : &it->second;
}

void read_string(const EnvMap& env, const char* name, std::string& out, bool allow_empty = false) {
  if (const auto* v = find(env, name)) {
    if (v->empty() && !allow_empty) throw ConfigError(name, "must not be empty");
    out = *v;
  }
}

std::int64_t parse_int(const char* name, const std::string& v, std::int64_t min, std::int64_t max) {
  std::int64_t out = 0;
  auto t = trim(v);
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size())
    throw ConfigError(name, "'" + v + "' is not a whole number; allowed: " + std::to_string(min) + ".." +
                                std::to_string(max));
  if (out < min || out > max)
    throw ConfigError(name, std::to_string(out) + " is out of range; allowed: " + std::to_string(min) + ".." +
                                std::to_string(max));
  return out;
}

template <typename T>
void read_int(const EnvMap& env, const char* name, T& out, std::int64_t min, std::int64_t max) {
  if (const auto* v = find(env, name)) out = static_cast<T>(parse_int(name, *v, min, max));
}

void read_bool(const EnvMap& env, const char* name, bool& out) {
  const auto* v = find(env, name);
  if (!v) return;
  auto s = lower(trim(*v));
  if (s == "true" || s == "1" || s == "yes" || s == "on") out = true;
  else if (s == "false" || s == "0" || s == "no" || s == "off") out = false;
  else throw ConfigError(name, "'" + *v + "' is not a boolean; allowed: true, false (also 1/0, yes/no, on/off)");
}

DatabaseUrl parse_database_url(const std::string& v) {
  constexpr const char* kName = "DATABASE_URL";
  constexpr const char* kAllowed =
      "allowed: sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:, "
      "postgresql://user:pass@host:port/db";
  DatabaseUrl out;
  out.url = v;
  if (v.rfind("sqlite:///", 0) == 0) {
    out.kind = DatabaseKind::sqlite;
    out.path = v.substr(10);
    if (out.path.empty()) throw ConfigError(kName, "sqlite URL has no file path; " + std::string(kAllowed));
    return out;
  }
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (v.rfind(scheme, 0) != 0) continue;
    out.kind = DatabaseKind::postgresql;
    std::string_view rest = std::string_view(v).substr(scheme.size());
    auto at = rest.rfind('@');
    std::string_view hostpart = at == std::string_view::npos ? rest : rest.substr(at + 1);
    auto slash = hostpart.find('/');
    std::string_view hostport = hostpart.substr(0, slash);
    if (hostport.empty()) throw ConfigError(kName, "postgresql URL has no host; " + std::string(kAllowed));
    if (slash == std::string_view::npos || slash + 1 >= hostpart.size() || hostpart[slash + 1] == '?')
      throw ConfigError(kName, "postgresql URL has no database name; " + std::string(kAllowed));
    auto colon = hostport.rfind(':');
    if (colon != std::string_view::npos && hostport.back() != ']') {
      std::string port(hostport.substr(colon + 1));
      parse_int(kName, port, 1, 65535);  // throws with the variable named
    }
    return out;
  }
  throw ConfigError(kName, "unsupported URL (password hidden: '" + mask_url_password(v) + "'); " + kAllowed);
}

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto t = trim(item);
    if (!t.empty()) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

std::string_view to_string(SecurityProtocol p) {
  switch (p) {
    case SecurityProtocol::plaintext: return "PLAINTEXT";
    case SecurityProtocol::ssl: return "SSL";
    case SecurityProtocol::sasl_plaintext: return "SASL_PLAINTEXT";
    case SecurityProtocol::sasl_ssl: return "SASL_SSL";
  }
  return "PLAINTEXT";
}

std::string_view to_string(SaslMechanism m) {
  switch (m) {
    case SaslMechanism::none: return "";
    case SaslMechanism::plain: return "PLAIN";
    case SaslMechanism::scram_sha_256: return "SCRAM-SHA-256";
    case SaslMechanism::scram_sha_512: return "SCRAM-SHA-512";
  }
  return "";
}

std::string mask_url_password(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  auto at = url.rfind('@');
  if (at == std::string_view::npos || at < scheme) return std::string(url);
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + std::string(kMasked) + std::string(url.substr(at));
}

EnvMap parse_dotenv(const std::string& text, const std::string& origin) {
  EnvMap out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    if (t.rfind("export ", 0) == 0) t = trim(t.substr(7));
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError(origin + ":" + std::to_string(lineno), "expected KEY=VALUE");
    auto key = trim(t.substr(0, eq));
    auto value = trim(t.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    } else if (auto hash = value.find(" #"); hash != std::string::npos) {
      value = trim(value.substr(0, hash));  // an unquoted value may carry a trailing comment
    }
    out[key] = value;
  }
  return out;
}

EnvMap read_dotenv_file(const std::filesystem::path& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_dotenv(ss.str(), path.string());
}

EnvMap process_env(const std::filesystem::path& dotenv) {
  EnvMap env = read_dotenv_file(dotenv);
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  return env;
}

Settings Settings::load(const EnvMap& env) {
  Settings s;
  read_string(env, "KAFKA_BOOTSTRAP_SERVERS", s.kafka_bootstrap_servers);

  if (const auto* v = find(env, "KAFKA_SECURITY_PROTOCOL")) {
    auto p = upper(trim(*v));
    if (p == "PLAINTEXT") s.kafka_security_protocol = SecurityProtocol::plaintext;
    else if (p == "SSL") s.kafka_security_protocol = SecurityProtocol::ssl;
    else if (p == "SASL_PLAINTEXT") s.kafka_security_protocol = SecurityProtocol::sasl_plaintext;
    else if (p == "SASL_SSL") s.kafka_security_protocol = SecurityProtocol::sasl_ssl;
    else throw ConfigError("KAFKA_SECURITY_PROTOCOL", "'" + *v + "' is unknown; allowed: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL");
  }
  if (const auto* v = find(env, "KAFKA_SASL_MECHANISM")) {
    auto m = upper(trim(*v));
    if (m.empty()) s.kafka_sasl_mechanism = SaslMechanism::none;
    else if (m == "PLAIN") s.kafka_sasl_mechanism = SaslMechanism::plain;
    else if (m == "SCRAM-SHA-256") s.kafka_sasl_mechanism = SaslMechanism::scram_sha_256;
    else if (m == "SCRAM-SHA-512") s.kafka_sasl_mechanism = SaslMechanism::scram_sha_512;
    else throw ConfigError("KAFKA_SASL_MECHANISM", "'" + *v + "' is unknown; allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or empty");
  }
  read_string(env, "KAFKA_SASL_USERNAME", s.kafka_sasl_username, true);
  read_string(env, "KAFKA_SASL_PASSWORD", s.kafka_sasl_password, true);
  read_string(env, "KAFKA_SSL_CA_LOCATION", s.kafka_ssl_ca_location, true);

  const bool sasl_protocol = s.kafka_security_protocol == SecurityProtocol::sasl_plaintext ||
                             s.kafka_security_protocol == SecurityProtocol::sasl_ssl;
  if (s.kafka_sasl_mechanism != SaslMechanism::none && !sasl_protocol)
    throw ConfigError("KAFKA_SECURITY_PROTOCOL",
                      std::string(to_string(s.kafka_security_protocol)) +
                          " does not carry SASL but KAFKA_SASL_MECHANISM is set; allowed: SASL_PLAINTEXT, SASL_SSL");
  if (sasl_protocol && s.kafka_sasl_mechanism == SaslMechanism::none)
    throw ConfigError("KAFKA_SASL_MECHANISM",
                      "must be set when KAFKA_SECURITY_PROTOCOL is " +
                          std::string(to_string(s.kafka_security_protocol)) +
                          "; allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512");
  if (s.kafka_sasl_mechanism != SaslMechanism::none && s.kafka_sasl_username.empty())
    throw ConfigError("KAFKA_SASL_USERNAME", "must be set when KAFKA_SASL_MECHANISM is set");
  if (!s.kafka_ssl_ca_location.empty() && !std::filesystem::exists(s.kafka_ssl_ca_location))
    throw ConfigError("KAFKA_SSL_CA_LOCATION", "file '" + s.kafka_ssl_ca_location + "' does not exist");

  read_string(env, "KAFKA_TOPIC_TASK_EVENTS", s.kafka_topic_task_events);
  read_string(env, "KAFKA_TOPIC_TASK_UPDATES", s.kafka_topic_task_updates);
  read_string(env, "KAFKA_TOPIC_NOTIFICATION_REQUEST", s.kafka_topic_notification_request);
  for (auto [name, value] : {std::pair{"KAFKA_TOPIC_TASK_EVENTS", &s.kafka_topic_task_events},
                             std::pair{"KAFKA_TOPIC_TASK_UPDATES", &s.kafka_topic_task_updates},
                             std::pair{"KAFKA_TOPIC_NOTIFICATION_REQUEST", &s.kafka_topic_notification_request}}) {
    const bool legal = value->size() <= 249 && std::all_of(value->begin(), value->end(), [](unsigned char c) {
                         return std::isalnum(c) || c == '.' || c == '_' || c == '-';
                       });
    if (!legal || *value == "." || *value == "..")
      throw ConfigError(name, "'" + *value + "' is not a legal topic name; allowed: up to 249 of [a-zA-Z0-9._-]");
  }
  read_string(env, "KAFKA_CONSUMER_GROUP_AUDIT", s.kafka_consumer_group_audit);
  read_string(env, "KAFKA_CONSUMER_GROUP_WEBSOCKET", s.kafka_consumer_group_websocket);
  read_string(env, "KAFKA_CONSUMER_GROUP_NOTIFICATION", s.kafka_consumer_group_notification);
  read_bool(env, "KAFKA_ENABLED", s.kafka_enabled);
  read_int(env, "KAFKA_TOPIC_PARTITIONS", s.kafka_topic_partitions, 1, 10000);
  read_int(env, "KAFKA_REPLICATION_FACTOR", s.kafka_replication_factor, 1, 32767);
  read_int(env, "KAFKA_PRODUCER_LINGER_MS", s.kafka_producer_linger_ms, 0, 900000);
  read_int(env, "KAFKA_PRODUCER_BATCH_SIZE", s.kafka_producer_batch_size, 1, 2147483647);
  if (const auto* v = find(env, "KAFKA_PRODUCER_COMPRESSION")) {
    auto c = lower(trim(*v));
    if (c != "none" && c != "gzip" && c != "snappy" && c != "lz4" && c != "zstd")
      throw ConfigError("KAFKA_PRODUCER_COMPRESSION", "'" + *v + "' is unknown; allowed: none, gzip, snappy, lz4, zstd");
    s.kafka_producer_compression = c;
  }

  if (const auto* v = find(env, "DATABASE_URL")) s.database = parse_database_url(trim(*v));
  read_string(env, "HTTP_HOST", s.http_host);
  read_int(env, "HTTP_PORT", s.http_port, 1, 65535);
  if (const auto* v = find(env, "JWT_SECRET"); v && !v->empty()) {
    if (v->size() < 32)
      throw ConfigError("JWT_SECRET", "is " + std::to_string(v->size()) +
                                          " bytes; allowed: at least 32 bytes (e.g. `openssl rand -hex 32`)");
    s.jwt_secret = *v;
  }
  if (const auto* v = find(env, "CORS_ORIGINS")) {
    s.cors_origins = split_list(*v);
    // A browser sends its Origin as scheme://host[:port], nothing after: an entry with a
    // path or a trailing slash would never match, so it is refused here.
    static const std::regex origin(R"(https?://[^/\s?#*]+)");
    for (const auto& o : s.cors_origins)
      if (o != "*" && !std::regex_match(o, origin))
        throw ConfigError("CORS_ORIGINS", "has \"" + o + "\"; allowed: * or origins such as https://tasks.example.com (scheme://host[:port], no path, no trailing slash), comma-separated");
  }
  if (const auto* v = find(env, "ADMIN_EMAILS")) {
    for (auto email : split_list(*v)) {
      std::transform(email.begin(), email.end(), email.begin(), [](unsigned char c) { return std::tolower(c); });
      const auto at = email.find('@');
      if (at == std::string::npos || at == 0 || at + 1 == email.size() || email.find_first_of(" \t") != std::string::npos)
        throw ConfigError("ADMIN_EMAILS", "'" + email + "' is not an email address; allowed: a comma-separated list of emails");
      s.admin_emails.push_back(std::move(email));
    }
  }
  read_int(env, "AUTH_RATE_LIMIT_PER_ADDRESS", s.auth_rate_limit_per_address, 0, 1'000'000);
  read_int(env, "AUTH_RATE_LIMIT_PER_ACCOUNT", s.auth_rate_limit_per_account, 0, 1'000'000);

  read_bool(env, "EMAIL_NOTIFICATIONS_ENABLED", s.email_notifications_enabled);
  read_string(env, "SMTP_HOST", s.smtp_host);
  read_int(env, "SMTP_PORT", s.smtp_port, 1, 65535);
  read_string(env, "SMTP_USERNAME", s.smtp_username, true);
  read_string(env, "SMTP_PASSWORD", s.smtp_password, true);
  read_string(env, "SMTP_FROM", s.smtp_from);
  if (s.smtp_from.find('@') == std::string::npos)
    throw ConfigError("SMTP_FROM", "'" + s.smtp_from + "' is not an email address; allowed: name@domain");
  read_bool(env, "SMTP_STARTTLS", s.smtp_starttls);
  read_int(env, "EMAIL_MAX_ATTEMPTS", s.email_max_attempts, 1, 100);
  read_int(env, "EMAIL_RETRY_INITIAL_MS", s.email_retry_initial_ms, 10, 3'600'000);
  read_int(env, "EMAIL_RETRY_MAX_MS", s.email_retry_max_ms, 10, 24LL * 3'600'000);
  if (s.email_retry_max_ms < s.email_retry_initial_ms)
    throw ConfigError("EMAIL_RETRY_MAX_MS", std::to_string(s.email_retry_max_ms) + " is below EMAIL_RETRY_INITIAL_MS (" +
                                                std::to_string(s.email_retry_initial_ms) + ")");

  read_int(env, "WS_SEND_QUEUE_MAX", s.ws_send_queue_max, 1, 1'000'000);
  read_int(env, "WS_MAX_SOCKETS_PER_USER", s.ws_max_sockets_per_user, 1, 100'000);
  read_int(env, "OUTBOX_RETENTION_HOURS", s.outbox_retention_hours, 1, 24LL * 365 * 10);
  read_int(env, "REMINDER_LEAD_SECONDS", s.reminder_lead_seconds, 0, 365LL * 24 * 3600);
  if (const auto* v = find(env, "LOG_LEVEL")) {
    auto l = lower(trim(*v));
    if (l == "warning") l = "warn";
    if (l != "trace" && l != "debug" && l != "info" && l != "warn" && l != "error" && l != "critical" && l != "off")
      throw ConfigError("LOG_LEVEL", "'" + *v + "' is unknown; allowed: trace, debug, info, warning, error, critical, off");
    s.log_level = l;
  }
  if (const auto* v = find(env, "LOG_FORMAT")) {
    auto f = lower(trim(*v));
    if (f == "text") s.log_format = LogFormat::text;
    else if (f == "json") s.log_format = LogFormat::json;
    else throw ConfigError("LOG_FORMAT", "'" + *v + "' is unknown; allowed: text, json");
  }
  return s;
}

Settings Settings::from_environment() { return load(process_env()); }

std::vector<std::pair<std::string, std::string>> Settings::describe() const {
  auto secret = [](const std::string& v) { return v.empty() ? std::string() : std::string(kMasked); };
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  std::string cors;
  for (const auto& o : cors_origins) cors += (cors.empty() ? "" : ",") + o;
  std::string admins;
  for (const auto& e : admin_emails) admins += (admins.empty() ? "" : ",") + e;
  return {
      {"KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap_servers},
      {"KAFKA_SECURITY_PROTOCOL", std::string(to_string(kafka_security_protocol))},
      {"KAFKA_SASL_MECHANISM", std::string(to_string(kafka_sasl_mechanism))},
      {"KAFKA_SASL_USERNAME", kafka_sasl_username},
      {"KAFKA_SASL_PASSWORD", secret(kafka_sasl_password)},
      {"KAFKA_SSL_CA_LOCATION", kafka_ssl_ca_location},
      {"KAFKA_TOPIC_TASK_EVENTS", kafka_topic_task_events},
      {"KAFKA_TOPIC_TASK_UPDATES", kafka_topic_task_updates},
      {"KAFKA_TOPIC_NOTIFICATION_REQUEST", kafka_topic_notification_request},
      {"KAFKA_CONSUMER_GROUP_AUDIT", kafka_consumer_group_audit},
      {"KAFKA_CONSUMER_GROUP_WEBSOCKET", kafka_consumer_group_websocket},
      {"KAFKA_CONSUMER_GROUP_NOTIFICATION", kafka_consumer_group_notification},
      {"KAFKA_ENABLED", b(kafka_enabled)},
      {"KAFKA_TOPIC_PARTITIONS", std::to_string(kafka_topic_partitions)},
      {"KAFKA_REPLICATION_FACTOR", std::to_string(kafka_replication_factor)},
      {"KAFKA_PRODUCER_LINGER_MS", std::to_string(kafka_producer_linger_ms)},
      {"KAFKA_PRODUCER_BATCH_SIZE", std::to_string(kafka_producer_batch_size)},
      {"KAFKA_PRODUCER_COMPRESSION", kafka_producer_compression},
      {"DATABASE_URL", mask_url_password(database.url)},
      {"HTTP_HOST", http_host},
      {"HTTP_PORT", std::to_string(http_port)},
      {"JWT_SECRET", jwt_secret ? std::string(kMasked) : std::string()},
      {"CORS_ORIGINS", cors},
      {"ADMIN_EMAILS", admins},
      {"AUTH_RATE_LIMIT_PER_ADDRESS", std::to_string(auth_rate_limit_per_address)},
      {"AUTH_RATE_LIMIT_PER_ACCOUNT", std::to_string(auth_rate_limit_per_account)},
      {"EMAIL_NOTIFICATIONS_ENABLED", b(email_notifications_enabled)},
      {"SMTP_HOST", smtp_host},
      {"SMTP_PORT", std::to_string(smtp_port)},
      {"SMTP_USERNAME", smtp_username},
      {"SMTP_PASSWORD", secret(smtp_password)},
      {"SMTP_FROM", smtp_from},
      {"SMTP_STARTTLS", b(smtp_starttls)},
      {"EMAIL_MAX_ATTEMPTS", std::to_string(email_max_attempts)},
      {"EMAIL_RETRY_INITIAL_MS", std::to_string(email_retry_initial_ms)},
      {"EMAIL_RETRY_MAX_MS", std::to_string(email_retry_max_ms)},
      {"WS_SEND_QUEUE_MAX", std::to_string(ws_send_queue_max)},
      {"WS_MAX_SOCKETS_PER_USER", std::to_string(ws_max_sockets_per_user)},
      {"OUTBOX_RETENTION_HOURS", std::to_string(outbox_retention_hours)},
      {"REMINDER_LEAD_SECONDS", std::to_string(reminder_lead_seconds)},
      {"LOG_LEVEL", log_level},
      {"LOG_FORMAT", log_format == LogFormat::json ? "json" : "text"},
  };
}

}  // namespace taskstream::config
