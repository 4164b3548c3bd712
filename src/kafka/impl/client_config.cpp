#include "kafka/client_config.hpp"

#include <algorithm>
#include <cctype>

#include "kafka/embedded_cluster.hpp"

namespace taskstream::kafka {

std::string resolve_bootstrap(const config::Settings& s) {
  return s.kafka_embedded() ? embedded::bootstrap() : s.kafka_bootstrap_servers;
}

std::string find_property(const Properties& props, std::string_view key) {
  for (auto it = props.rbegin(); it != props.rend(); ++it)
    if (it->first == key) return it->second;
  return {};
}

Properties common_properties(const config::Settings& s, const std::string& bootstrap) {
  std::string protocol(config::to_string(s.kafka_security_protocol));
  std::transform(protocol.begin(), protocol.end(), protocol.begin(), [](unsigned char c) { return std::tolower(c); });
  Properties p{
      {"bootstrap.servers", bootstrap},
      {"security.protocol", protocol},
      // Fail over between brokers quickly on loopback and in small clusters.
      {"reconnect.backoff.max.ms", "2000"},
      {"socket.keepalive.enable", "true"},
  };
  if (s.kafka_sasl_mechanism != config::SaslMechanism::none) {
    p.emplace_back("sasl.mechanisms", std::string(config::to_string(s.kafka_sasl_mechanism)));
    p.emplace_back("sasl.username", s.kafka_sasl_username);
    p.emplace_back("sasl.password", s.kafka_sasl_password);
  }
  if (!s.kafka_ssl_ca_location.empty()) p.emplace_back("ssl.ca.location", s.kafka_ssl_ca_location);
  if (s.kafka_security_protocol == config::SecurityProtocol::ssl || s.kafka_security_protocol == config::SecurityProtocol::sasl_ssl)
    // librdkafka's default since 2.0, stated so it cannot silently change: the broker's
    // certificate must name the host in bootstrap.servers / the advertised listener.
    p.emplace_back("ssl.endpoint.identification.algorithm", "https");
  return p;
}

Properties producer_properties(const config::Settings& s, const std::string& bootstrap, const ProducerOptions& o) {
  Properties p = common_properties(s, bootstrap);
  p.insert(p.end(), {
                        {"client.id", o.client_id},
                        // No duplicates and no reordering on retry: the guarantees of docs/guarantees.md.
                        {"enable.idempotence", "true"},
                        {"acks", "all"},
                        {"max.in.flight.requests.per.connection", "5"},
                        {"linger.ms", std::to_string(s.kafka_producer_linger_ms)},
                        {"batch.size", std::to_string(s.kafka_producer_batch_size)},
                        {"compression.type", s.kafka_producer_compression},
                        {"message.timeout.ms", std::to_string(o.delivery_timeout.count())},
                        // The same partitioner as the Java client and aiokafka, so a user's
                        // key lands on the same partition whoever produces it.
                        {"partitioner", "murmur2_random"},
                    });
  if (o.gapless) p.emplace_back("enable.gapless.guarantee", "true");
  p.insert(p.end(), o.extra.begin(), o.extra.end());
  return p;
}

Properties consumer_properties(const config::Settings& s, const std::string& bootstrap, const ConsumerProperties& o) {
  Properties p = common_properties(s, bootstrap);
  p.insert(p.end(), {
                        {"client.id", o.client_id},
                        {"group.id", o.group_id},
                        // A new group reads the whole topic: nothing published before it joined is missed.
                        {"auto.offset.reset", "earliest"},
                        // Offsets are stored only after a message's effect is committed; the stored
                        // ones are committed in the background every second and on revoke and stop.
                        {"enable.auto.offset.store", "false"},
                        {"enable.auto.commit", "true"},
                        {"auto.commit.interval.ms", "1000"},
                        {"enable.partition.eof", "false"},
                        {"session.timeout.ms", "10000"},
                        {"heartbeat.interval.ms", "2000"},
                        {"isolation.level", "read_committed"},
                    });
  p.insert(p.end(), o.extra.begin(), o.extra.end());
  return p;
}

}  // namespace taskstream::kafka
