#include "kafka/redrive.hpp"

#include <spdlog/spdlog.h>

#include <future>
#include <stdexcept>

#include "kafka/admin.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/impl/client.hpp"
#include "kafka/producer.hpp"

namespace taskstream::kafka {

DeadLetterFilter::DeadLetterFilter(const std::string& expression) {
  if (expression.empty()) return;
  auto eq = expression.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument("--filter takes FIELD=VALUE, e.g. reason=bad_json, key=user-1 or a header name");
  field_ = expression.substr(0, eq);
  value_ = expression.substr(eq + 1);
}

bool DeadLetterFilter::matches(const Message& m) const {
  if (field_.empty()) return true;
  if (field_ == "key") return m.key() == value_;
  // Short names for the dlq.* headers: reason, error_class, source_partition...
  auto h = m.header(field_);
  if (!h) h = m.header("dlq." + field_);
  return h && *h == value_;
}

RedriveResult redrive(const config::Settings& settings, const std::string& topic, const DeadLetterFilter& filter, bool dry_run,
                      const std::function<void(const RedriveResult&)>& progress, std::chrono::milliseconds idle) {
  const std::string dlq = dlq_topic(topic);
  Admin(settings).describe_topic(dlq);  // a clear error for a missing topic
  // One position per topic and filter: redriving reason A first does not hide reason B's
  // dead letters from a later redrive of B.
  ConsumerProperties cp{"taskstream-redrive." + dlq + (filter.expression().empty() ? "" : "." + filter.expression()), "taskstream-redrive",
                        {{"enable.auto.commit", "false"}}};
  auto rk = impl::make_client(RD_KAFKA_CONSUMER, consumer_properties(settings, resolve_bootstrap(settings), cp));
  rd_kafka_poll_set_consumer(rk.get());
  auto* subscription = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subscription, dlq.c_str(), RD_KAFKA_PARTITION_UA);
  auto err = rd_kafka_subscribe(rk.get(), subscription);
  rd_kafka_topic_partition_list_destroy(subscription);
  if (err) throw KafkaException(impl::make_error(err, "subscribe " + dlq));

  std::unique_ptr<Producer> producer;
  if (!dry_run) producer = std::make_unique<Producer>(settings);
  RedriveResult r;
  std::vector<std::future<DeliveryResult>> pending;
  // Commits what was consumed once every copy sent so far is acknowledged.
  auto checkpoint = [&] {
    for (auto& f : pending) {
      auto d = f.get();
      if (!d.ok()) throw KafkaException(d.error);
    }
    pending.clear();
    if (!dry_run) rd_kafka_commit(rk.get(), nullptr, 0);
  };
  auto last = std::chrono::steady_clock::now();
  bool assigned = false;
  while (std::chrono::steady_clock::now() - last < idle || !assigned) {
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(rk.get(), 200);
    if (!assigned) {
      rd_kafka_topic_partition_list_t* parts = nullptr;
      if (rd_kafka_assignment(rk.get(), &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
        assigned = parts->cnt > 0;
        rd_kafka_topic_partition_list_destroy(parts);
      }
      if (assigned) last = std::chrono::steady_clock::now();
      if (std::chrono::steady_clock::now() - last > std::chrono::seconds(30)) break;  // never assigned
    }
    if (!raw) continue;
    if (raw->err) {
      auto e = impl::make_error(raw->err, "redrive " + dlq);
      rd_kafka_message_destroy(raw);
      if (!e.is_retriable()) throw KafkaException(e);
      continue;
    }
    Message m(raw);
    last = std::chrono::steady_clock::now();
    ++r.seen;
    if (filter.matches(m)) {
      ++r.matched;
      if (!dry_run) {
        OutgoingMessage out;
        out.topic = std::string(m.header("dlq.source_topic").value_or(topic));
        out.key = std::string(m.key());
        out.payload = std::string(m.payload());
        for (const auto& [k, v] : m.headers())
          if (k.substr(0, 4) != "dlq.") out.headers.push_back({std::string(k), std::string(v)});
        out.headers.push_back({kRedrivenFromHeader, dlq + "@" + std::to_string(m.partition()) + ":" + std::to_string(m.offset())});
        pending.push_back(producer->send(std::move(out)));
        ++r.sent;
      }
    }
    if (!dry_run) {
      // Stored now, committed at the next checkpoint, after the copies are acknowledged.
      auto* one = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(one, dlq.c_str(), m.partition())->offset = m.offset() + 1;
      rd_kafka_offsets_store(rk.get(), one);
      rd_kafka_topic_partition_list_destroy(one);
    }
    if (r.seen % 1000 == 0) {
      checkpoint();
      if (progress) progress(r);
    }
  }
  checkpoint();
  rd_kafka_consumer_close(rk.get());
  return r;
}

}  // namespace taskstream::kafka
