#include "kafka/consumer_runner.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <any>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "events/events.hpp"
#include "kafka/impl/client.hpp"
#include "kafka/producer.hpp"
#include "util/logging.hpp"

namespace taskstream::kafka {

void BatchContext::dead_letter(std::size_t index, std::string reason, std::string error_class, std::string detail) {
  dead_letters_.push_back({index, std::move(reason), std::move(error_class), std::move(detail)});
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                        double jitter_unit) {
  const int exp = std::clamp(attempt - 2, 0, 30);
  const double base = std::min<double>(static_cast<double>(initial.count()) * std::ldexp(1.0, exp), static_cast<double>(max.count()));
  const double jittered = base * (0.75 + 0.5 * std::clamp(jitter_unit, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<std::int64_t>(jittered));
}

namespace {

using Clock = std::chrono::steady_clock;

struct TopparList {
  rd_kafka_topic_partition_list_t* list;
  explicit TopparList(int size) : list(rd_kafka_topic_partition_list_new(size)) {}
  ~TopparList() { rd_kafka_topic_partition_list_destroy(list); }
};

/// A healthy close (a synchronous commit and a LeaveGroup) takes well under a second.
constexpr std::chrono::seconds kCloseTimeout{5};

/// Closes the consumer (the revoke callback commits; the member leaves its group), serving
/// the close on this thread until `until`. True when the close finished.
bool close_within(rd_kafka_t* rk, const std::string& group_id, Clock::time_point until) {
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  bool closed = false;
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk, queue)) {
    spdlog::warn("consumer {}: close: {}", group_id, rd_kafka_error_string(error));
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
                   group_id);
  }
  rd_kafka_queue_destroy(queue);
  return closed;
}

/// A failed message on its way to the DLQ.
struct Failure {
  std::size_t index;
  DeadLetterInfo info;
};

}  // namespace

struct ConsumerRunner::Impl {
  config::Settings settings;
  ConsumerOptions opt;
  BatchHandler handler;
  impl::Handle rk;
  Properties props;  // the client's, kept to build a replacement
  std::unique_ptr<Producer> dlq;
  // Group membership, as the rebalance callback (on the poll thread) last saw it.
  bool in_group = false;
  Clock::time_point out_of_group_since{};
  // Out of the group this long → a new client. Doubles after each replacement (a new
  // member's join may itself wait for the old one's session to expire), back to
  // rejoin_after once a member is in.
  std::chrono::milliseconds rejoin_wait{};

  std::thread poll_thread;
  std::thread worker_thread;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> abort_retries{false};  // cuts backoff sleeps short (stop, revoke)
  std::atomic<bool> running{false};
  std::atomic<std::size_t> assigned{0};

  // Hand-off between the poll thread and the worker. One batch in hand at a time.
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<Message> batch;
  bool batch_ready = false;     // poll → worker
  bool batch_done = false;      // worker → poll
  bool batch_completed = false; // every message handled or dead-lettered
  bool offsets_stored = false;  // set once the batch's offsets were stored (revoke may do it early)
  bool worker_exit = false;

  std::vector<Message> carry;  // messages the poll returned while a batch was in hand
  std::any carry_prepared;     // opt.prepare of exactly `carry` (empty when not made or stale)
  std::size_t carry_prepared_size = 0;
  std::any batch_prepared;     // opt.prepare of `batch`, for the worker

  std::atomic<std::uint64_t> processed{0}, dead_lettered{0}, retries{0}, batches{0}, rebalances{0}, client_restarts{0}, outage_retries{0};
  // The outage in progress (worker thread only): attempts so far and when it was last logged.
  int outage_attempts = 0;
  Clock::time_point outage_logged{};

  // Per-partition figures for /metrics: counters from the worker, lag from the stats
  // callback (poll thread).
  struct PartitionFigures {
    std::uint64_t processed = 0, dead_lettered = 0, retried = 0;
    std::optional<std::int64_t> lag;
  };
  mutable std::mutex figures_mutex;
  std::map<std::pair<std::string, std::int32_t>, PartitionFigures> figures;

