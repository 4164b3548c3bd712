#include "kafka/impl/consumer_client.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <thread>

namespace taskstream::kafka::impl {
namespace {

struct TopparList {
  rd_kafka_topic_partition_list_t* list;
  explicit TopparList(int size) : list(rd_kafka_topic_partition_list_new(size)) {}
  ~TopparList() { rd_kafka_topic_partition_list_destroy(list); }
  TopparList(const TopparList&) = delete;
  TopparList& operator=(const TopparList&) = delete;
};

}  // namespace

ConsumerClient::ConsumerClient(const ConsumerOptions& options, const std::atomic<bool>& stopping, Owner& owner)
    : opt_(options), stopping_(stopping), owner_(owner) {}

Handle ConsumerClient::make_handle() {
  return make_client(
      RD_KAFKA_CONSUMER, props_,
      [this](rd_kafka_conf_t* conf) {
        rd_kafka_conf_set_rebalance_cb(conf, &ConsumerClient::rebalance_cb);
        if (opt_.stats_interval.count() > 0) rd_kafka_conf_set_stats_cb(conf, &ConsumerClient::stats_cb);
      },
      this);
}

void ConsumerClient::open(Properties props) {
  props_ = std::move(props);
  rejoin_wait_ = opt_.rejoin_after;
  closed_ = false;
  rk_ = make_handle();
}

void ConsumerClient::subscribe() {
  rd_kafka_poll_set_consumer(rk_.get());
  TopparList topics(static_cast<int>(opt_.topics.size()));
  for (const auto& t : opt_.topics) rd_kafka_topic_partition_list_add(topics.list, t.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(rk_.get(), topics.list)) throw KafkaException(make_error(err, "subscribe"));
  in_group_ = false;
  out_of_group_since_ = Clock::now();
}

void ConsumerClient::replace_if_wedged() {
  if (in_group_ || Clock::now() - out_of_group_since_ < rejoin_wait_) return;
  spdlog::warn("consumer {}: out of the group for {} ms; replacing the Kafka client", opt_.group_id,
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - out_of_group_since_).count());
  Handle fresh;
  try {
    fresh = make_handle();
  } catch (const std::exception& e) {
    spdlog::error("consumer {}: building a new client: {}", opt_.group_id, e.what());
    out_of_group_since_ = Clock::now();
    return;
  }
  owner_.on_replace();  // messages of the old client go before it
  destroy_without_close(std::exchange(rk_, std::move(fresh)));
  rejoin_wait_ = std::min<std::chrono::milliseconds>(rejoin_wait_ * 2, std::chrono::minutes(10));
  try {
    subscribe();
  } catch (const std::exception& e) {
    spdlog::error("consumer {}: {}", opt_.group_id, e.what());
    out_of_group_since_ = Clock::now();
  }
  restarts_++;
}

void ConsumerClient::gather(std::vector<Message>& out) {
  const auto timeout = static_cast<int>(opt_.batch_wait.count());
  while (out.size() < opt_.max_batch && !stopping_.load()) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), out.empty() ? timeout : 0);
    if (!m) break;
    if (m->err) {
      log_consumer_error(m);
      rd_kafka_message_destroy(m);
      continue;
    }
    out.emplace_back(m);
  }
}

void ConsumerClient::poll_once(std::vector<Message>& out) {
  rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), 0);
  if (!m) return;
  if (m->err) {
    log_consumer_error(m);
    rd_kafka_message_destroy(m);
  } else {
    out.emplace_back(m);
  }
}

void ConsumerClient::log_consumer_error(const rd_kafka_message_t* m) const {
  auto e = make_error(m->err, m->rkt ? std::string("consume ") + rd_kafka_topic_name(m->rkt) : "consume");
  if (e.is_retriable()) spdlog::warn("consumer {}: {}", opt_.group_id, e.to_string());
  else spdlog::error("consumer {}: {}", opt_.group_id, e.to_string());
}

