#include "kafka/redrive.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <future>
#include <map>
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
                      const std::function<void(const RedriveResult&)>& progress, std::chrono::milliseconds idle,
                      const std::function<void(const Message&)>& on_match) {
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
      if (on_match) on_match(m);
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

DeadLetter DeadLetter::from(const Message& m) {
  DeadLetter d{m.partition(), m.offset(), m.timestamp_ms(), std::string(m.key()), std::string(m.payload()), {}};
  for (const auto& [k, v] : m.headers()) d.headers.emplace_back(k, v);
  return d;
}

DeadLetterPage read_dead_letters(const config::Settings& settings, const std::string& topic, const DeadLetterFilter& filter, std::size_t limit,
                                 std::chrono::milliseconds timeout) {
  const std::string dlq = dlq_topic(topic);
  Admin admin(settings);
  const auto info = admin.describe_topic(dlq, timeout);
  const auto ends = admin.end_offsets({info}, timeout);
  DeadLetterPage page;
  std::map<std::int32_t, std::int64_t> todo;  // partition -> end offset still to reach
  for (const auto& [tp, end] : ends)
    if (end > 0) todo[tp.second] = end;
  if (todo.empty()) return page;
  // Assigned, not subscribed: no group membership, nothing committed.
  ConsumerProperties cp{"taskstream-dlq-reader", "taskstream-dlq-reader", {{"enable.auto.commit", "false"}, {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "true"}}};
  auto rk = impl::make_client(RD_KAFKA_CONSUMER, consumer_properties(settings, resolve_bootstrap(settings), cp));
  rd_kafka_poll_set_consumer(rk.get());
  auto* parts = rd_kafka_topic_partition_list_new(static_cast<int>(todo.size()));
  for (const auto& [p, end] : todo) rd_kafka_topic_partition_list_add(parts, dlq.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  auto err = rd_kafka_assign(rk.get(), parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (err) throw KafkaException(impl::make_error(err, "assign " + dlq));
  std::deque<DeadLetter> kept;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!todo.empty()) {
    if (std::chrono::steady_clock::now() > deadline) {
      rd_kafka_consumer_close(rk.get());
      throw KafkaException(Error(errc::timed_out, "reading " + dlq + " timed out"));
    }
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(rk.get(), 200);
    if (!raw) continue;
    if (raw->err) {
      auto e = impl::make_error(raw->err, "read " + dlq);
      const bool eof = raw->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
      const auto partition = raw->partition;
      rd_kafka_message_destroy(raw);
      if (eof) todo.erase(partition);  // compacted or deleted past the end seen
      else if (!e.is_retriable()) {
        rd_kafka_consumer_close(rk.get());
        throw KafkaException(e);
      }
      continue;
    }
    Message m(raw);
    auto it = todo.find(m.partition());
    if (it == todo.end() || m.offset() >= it->second) continue;  // written after the call began
    if (m.offset() + 1 >= it->second) todo.erase(it);
    ++page.total;
    if (!filter.matches(m)) continue;
    ++page.matched;
    kept.push_back(DeadLetter::from(m));
    if (kept.size() > limit) kept.pop_front();
  }
  rd_kafka_consumer_close(rk.get());
  page.letters.assign(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
  // Oldest first across partitions, by the time each was dead-lettered.
  std::stable_sort(page.letters.begin(), page.letters.end(), [](const DeadLetter& a, const DeadLetter& b) { return a.timestamp_ms < b.timestamp_ms; });
  return page;
}

}  // namespace taskstream::kafka