  /// Adds 1 to `field` of each message's partition (all of msgs, or those `pick` keeps).
  template <typename Pick>
  void count(std::span<const Message> msgs, std::uint64_t PartitionFigures::*field, Pick pick) {
    std::lock_guard lock(figures_mutex);
    std::string_view last_topic;
    std::int32_t last_partition = -1;
    PartitionFigures* f = nullptr;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      if (!pick(i)) continue;
      const auto& m = msgs[i];
      if (!f || m.partition() != last_partition || m.topic() != last_topic) {
        f = &figures[{std::string(m.topic()), m.partition()}];
        last_topic = m.topic();
        last_partition = m.partition();
      }
      ++(f->*field);
    }
  }
  void count_all(std::span<const Message> msgs, std::uint64_t PartitionFigures::*field) {
    count(msgs, field, [](std::size_t) { return true; });
  }

  static int stats_cb(rd_kafka_t*, char* json, std::size_t len, void* opaque) {
    static_cast<Impl*>(impl::callback_owner(opaque))->on_stats(std::string_view(json, len));
    return 0;  // librdkafka frees json
  }

  /// Reads the lag of each partition being fetched from librdkafka's statistics.
  void on_stats(std::string_view text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.contains("topics")) return;
    std::map<std::pair<std::string, std::int32_t>, std::int64_t> lags;
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
    set_lags(lags);
  }

  /// Replaces every partition's lag: those not in `lags` are no longer assigned here.
  void set_lags(const std::map<std::pair<std::string, std::int32_t>, std::int64_t>& lags) {
    std::lock_guard lock(figures_mutex);
    for (auto& [key, f] : figures) f.lag.reset();
    for (const auto& [key, lag] : lags) figures[key].lag = lag;
  }

  /// The log fields of a consumed message: its event id and trace.
  static util::LogScope message_scope(const Message& m) {
    return util::LogScope({.event_id = m.header("event_id").value_or(""), .traceparent = m.header("traceparent").value_or("")});
  }

  /// At debug level, one line per handled message with its event id and traceparent, so a
  /// request's trace can be followed into the consumers.
  template <typename Pick>
  void log_handled(std::span<const Message> msgs, Pick pick) {
    if (!spdlog::should_log(spdlog::level::debug)) return;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      if (!pick(i)) continue;
      const auto& m = msgs[i];
      const auto scope = message_scope(m);
      spdlog::debug("consumer {}: handled {} {}[{}]@{}", opt.group_id, m.header("event_type").value_or("message"), m.topic(),
                    m.partition(), m.offset());
    }
  }

  std::mt19937_64 rng{std::random_device{}()};
  bool kill_before_commit = false;  // TASKSTREAM_FAILPOINT (tests only)

  // ---- poll thread -------------------------------------------------------------------

  impl::Handle make_handle() {
    return impl::make_client(
        RD_KAFKA_CONSUMER, props,
        [this](rd_kafka_conf_t* conf) {
          rd_kafka_conf_set_rebalance_cb(conf, &Impl::rebalance_cb);
          if (opt.stats_interval.count() > 0) rd_kafka_conf_set_stats_cb(conf, &Impl::stats_cb);
        },
        this);
  }

  void subscribe() {
    rd_kafka_poll_set_consumer(rk.get());
    TopparList topics(static_cast<int>(opt.topics.size()));
    for (const auto& t : opt.topics) rd_kafka_topic_partition_list_add(topics.list, t.c_str(), RD_KAFKA_PARTITION_UA);
    if (auto err = rd_kafka_subscribe(rk.get(), topics.list)) throw KafkaException(impl::make_error(err, "subscribe"));
    in_group = false;
    out_of_group_since = Clock::now();
  }

  /// Replaces a client that has stayed out of the group for rejoin_after. Called from the
  /// poll loop between batches, so no message of the old client is in hand.
  void replace_client() {
    spdlog::warn("consumer {}: out of the group for {} ms; replacing the Kafka client", opt.group_id,
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - out_of_group_since).count());
    impl::Handle fresh;
    try {
      fresh = make_handle();
    } catch (const std::exception& e) {
      spdlog::error("consumer {}: building a new client: {}", opt.group_id, e.what());
      out_of_group_since = Clock::now();
      return;
    }
    clear_carry();  // messages of the old client go before it
    impl::destroy_without_close(std::exchange(rk, std::move(fresh)));
    rejoin_wait = std::min<std::chrono::milliseconds>(rejoin_wait * 2, std::chrono::minutes(10));
    try {
      subscribe();
    } catch (const std::exception& e) {
      spdlog::error("consumer {}: {}", opt.group_id, e.what());
      out_of_group_since = Clock::now();
    }
    client_restarts++;
  }

  void poll_loop() {
    while (!stop_requested.load()) {
      if (!in_group && Clock::now() - out_of_group_since >= rejoin_wait) replace_client();
      std::vector<Message> next = std::move(carry);
      std::any prepared;
      if (carry_prepared.has_value() && carry_prepared_size == next.size()) prepared = std::move(carry_prepared);
      clear_carry();
      if (!prepared.has_value()) gather(next);  // a prepared batch goes as it is
      if (next.empty()) continue;
      run_batch(std::move(next), std::move(prepared));
    }
  }

  void clear_carry() {
    carry.clear();
    carry_prepared.reset();
    carry_prepared_size = 0;
  }

  /// With a prepare hook: gathers the next batch while the worker handles this one, and
  /// prepares it.
  void prefetch() {
    if (!opt.prepare || carry_prepared.has_value()) return;
    gather(carry);
    if (carry.empty() || stop_requested.load()) return;
    carry_prepared = opt.prepare(std::span<const Message>(carry.data(), carry.size()));
    carry_prepared_size = carry.size();
  }

  void gather(std::vector<Message>& out) {
    auto timeout = static_cast<int>(opt.batch_wait.count());
    while (out.size() < opt.max_batch && !stop_requested.load()) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), out.empty() ? timeout : 0);
      if (!m) break;
      if (m->err) {
        log_consumer_error(m);
        rd_kafka_message_destroy(m);
        continue;
      }
      out.emplace_back(m);
    }
  }

  void log_consumer_error(rd_kafka_message_t* m) {
    auto e = impl::make_error(m->err, m->rkt ? std::string("consume ") + rd_kafka_topic_name(m->rkt) : "consume");
    if (e.is_retriable()) spdlog::warn("consumer {}: {}", opt.group_id, e.to_string());
    else spdlog::error("consumer {}: {}", opt.group_id, e.to_string());
  }

  void run_batch(std::vector<Message> msgs, std::any prepared) {
    {
      std::lock_guard lock(mutex);
      batch = std::move(msgs);
      batch_prepared = std::move(prepared);
      batch_ready = true;
      batch_done = false;
      batch_completed = false;
      offsets_stored = false;
    }
    cv.notify_all();
    const auto started = Clock::now();
    prefetch();
    bool paused = false;
    for (;;) {
      {
        std::unique_lock lock(mutex);
        auto wait = paused ? std::chrono::milliseconds(100)
                           : std::max(std::chrono::milliseconds(1),
                                      opt.pause_after - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started));
        cv.wait_for(lock, wait, [&] { return batch_done; });
        if (batch_done) break;
      }
      if (stop_requested.load()) abort_retries = true;
      if (!paused && Clock::now() - started >= opt.pause_after) {
        set_paused(true);
        paused = true;
        spdlog::debug("consumer {}: handler busy for {} ms, partitions paused", opt.group_id, opt.pause_after.count());
      }
      if (paused) {
        // Keeps the member alive and serves rebalances; paused partitions fetch nothing.
        if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 0)) {
          if (m->err) {
            log_consumer_error(m);
            rd_kafka_message_destroy(m);
          } else {
            carry.emplace_back(m);
          }
        }
      }
    }
    finish_batch_locked_free();
    if (paused) set_paused(false);
    batches++;
  }

  /// Stores the offsets of a completed batch, once. Called by the poll thread after the
  /// worker finished, or from the revoke callback.
  void finish_batch_locked_free() {
    std::lock_guard lock(mutex);
    if (!batch_done || offsets_stored) return;
    offsets_stored = true;
    if (batch_completed && kill_before_commit && !batch.empty()) {
      // Fault injection (TASKSTREAM_FAILPOINT=kill_before_commit): die after the batch's
      // effects and before its offsets are stored, as a crash there would. The pause lets
      // effects that follow the handler (the email dispatcher's send) happen first.
      spdlog::critical("consumer {}: failpoint kill_before_commit: SIGKILL after {} message(s)", opt.group_id, batch.size());
      spdlog::default_logger()->flush();
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::raise(SIGKILL);
    }
    if (batch_completed) store_offsets(batch);
    batch.clear();
    batch_prepared.reset();
    batch_ready = false;
  }

  void store_offsets(const std::vector<Message>& msgs) {
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
    if (auto err = rd_kafka_offsets_store(rk.get(), list.list); err && err != RD_KAFKA_RESP_ERR__STATE)
      spdlog::warn("consumer {}: storing offsets: {}", opt.group_id, rd_kafka_err2str(err));
  }

  void set_paused(bool pause) {
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(rk.get(), &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
    if (pause) rd_kafka_pause_partitions(rk.get(), parts);
    else rd_kafka_resume_partitions(rk.get(), parts);
    rd_kafka_topic_partition_list_destroy(parts);
  }

  /// Explicit end offsets for parts (see ConsumerOptions::start_at_end). A fresh topic may
  /// answer "not leader" for a while: retry for up to 15 s; a partition whose end still
  /// cannot be read keeps the logical OFFSET_END (and a warning says so).
  void resolve_ends(rd_kafka_t* handle, rd_kafka_topic_partition_list_t* parts) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    for (int i = 0; i < parts->cnt; ++i) {
      auto& p = parts->elems[i];
      for (;;) {
        std::int64_t low = 0, high = 0;
        auto err = rd_kafka_query_watermark_offsets(handle, p.topic, p.partition, &low, &high, 5000);
        if (!err) {
          p.offset = high;
          break;
        }
        if (std::chrono::steady_clock::now() >= until || stop_requested.load()) {
          spdlog::warn("consumer {}: end of {}[{}]: {}; starting at its end when known", opt.group_id, p.topic, p.partition,
                       rd_kafka_err2str(err));
          p.offset = RD_KAFKA_OFFSET_END;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  }

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<Impl*>(impl::callback_owner(opaque))->on_rebalance(rk, err, parts);
  }

  void on_rebalance(rd_kafka_t* handle, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      spdlog::info("consumer {}: assigned {} partition(s)", opt.group_id, parts->cnt);
      if (opt.start_at_end) resolve_ends(handle, parts);
      rd_kafka_assign(handle, parts);
      assigned = static_cast<std::size_t>(parts->cnt);
      in_group = true;
      rejoin_wait = opt.rejoin_after;
      abort_retries = stop_requested.load();
      return;
    }
    // Revoke (eager protocol: everything). Let the batch in hand finish, with its retries
    // cut short, so what it handled is committed before another member takes over.
    spdlog::info("consumer {}: revoking {} partition(s)", opt.group_id, parts ? parts->cnt : 0);
    {
      std::unique_lock lock(mutex);
      if (batch_ready && !batch_done) {
        abort_retries = true;
        cv.wait_for(lock, opt.stop_deadline, [&] { return batch_done; });
      }
    }
    finish_batch_locked_free();
    clear_carry();  // the next owner reads them from the committed offset
    if (auto e = rd_kafka_commit(handle, nullptr, 0); e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
      spdlog::warn("consumer {}: commit on revoke: {}", opt.group_id, rd_kafka_err2str(e));
    rd_kafka_assign(handle, nullptr);
    set_lags({});
    assigned = 0;
    in_group = false;
    out_of_group_since = Clock::now();
    if (!stop_requested.load()) abort_retries = false;
  }

  // ---- worker thread -----------------------------------------------------------------

  void worker_loop() {
    for (;;) {
      std::vector<Message>* work = nullptr;
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return worker_exit || (batch_ready && !batch_done); });
        if (worker_exit) return;
        work = &batch;  // stays put until batch_done is set
      }
      bool completed = false;
      try {
        completed = process(*work);
      } catch (const std::exception& e) {
        spdlog::error("consumer {}: batch abandoned: {}", opt.group_id, e.what());
      }
      {
        std::lock_guard lock(mutex);
        batch_done = true;
        batch_completed = completed;
      }
      cv.notify_all();
    }
  }

  /// Sleeps before attempt `attempt`; false when the sleep was cut short (stop or revoke).
  bool backoff(int attempt) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto delay = backoff_delay(attempt, opt.backoff_initial, opt.backoff_max, unit(rng));
    auto until = Clock::now() + delay;
    while (Clock::now() < until) {
      if (abort_retries.load()) return false;
      std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(20), until - Clock::now()));
    }
    return !abort_retries.load();
  }

  bool is_outage(const std::exception& e) const { return opt.is_outage && opt.is_outage(e); }

  /// After an attempt failed on an outage: logs (at its start, then every 30 s), waits,
  /// and says whether to try again (false: stop or revoke cut the wait short).
  bool wait_out_outage(std::size_t messages, const std::exception& e) {
    ++outage_retries;
    const auto now = Clock::now();
    if (outage_attempts++ == 0 || now - outage_logged >= std::chrono::seconds(30)) {
      outage_logged = now;
      spdlog::warn("consumer {}: holding a batch of {} (partitions paused, no offset stored) until a dependency is back: {}", opt.group_id,
                   messages, e.what());
    }
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const auto until = now + backoff_delay(std::min(outage_attempts + 1, 30), opt.backoff_initial,
                                           std::min<std::chrono::milliseconds>(opt.backoff_max, std::chrono::seconds(1)), unit(rng));
    while (Clock::now() < until) {
      if (abort_retries.load()) return false;
      std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(20), until - Clock::now()));
    }
    return !abort_retries.load();
  }
  void outage_over() {
    if (outage_attempts > 0) spdlog::info("consumer {}: going on after {} attempt(s) held by an outage", opt.group_id, outage_attempts);
    outage_attempts = 0;
  }

  /// Handles a batch: true when every message was handled or dead-lettered, false when it
  /// was abandoned (stop or revoke during retries): then nothing of it is stored.
  bool process(std::vector<Message>& msgs) {
    std::span<const Message> all(msgs.data(), msgs.size());
    BatchContext ctx(&stop_requested, opt.max_attempts);
    std::string first_failure;
    std::string last_error;
    bool permanent = false;
    ctx.set_prepared(&batch_prepared);  // not changed while the worker holds the batch
    for (int attempt = 1; attempt <= opt.max_attempts; ++attempt) {
      ctx.clear();
      ctx.set_attempt(attempt);
      try {
        handler(all, ctx);
        outage_over();
        std::vector<Failure> failures;
        for (const auto& e : ctx.dead_letters())
          failures.push_back({e.index, info_for(msgs[e.index], e.reason, e.error_class, e.detail, attempt, events::now_rfc3339(),
                                                events::now_rfc3339())});
        if (!deliver(msgs, failures)) return false;
        processed += msgs.size() - failures.size();
        std::vector<bool> failed;
        if (!failures.empty()) {
          failed.assign(msgs.size(), false);
          for (const auto& f : failures) failed[f.index] = true;
        }
        const auto handled = [&](std::size_t i) { return failed.empty() || !failed[i]; };
        count(all, &PartitionFigures::processed, handled);
        log_handled(all, handled);
        return true;
      } catch (const NonRetriableError& e) {
        last_error = e.what();
        if (first_failure.empty()) first_failure = events::now_rfc3339();
        permanent = true;
        break;
      } catch (const std::exception& e) {
        if (is_outage(e)) {  // no message's fault: the same attempt again once it is back
          if (!wait_out_outage(msgs.size(), e)) return false;
          --attempt;
          continue;
        }
        last_error = e.what();
        if (first_failure.empty()) first_failure = events::now_rfc3339();
        spdlog::warn("consumer {}: batch of {} failed (attempt {}/{}): {}", opt.group_id, msgs.size(), attempt, opt.max_attempts, e.what());
        if (attempt < opt.max_attempts) {
          retries++;
          count_all(all, &PartitionFigures::retried);
          if (!backoff(attempt + 1)) return false;
        }
      }
    }
    if (msgs.size() == 1 && !permanent) {
      std::vector<Failure> f{{0, info_for(msgs[0], "handler_error", "retries_exhausted", last_error, opt.max_attempts, first_failure,
                                          events::now_rfc3339())}};
      return deliver(msgs, f);
    }
    return isolate(msgs);
  }

  /// One message at a time, to let the good ones through and dead-letter the poison ones.
  bool isolate(std::vector<Message>& msgs) {
    std::vector<Failure> failures;
    std::size_t handled = 0;
    std::vector<bool> handled_flags(msgs.size(), false);
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      std::span<const Message> one(&msgs[i], 1);
      BatchContext ctx(&stop_requested, opt.max_attempts);
      std::string first_failure;
      for (int attempt = 1; attempt <= opt.max_attempts; ++attempt) {
        ctx.clear();
        ctx.set_attempt(attempt);
        try {
          handler(one, ctx);
          outage_over();
          if (ctx.dead_letters().empty()) {
            ++handled;
            handled_flags[i] = true;
          }
          for (const auto& e : ctx.dead_letters())
            failures.push_back({i, info_for(msgs[i], e.reason, e.error_class, e.detail, attempt, events::now_rfc3339(), events::now_rfc3339())});
          break;
        } catch (const NonRetriableError& e) {
          auto now = events::now_rfc3339();
          failures.push_back({i, info_for(msgs[i], e.reason(), "permanent", e.what(), attempt, first_failure.empty() ? now : first_failure, now)});
          break;
        } catch (const std::exception& e) {
          if (is_outage(e)) {
            if (!wait_out_outage(1, e)) return false;
            --attempt;
            continue;
          }
          if (first_failure.empty()) first_failure = events::now_rfc3339();
          if (attempt == opt.max_attempts) {
            failures.push_back({i, info_for(msgs[i], "handler_error", "retries_exhausted", e.what(), attempt, first_failure, events::now_rfc3339())});
            break;
          }
          retries++;
          count_all(one, &PartitionFigures::retried);
          if (!backoff(attempt + 1)) return false;
        }
      }
    }
    if (!deliver(msgs, failures)) return false;
    processed += handled;
    std::span<const Message> all(msgs.data(), msgs.size());
    const auto was_handled = [&](std::size_t i) { return static_cast<bool>(handled_flags[i]); };
    count(all, &PartitionFigures::processed, was_handled);
    log_handled(all, was_handled);
    return true;
  }

  DeadLetterInfo info_for(const Message& m, std::string reason, std::string error_class, std::string detail, int attempts,
                          std::string first, std::string last) {
    DeadLetterInfo info;
    info.reason = std::move(reason);
    info.error_class = std::move(error_class);
    info.detail = std::move(detail);
    info.source_topic = std::string(m.topic());
    info.source_partition = m.partition();
    info.source_offset = m.offset();
    info.attempts = attempts;
    info.first_failure = std::move(first);
    info.last_failure = std::move(last);
    return info;
  }

  /// Sends the failures to their DLQs and waits for every acknowledgement, retrying while
  /// Kafka is unavailable; false when cut short.
  bool deliver(const std::vector<Message>& msgs, std::vector<Failure> failures) {
    int attempt = 1;
    while (!failures.empty()) {
      std::vector<std::pair<std::size_t, std::future<DeliveryResult>>> pending;
      // One line per batch at warning level (a flood of poison must not flood the log);
      // each message at debug.
      std::map<std::string, int> reasons;
      for (std::size_t k = 0; k < failures.size(); ++k) {
        reasons[failures[k].info.reason]++;
        if (spdlog::should_log(spdlog::level::debug)) {
          const auto scope = message_scope(msgs[failures[k].index]);
          spdlog::debug("consumer {}: dead-lettering {}[{}]@{}: {} ({})", opt.group_id, failures[k].info.source_topic,
                        failures[k].info.source_partition, failures[k].info.source_offset, failures[k].info.reason, failures[k].info.detail);
        }
        pending.emplace_back(k, dlq->send(build_dead_letter(msgs[failures[k].index], failures[k].info)));
      }
      std::string summary;
      for (const auto& [reason, n] : reasons) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + reason;
      spdlog::warn("consumer {}: dead-lettering {} message(s): {}; first: {}[{}]@{}: {}", opt.group_id, failures.size(), summary,
                   failures[0].info.source_topic, failures[0].info.source_partition, failures[0].info.source_offset, failures[0].info.detail);
      std::vector<Failure> again;
      for (auto& [k, fut] : pending) {
        auto r = fut.get();
        if (r.ok()) {
          dead_lettered++;
          count_all(std::span<const Message>(&msgs[failures[k].index], 1), &PartitionFigures::dead_lettered);
        } else {
          spdlog::error("consumer {}: DLQ delivery failed: {}", opt.group_id, r.error.to_string());
          again.push_back(std::move(failures[k]));
        }
      }
      failures = std::move(again);
      if (!failures.empty() && !backoff(++attempt)) return false;
    }
    return true;
  }
};

