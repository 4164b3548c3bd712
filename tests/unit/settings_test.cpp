// Settings: every variable of docs/configuration.md with its default, every kind of bad value.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/settings.hpp"

using taskstream::config::ConfigError;
using taskstream::config::EnvMap;
using taskstream::config::Settings;
namespace config = taskstream::config;

namespace {

/// Expects load(env) to fail naming `variable` in the first word of its one-line message.
void expect_error(const EnvMap& env, const std::string& variable, const std::string& fragment = {}) {
  try {
    Settings::load(env);
    FAIL() << "expected ConfigError for " << variable;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.variable(), variable);
    std::string what = e.what();
    EXPECT_EQ(what.rfind(variable + ": ", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
    if (!fragment.empty()) {
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
  }
}

}  // namespace

TEST(Settings, DefaultsMatchTheSeedAndSpec) {
  auto s = Settings::load({});
  EXPECT_EQ(s.kafka_bootstrap_servers, "localhost:9092");
  EXPECT_EQ(s.kafka_security_protocol, config::SecurityProtocol::plaintext);
  EXPECT_EQ(s.kafka_sasl_mechanism, config::SaslMechanism::none);
  EXPECT_EQ(s.kafka_sasl_username, "");
  EXPECT_EQ(s.kafka_sasl_password, "");
  EXPECT_EQ(s.kafka_ssl_ca_location, "");
  EXPECT_EQ(s.kafka_topic_task_events, "task-events");
  EXPECT_EQ(s.kafka_topic_task_updates, "task-updates");
  EXPECT_EQ(s.kafka_topic_notification_request, "notification.request");
  EXPECT_EQ(s.kafka_consumer_group_audit, "audit-service");
  EXPECT_EQ(s.kafka_consumer_group_websocket, "websocket-service");
  EXPECT_EQ(s.kafka_consumer_group_notification, "notification-service");
  EXPECT_TRUE(s.kafka_enabled);
  EXPECT_EQ(s.kafka_topic_partitions, 6);
  EXPECT_EQ(s.kafka_replication_factor, 1);
  EXPECT_EQ(s.database.kind, config::DatabaseKind::sqlite);
  EXPECT_EQ(s.database.url, "sqlite:///taskstream.db");
  EXPECT_EQ(s.database.path, "taskstream.db");
  EXPECT_EQ(s.http_host, "127.0.0.1");
  EXPECT_EQ(s.http_port, 8000);
  EXPECT_FALSE(s.jwt_secret.has_value());
  EXPECT_TRUE(s.email_notifications_enabled);
  EXPECT_EQ(s.smtp_host, "localhost");
  EXPECT_EQ(s.smtp_port, 25);
  EXPECT_FALSE(s.smtp_starttls);
  EXPECT_EQ(s.reminder_lead_seconds, 3600);
  EXPECT_EQ(s.log_level, "info");
  EXPECT_EQ(s.log_format, config::LogFormat::text);
  EXPECT_FALSE(s.kafka_embedded());
}

TEST(Settings, EveryStringVariableIsRead) {
  EnvMap env{{"KAFKA_BOOTSTRAP_SERVERS", "a:1,b:2"},
             {"KAFKA_TOPIC_TASK_EVENTS", "te"},
             {"KAFKA_TOPIC_TASK_UPDATES", "tu"},
             {"KAFKA_TOPIC_NOTIFICATION_REQUEST", "nr"},
             {"KAFKA_CONSUMER_GROUP_AUDIT", "ga"},
             {"KAFKA_CONSUMER_GROUP_WEBSOCKET", "gw"},
             {"KAFKA_CONSUMER_GROUP_NOTIFICATION", "gn"},
             {"HTTP_HOST", "0.0.0.0"},
             {"SMTP_HOST", "mail"},
             {"SMTP_USERNAME", "u"},
             {"SMTP_PASSWORD", "p"},
             {"SMTP_FROM", "x@y.z"},
             {"CORS_ORIGINS", "http://a, http://b"}};
  auto s = Settings::load(env);
  EXPECT_EQ(s.kafka_bootstrap_servers, "a:1,b:2");
  EXPECT_EQ(s.kafka_topic_task_events, "te");
  EXPECT_EQ(s.kafka_topic_task_updates, "tu");
  EXPECT_EQ(s.kafka_topic_notification_request, "nr");
  EXPECT_EQ(s.kafka_consumer_group_audit, "ga");
  EXPECT_EQ(s.kafka_consumer_group_websocket, "gw");
  EXPECT_EQ(s.kafka_consumer_group_notification, "gn");
  EXPECT_EQ(s.http_host, "0.0.0.0");
  EXPECT_EQ(s.smtp_host, "mail");
  EXPECT_EQ(s.smtp_username, "u");
  EXPECT_EQ(s.smtp_password, "p");
  EXPECT_EQ(s.smtp_from, "x@y.z");
  EXPECT_EQ(s.cors_origins, (std::vector<std::string>{"http://a", "http://b"}));
}

TEST(Settings, NumbersAndBooleans) {
  auto s = Settings::load({{"KAFKA_TOPIC_PARTITIONS", "12"},
                           {"KAFKA_REPLICATION_FACTOR", "3"},
                           {"HTTP_PORT", "8080"},
                           {"SMTP_PORT", "2525"},
                           {"REMINDER_LEAD_SECONDS", "60"},
                           {"KAFKA_ENABLED", "false"},
                           {"EMAIL_NOTIFICATIONS_ENABLED", "0"},
                           {"SMTP_STARTTLS", "yes"}});
  EXPECT_EQ(s.kafka_topic_partitions, 12);
  EXPECT_EQ(s.kafka_replication_factor, 3);
  EXPECT_EQ(s.http_port, 8080);
  EXPECT_EQ(s.smtp_port, 2525);
  EXPECT_EQ(s.reminder_lead_seconds, 60);
  EXPECT_FALSE(s.kafka_enabled);
  EXPECT_FALSE(s.email_notifications_enabled);
  EXPECT_TRUE(s.smtp_starttls);
  EXPECT_TRUE(Settings::load({{"KAFKA_ENABLED", "TRUE"}}).kafka_enabled);
}

TEST(Settings, BadNumbers) {
  expect_error({{"HTTP_PORT", "80a"}}, "HTTP_PORT", "not a whole number");
  expect_error({{"HTTP_PORT", "0"}}, "HTTP_PORT", "1..65535");
  expect_error({{"HTTP_PORT", "70000"}}, "HTTP_PORT", "out of range");
  expect_error({{"SMTP_PORT", "smtp"}}, "SMTP_PORT");
  expect_error({{"KAFKA_TOPIC_PARTITIONS", "0"}}, "KAFKA_TOPIC_PARTITIONS");
  expect_error({{"KAFKA_TOPIC_PARTITIONS", ""}}, "KAFKA_TOPIC_PARTITIONS");
  expect_error({{"KAFKA_REPLICATION_FACTOR", "-1"}}, "KAFKA_REPLICATION_FACTOR");
  expect_error({{"REMINDER_LEAD_SECONDS", "1.5"}}, "REMINDER_LEAD_SECONDS");
  expect_error({{"KAFKA_PRODUCER_LINGER_MS", "-5"}}, "KAFKA_PRODUCER_LINGER_MS");
}

TEST(Settings, AdminEmailsAreAListOfEmailsInLowerCase) {
  EXPECT_TRUE(Settings::load({}).admin_emails.empty());
  auto s = Settings::load({{"ADMIN_EMAILS", " Ops@Example.com, ,second@example.org "}});
  EXPECT_EQ(s.admin_emails, (std::vector<std::string>{"ops@example.com", "second@example.org"}));
  bool listed = false;
  for (const auto& [k, v] : s.describe())
    if (k == "ADMIN_EMAILS") listed = v == "ops@example.com,second@example.org";
  EXPECT_TRUE(listed);
  expect_error({{"ADMIN_EMAILS", "ops@example.com,root"}}, "ADMIN_EMAILS", "'root' is not an email address");
  expect_error({{"ADMIN_EMAILS", "@example.com"}}, "ADMIN_EMAILS");
}

TEST(Settings, BadBooleans) {
  expect_error({{"KAFKA_ENABLED", "maybe"}}, "KAFKA_ENABLED", "allowed: true, false");
  expect_error({{"EMAIL_NOTIFICATIONS_ENABLED", "2"}}, "EMAIL_NOTIFICATIONS_ENABLED");
  expect_error({{"SMTP_STARTTLS", "sometimes"}}, "SMTP_STARTTLS");
}

TEST(Settings, SecurityProtocolAndSasl) {
  auto s = Settings::load({{"KAFKA_SECURITY_PROTOCOL", "sasl_ssl"},
                           {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"},
                           {"KAFKA_SASL_USERNAME", "u"},
                           {"KAFKA_SASL_PASSWORD", "pw"}});
  EXPECT_EQ(s.kafka_security_protocol, config::SecurityProtocol::sasl_ssl);
  EXPECT_EQ(s.kafka_sasl_mechanism, config::SaslMechanism::scram_sha_512);
  EXPECT_EQ(Settings::load({{"KAFKA_SECURITY_PROTOCOL", "SSL"}}).kafka_security_protocol, config::SecurityProtocol::ssl);
  EXPECT_EQ(Settings::load({{"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"}, {"KAFKA_SASL_MECHANISM", "PLAIN"}, {"KAFKA_SASL_USERNAME", "u"}})
                .kafka_sasl_mechanism,
            config::SaslMechanism::plain);
  EXPECT_EQ(Settings::load({{"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"}, {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"}, {"KAFKA_SASL_USERNAME", "u"}})
                .kafka_sasl_mechanism,
            config::SaslMechanism::scram_sha_256);
  expect_error({{"KAFKA_SECURITY_PROTOCOL", "TLS"}}, "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL");
  expect_error({{"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"}, {"KAFKA_SASL_MECHANISM", "GSSAPI"}}, "KAFKA_SASL_MECHANISM",
               "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512");
  expect_error({{"KAFKA_SASL_MECHANISM", "PLAIN"}, {"KAFKA_SASL_USERNAME", "u"}}, "KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT");
  expect_error({{"KAFKA_SECURITY_PROTOCOL", "SASL_SSL"}}, "KAFKA_SASL_MECHANISM", "must be set");
  expect_error({{"KAFKA_SECURITY_PROTOCOL", "SASL_SSL"}, {"KAFKA_SASL_MECHANISM", "PLAIN"}}, "KAFKA_SASL_USERNAME");
}

TEST(Settings, SslCaLocationMustExist) {
  auto path = std::filesystem::temp_directory_path() / "taskstream-ca-test.pem";
  std::ofstream(path) << "x";
  EXPECT_EQ(Settings::load({{"KAFKA_SSL_CA_LOCATION", path.string()}}).kafka_ssl_ca_location, path.string());
  std::filesystem::remove(path);
  expect_error({{"KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem"}}, "KAFKA_SSL_CA_LOCATION", "does not exist");
}

TEST(Settings, TopicNames) {
  expect_error({{"KAFKA_TOPIC_TASK_EVENTS", "bad topic"}}, "KAFKA_TOPIC_TASK_EVENTS", "legal topic name");
  expect_error({{"KAFKA_TOPIC_TASK_UPDATES", ".."}}, "KAFKA_TOPIC_TASK_UPDATES");
  expect_error({{"KAFKA_TOPIC_NOTIFICATION_REQUEST", std::string(250, 'a')}}, "KAFKA_TOPIC_NOTIFICATION_REQUEST");
  expect_error({{"KAFKA_CONSUMER_GROUP_AUDIT", ""}}, "KAFKA_CONSUMER_GROUP_AUDIT", "must not be empty");
  expect_error({{"KAFKA_BOOTSTRAP_SERVERS", ""}}, "KAFKA_BOOTSTRAP_SERVERS");
}

TEST(Settings, DatabaseUrl) {
  auto s = Settings::load({{"DATABASE_URL", "sqlite:////var/lib/ts.db"}});
  EXPECT_EQ(s.database.kind, config::DatabaseKind::sqlite);
  EXPECT_EQ(s.database.path, "/var/lib/ts.db");
  auto pg = Settings::load({{"DATABASE_URL", "postgresql://user:pw@127.0.0.1:5432/taskstream"}});
  EXPECT_EQ(pg.database.kind, config::DatabaseKind::postgresql);
  EXPECT_EQ(Settings::load({{"DATABASE_URL", "postgres://h/db"}}).database.kind, config::DatabaseKind::postgresql);
  expect_error({{"DATABASE_URL", "mysql://x/y"}}, "DATABASE_URL", "allowed:");
  expect_error({{"DATABASE_URL", "sqlite:///"}}, "DATABASE_URL", "no file path");
  expect_error({{"DATABASE_URL", "postgresql://u:pw@host:port/db"}}, "DATABASE_URL");
  expect_error({{"DATABASE_URL", "postgresql://u:pw@host:5432"}}, "DATABASE_URL", "no database name");
}

TEST(Settings, DatabaseUrlErrorsHideThePassword) {
  try {
    Settings::load({{"DATABASE_URL", "mysql://user:hunter2@host/db"}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
}

TEST(Settings, JwtSecret) {
  expect_error({{"JWT_SECRET", "short"}}, "JWT_SECRET", "at least 32 bytes");
  EXPECT_EQ(Settings::load({{"JWT_SECRET", std::string(32, 'k')}}).jwt_secret, std::string(32, 'k'));
  EXPECT_FALSE(Settings::load({{"JWT_SECRET", ""}}).jwt_secret.has_value());
}

TEST(Settings, SmtpFrom) { expect_error({{"SMTP_FROM", "nobody"}}, "SMTP_FROM", "email address"); }

TEST(Settings, LogLevelAndFormat) {
  EXPECT_EQ(Settings::load({{"LOG_LEVEL", "DEBUG"}}).log_level, "debug");
  EXPECT_EQ(Settings::load({{"LOG_LEVEL", "warning"}}).log_level, "warn");
  EXPECT_EQ(Settings::load({{"LOG_FORMAT", "json"}}).log_format, config::LogFormat::json);
  expect_error({{"LOG_LEVEL", "loud"}}, "LOG_LEVEL", "allowed:");
  expect_error({{"LOG_FORMAT", "xml"}}, "LOG_FORMAT", "text, json");
}

TEST(Settings, ProducerTuning) {
  auto s = Settings::load({{"KAFKA_PRODUCER_LINGER_MS", "20"}, {"KAFKA_PRODUCER_BATCH_SIZE", "65536"}, {"KAFKA_PRODUCER_COMPRESSION", "LZ4"}});
  EXPECT_EQ(s.kafka_producer_linger_ms, 20);
  EXPECT_EQ(s.kafka_producer_batch_size, 65536);
  EXPECT_EQ(s.kafka_producer_compression, "lz4");
  expect_error({{"KAFKA_PRODUCER_COMPRESSION", "brotli"}}, "KAFKA_PRODUCER_COMPRESSION");
}

TEST(Settings, EmbeddedBootstrap) { EXPECT_TRUE(Settings::load({{"KAFKA_BOOTSTRAP_SERVERS", "embedded"}}).kafka_embedded()); }

TEST(Settings, DescribeMasksEverySecret) {
  auto s = Settings::load({{"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"},
                           {"KAFKA_SASL_MECHANISM", "PLAIN"},
                           {"KAFKA_SASL_USERNAME", "alice"},
                           {"KAFKA_SASL_PASSWORD", "kafka-pw-123"},
                           {"JWT_SECRET", "jwt-secret-jwt-secret-jwt-secret-xx"},
                           {"SMTP_PASSWORD", "smtp-pw-456"},
                           {"DATABASE_URL", "postgresql://u:db-pw-789@h:5432/d"}});
  std::string all;
  for (const auto& [k, v] : s.describe()) all += k + "=" + v + "\n";
  for (const char* secret : {"kafka-pw-123", "jwt-secret", "smtp-pw-456", "db-pw-789"})
    EXPECT_EQ(all.find(secret), std::string::npos) << secret << " leaked:\n" << all;
  EXPECT_NE(all.find("KAFKA_SASL_USERNAME=alice"), std::string::npos);
  EXPECT_NE(all.find("DATABASE_URL=postgresql://u:******@h:5432/d"), std::string::npos) << all;
  EXPECT_NE(all.find("JWT_SECRET=******"), std::string::npos);
}

TEST(Settings, DescribeListsEveryVariable) {
  auto d = Settings::load({}).describe();
  for (const char* name : {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
                           "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_LOCATION", "KAFKA_TOPIC_TASK_EVENTS", "KAFKA_TOPIC_TASK_UPDATES",
                           "KAFKA_TOPIC_NOTIFICATION_REQUEST", "KAFKA_CONSUMER_GROUP_AUDIT", "KAFKA_CONSUMER_GROUP_WEBSOCKET",
                           "KAFKA_CONSUMER_GROUP_NOTIFICATION", "KAFKA_ENABLED", "KAFKA_TOPIC_PARTITIONS", "KAFKA_REPLICATION_FACTOR",
                           "DATABASE_URL", "HTTP_HOST", "HTTP_PORT", "JWT_SECRET", "EMAIL_NOTIFICATIONS_ENABLED", "SMTP_HOST",
                           "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS", "REMINDER_LEAD_SECONDS",
                           "LOG_LEVEL", "LOG_FORMAT"}) {
    EXPECT_TRUE(std::any_of(d.begin(), d.end(), [&](auto& kv) { return kv.first == name; })) << name;
  }
}

TEST(Dotenv, ParsesCommentsQuotesAndExport) {
  auto env = config::parse_dotenv("# comment\n\nexport KAFKA_ENABLED=false\nA=\"quoted value\"\nB='single'\nC=plain # trailing\n");
  EXPECT_EQ(env.at("KAFKA_ENABLED"), "false");
  EXPECT_EQ(env.at("A"), "quoted value");
  EXPECT_EQ(env.at("B"), "single");
  EXPECT_EQ(env.at("C"), "plain");
}

TEST(Dotenv, MalformedLineNamesFileAndLine) {
  try {
    config::parse_dotenv("A=1\nnot a pair\n", "/x/.env");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.variable(), "/x/.env:2");
  }
}

TEST(Dotenv, EnvironmentWinsOverFile) {
  auto dir = std::filesystem::temp_directory_path() / "taskstream-dotenv-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / ".env") << "TASKSTREAM_TEST_ONLY_IN_FILE=file\nTASKSTREAM_TEST_BOTH=file\n";
  setenv("TASKSTREAM_TEST_BOTH", "env", 1);
  auto env = config::process_env(dir / ".env");
  EXPECT_EQ(env.at("TASKSTREAM_TEST_ONLY_IN_FILE"), "file");
  EXPECT_EQ(env.at("TASKSTREAM_TEST_BOTH"), "env");
  unsetenv("TASKSTREAM_TEST_BOTH");
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(config::read_dotenv_file("/nonexistent/.env").empty());
}

TEST(Settings, CorsOriginsAreOriginsOrStar) {
  EXPECT_EQ(Settings::load({{"CORS_ORIGINS", "*"}}).cors_origins, (std::vector<std::string>{"*"}));
  EXPECT_EQ(Settings::load({{"CORS_ORIGINS", "https://tasks.example.com,http://localhost:5173"}}).cors_origins,
            (std::vector<std::string>{"https://tasks.example.com", "http://localhost:5173"}));
  expect_error({{"CORS_ORIGINS", "https://tasks.example.com/"}}, "CORS_ORIGINS", "no trailing slash");
  expect_error({{"CORS_ORIGINS", "tasks.example.com"}}, "CORS_ORIGINS", "tasks.example.com");
  expect_error({{"CORS_ORIGINS", "https://a.example.com/app"}}, "CORS_ORIGINS");
  expect_error({{"CORS_ORIGINS", "https://*.example.com"}}, "CORS_ORIGINS");
}