void ConsumerClient::set_paused(bool pause) {
  rd_kafka_topic_partition_list_t* parts = nullptr;
  if (rd_kafka_assignment(rk_.get(), &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
  if (pause) rd_kafka_pause_partitions(rk_.get(), parts);
  else rd_kafka_resume_partitions(rk_.get(), parts);
  rd_kafka_topic_partition_list_destroy(parts);
}

void ConsumerClient::store_offsets(std::span<const Message> msgs) {
  std::map<std::pair<std::string_view, std::int32_t>, std::int64_t> next;
  for (const auto& m : msgs) {
    auto& o = next[{m.topic(), m.partition()}];
    o = std::max(o, m.offset() + 1);
  }
  TopparList list(static_cast<int>(next.size()));
  for (const auto& [tp, off] : next) {
    std::string topic(tp.first);
    rd_kafka_topic_partition_list_add(list.list, topic.c_str(), tp.second)->offset = off;
  }
  // A partition revoked meanwhile fails to store; its new owner reads it again.
  if (auto err = rd_kafka_offsets_store(rk_.get(), list.list); err && err != RD_KAFKA_RESP_ERR__STATE)
    spdlog::warn("consumer {}: storing offsets: {}", opt_.group_id, rd_kafka_err2str(err));
}

/// Explicit end offsets for parts (see ConsumerOptions::start_at_end). A fresh topic may
/// answer "not leader" for a while: retry for up to 15 s; a partition whose end still
/// cannot be read keeps the logical OFFSET_END (and a warning says so).
void ConsumerClient::resolve_ends(rd_kafka_t* handle, rd_kafka_topic_partition_list_t* parts) {
  const auto until = Clock::now() + std::chrono::seconds(15);
  for (int i = 0; i < parts->cnt; ++i) {
    auto& p = parts->elems[i];
    for (;;) {
      std::int64_t low = 0, high = 0;
      auto err = rd_kafka_query_watermark_offsets(handle, p.topic, p.partition, &low, &high, 5000);
      if (!err) {
        p.offset = high;
        break;
      }
      if (Clock::now() >= until || stopping_.load()) {
        spdlog::warn("consumer {}: end of {}[{}]: {}; starting at its end when known", opt_.group_id, p.topic, p.partition,
                     rd_kafka_err2str(err));
        p.offset = RD_KAFKA_OFFSET_END;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

void ConsumerClient::rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<ConsumerClient*>(callback_owner(opaque))->on_rebalance(rk, err, parts);
}

void ConsumerClient::on_rebalance(rd_kafka_t* handle, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  rebalances_++;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("consumer {}: assigned {} partition(s)", opt_.group_id, parts->cnt);
    if (opt_.start_at_end) resolve_ends(handle, parts);
    rd_kafka_assign(handle, parts);
    assigned_ = static_cast<std::size_t>(parts->cnt);
    in_group_ = true;
    rejoin_wait_ = opt_.rejoin_after;
    owner_.on_assigned();
    return;
  }
  // Revoke (eager protocol: everything). The owner lets the batch in hand finish, so what it
  // handled is committed here before another member takes over.
  spdlog::info("consumer {}: revoking {} partition(s)", opt_.group_id, parts ? parts->cnt : 0);
  owner_.on_revoke();
  if (auto e = rd_kafka_commit(handle, nullptr, 0); e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
    spdlog::warn("consumer {}: commit on revoke: {}", opt_.group_id, rd_kafka_err2str(e));
  rd_kafka_assign(handle, nullptr);
  owner_.on_lags({});
  assigned_ = 0;
  in_group_ = false;
  out_of_group_since_ = Clock::now();
  owner_.on_revoked();
}

int ConsumerClient::stats_cb(rd_kafka_t*, char* json, std::size_t len, void* opaque) {
  static_cast<ConsumerClient*>(callback_owner(opaque))->on_stats(std::string_view(json, len));
  return 0;  // librdkafka frees json
}

/// Reads the lag of each partition being fetched from librdkafka's statistics.
void ConsumerClient::on_stats(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("topics")) return;
  Lags lags;
  for (const auto& [topic, t] : j["topics"].items()) {
    if (!t.contains("partitions")) continue;
    for (const auto& [id, p] : t["partitions"].items()) {
      const auto partition = p.value("partition", -1);
      const auto state = p.value("fetch_state", std::string("none"));
      if (partition < 0 || state == "none" || state == "stopped") continue;
      std::int64_t lag = p.value("consumer_lag", std::int64_t{-1});
      if (lag < 0) {  // nothing committed yet: what is left from the fetch position
        const auto end = p.value("ls_offset", std::int64_t{-1}), next = p.value("next_offset", std::int64_t{-1});
        if (end >= 0 && next >= 0) lag = std::max<std::int64_t>(0, end - next);
      }
      if (lag >= 0) lags[{topic, partition}] = lag;
    }
  }
  owner_.on_lags(lags);
}

bool ConsumerClient::close(Clock::time_point until) {
  rd_kafka_t* rk = rk_.get();
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  bool closed = false;
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk, queue)) {
    spdlog::warn("consumer {}: close: {}", opt_.group_id, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else {
    // Serving the queue runs the revoke callback (the final commit) on this thread. It is
    // served as librdkafka's own tests do (0018, 0116): consume, which runs callbacks and hands
    // back anything else (the close's TERMINATE reply, late errors) to be dropped.
    // rd_kafka_queue_poll_callback asserts on such an op (rd_kafka_q_serve0: res !=
    // RD_KAFKA_OP_RES_PASS) and aborted a stopping serve.
    while (!(closed = rd_kafka_consumer_closed(rk)) && Clock::now() < until)
      if (rd_kafka_message_t* m = rd_kafka_consume_queue(queue, 100)) rd_kafka_message_destroy(m);
    if (!closed)
      spdlog::warn("consumer {}: close did not finish in time; leaving without it (uncommitted offsets are read again by the "
                   "next member)",
                   opt_.group_id);
  }
  rd_kafka_queue_destroy(queue);
  closed_ = closed;
  return closed;
}

void ConsumerClient::destroy() noexcept {
  if (closed_) rk_.reset();
  else destroy_without_close(std::move(rk_));  // rd_kafka_destroy would close again, unbounded
}

}  // namespace taskstream::kafka::impl