ConsumerRunner::ConsumerRunner(const config::Settings& settings, ConsumerOptions options, BatchHandler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = settings;
  impl_->opt = std::move(options);
  impl_->handler = std::move(handler);
  if (impl_->opt.max_attempts < 1) impl_->opt.max_attempts = 1;
  if (impl_->opt.max_batch < 1) impl_->opt.max_batch = 1;
}

ConsumerRunner::~ConsumerRunner() { stop(); }

void ConsumerRunner::start() {
  if (impl_->running) return;
  if (!impl_->settings.kafka_enabled) {
    spdlog::info("Kafka disabled, consumer {} not started", impl_->opt.group_id);
    return;
  }
  const auto bootstrap = resolve_bootstrap(impl_->settings);
  ConsumerProperties cp{impl_->opt.group_id, impl_->opt.client_id, impl_->opt.extra};
  auto* self = impl_.get();
  impl_->props = consumer_properties(impl_->settings, bootstrap, cp);
  impl_->rejoin_wait = impl_->opt.rejoin_after;
  if (impl_->opt.stats_interval.count() > 0)
    impl_->props.insert(impl_->props.begin(), {"statistics.interval.ms", std::to_string(impl_->opt.stats_interval.count())});
  impl_->rk = impl_->make_handle();
  ProducerOptions po;
  po.client_id = impl_->opt.client_id + "-dlq";
  po.delivery_timeout = std::chrono::seconds(30);
  impl_->dlq = std::make_unique<Producer>(impl_->settings, po);

  impl_->subscribe();
  if (const char* fp = std::getenv("TASKSTREAM_FAILPOINT")) impl_->kill_before_commit = std::string_view(fp) == "kill_before_commit";
  impl_->stop_requested = false;
  impl_->abort_retries = false;
  impl_->worker_exit = false;
  impl_->running = true;
  impl_->worker_thread = std::thread([self] { self->worker_loop(); });
  impl_->poll_thread = std::thread([self] { self->poll_loop(); });
}

void ConsumerRunner::stop() {
  if (impl_) stop(Clock::now() + impl_->opt.stop_deadline);
}

void ConsumerRunner::stop(Clock::time_point until) {
  if (!impl_ || !impl_->running.exchange(false)) return;
  const auto deadline = std::min(until, Clock::now() + impl_->opt.stop_deadline);
  impl_->stop_requested = true;
  impl_->abort_retries = true;
  impl_->cv.notify_all();
  impl_->poll_thread.join();  // returns after the batch in hand finished (retries cut short)
  // Messages fetched but not handled are dropped (their offsets were not stored, so the
  // next member reads them again); they must go before the handle does.
  impl_->clear_carry();
  // Close commits what was stored (through the revoke callback) and leaves the group. It
  // runs on a queue served here, bounded: rd_kafka_consumer_close waits without a limit, and a
  // client wedged out of its group (librdkafka#5430, a broker fenced on resume) kept a
  // stopping `serve` past its deadline. A close cut short leaves offsets uncommitted; the
  // next member reads those messages again and the handlers absorb the copies.
  const bool closed = close_within(impl_->rk.get(), impl_->opt.group_id, std::min(deadline, Clock::now() + kCloseTimeout));
  {
    std::lock_guard lock(impl_->mutex);
    impl_->worker_exit = true;
  }
  impl_->cv.notify_all();
  impl_->worker_thread.join();
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  impl_->dlq->flush(std::max(left, std::chrono::milliseconds(100)));
  impl_->dlq.reset();
  if (closed) impl_->rk.reset();
  else impl::destroy_without_close(std::move(impl_->rk));  // rd_kafka_destroy would close again, unbounded
}


bool ConsumerRunner::running() const noexcept { return impl_->running.load(); }
std::size_t ConsumerRunner::assigned_partitions() const noexcept { return impl_->assigned.load(); }

ConsumerStats ConsumerRunner::stats() const noexcept {
  return {impl_->processed.load(), impl_->dead_lettered.load(), impl_->retries.load(), impl_->batches.load(), impl_->rebalances.load(),
          impl_->client_restarts.load(), impl_->outage_retries.load()};
}

std::vector<PartitionStats> ConsumerRunner::partition_stats() const {
  std::vector<PartitionStats> out;
  std::lock_guard lock(impl_->figures_mutex);
  out.reserve(impl_->figures.size());
  for (const auto& [key, f] : impl_->figures) out.push_back({key.first, key.second, f.processed, f.dead_lettered, f.retried, f.lag});
  return out;
}

const std::string& ConsumerRunner::group_id() const noexcept { return impl_->opt.group_id; }

}  // namespace taskstream::kafka
