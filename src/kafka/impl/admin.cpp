#include "kafka/admin.hpp"

#include <algorithm>
#include <set>
#include <tuple>
#include <thread>

#include "kafka/dead_letter.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka/impl/client.hpp"

namespace taskstream::kafka {
namespace {

struct Metadata {
  const rd_kafka_metadata_t* md = nullptr;
  ~Metadata() {
    if (md) rd_kafka_metadata_destroy(md);
  }
};

TopicInfo to_info(const rd_kafka_metadata_topic_t& t) {
  TopicInfo info{t.topic, {}};
  for (int p = 0; p < t.partition_cnt; ++p) {
    const auto& mp = t.partitions[p];
    PartitionInfo pi{mp.id, mp.leader, {mp.replicas, mp.replicas + mp.replica_cnt}, {mp.isrs, mp.isrs + mp.isr_cnt}};
    info.partitions.push_back(std::move(pi));
  }
  std::sort(info.partitions.begin(), info.partitions.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return info;
}

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const noexcept { rd_kafka_event_destroy(e); }
};

using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)>;

PartitionList new_partition_list(int size) { return {rd_kafka_topic_partition_list_new(size), &rd_kafka_topic_partition_list_destroy}; }

/// Runs one admin request and waits for its result event; throws on a request-level error.
template <typename Start>
EventPtr admin_call(rd_kafka_t* rk, rd_kafka_admin_op_t op, std::chrono::milliseconds timeout, const char* what, Start start) {
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk));
  char errstr[256];
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, op);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), errstr, sizeof errstr);
  start(options, queue.get());
  rd_kafka_AdminOptions_destroy(options);
  EventPtr ev(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 2000));
  if (!ev) throw KafkaException(Error(errc::timed_out, std::string(what) + " timed out"));
  if (auto err = rd_kafka_event_error(ev.get()))
    throw KafkaException(Error(err, std::string(what) + ": " + rd_kafka_event_error_string(ev.get())));
  return ev;
}

/// ListOffsets of `parts` at `spec` (latest or earliest) into `out`.
void list_offsets(rd_kafka_t* rk, const std::vector<std::pair<std::string, std::int32_t>>& parts, rd_kafka_OffsetSpec_t spec,
                  std::chrono::milliseconds timeout, std::map<std::pair<std::string, std::int32_t>, std::int64_t>& out) {
  if (parts.empty()) return;
  auto list = new_partition_list(static_cast<int>(parts.size()));
  for (const auto& [t, p] : parts) rd_kafka_topic_partition_list_add(list.get(), t.c_str(), p)->offset = spec;
  auto ev = admin_call(rk, RD_KAFKA_ADMIN_OP_LISTOFFSETS, timeout, "ListOffsets",
                       [&](auto* options, auto* queue) { rd_kafka_ListOffsets(rk, list.get(), options, queue); });
  size_t cnt = 0;
  const auto** infos = rd_kafka_ListOffsets_result_infos(rd_kafka_event_ListOffsets_result(ev.get()), &cnt);
  for (size_t i = 0; i < cnt; ++i) {
    const auto* tp = rd_kafka_ListOffsetsResultInfo_topic_partition(infos[i]);
    if (!tp->err) out[{tp->topic, tp->partition}] = tp->offset;
  }
}

std::string error_text(const rd_kafka_error_t* e) { return e ? rd_kafka_error_string(e) : ""; }

}  // namespace

std::vector<std::string> service_topic_names(const config::Settings& s) {
  return {s.kafka_topic_task_events, s.kafka_topic_task_updates, s.kafka_topic_notification_request};
}

std::vector<TopicSpec> service_topics(const config::Settings& s) {
  std::vector<TopicSpec> out;
  for (const auto& name : service_topic_names(s)) {
    out.push_back({name, s.kafka_topic_partitions, s.kafka_replication_factor, {}});
    out.push_back({dlq_topic(name), s.kafka_topic_partitions, s.kafka_replication_factor, {}});
  }
  return out;
}

struct Admin::Impl {
  config::Settings settings;
  impl::Handle rk;

  const rd_kafka_metadata_t* metadata(const char* topic, std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* rkt = topic ? rd_kafka_topic_new(rk.get(), topic, nullptr) : nullptr;
    auto err = rd_kafka_metadata(rk.get(), topic ? 0 : 1, rkt, &md, static_cast<int>(timeout.count()));
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (err) {
      // A timeout after a failed login says nothing; the login failure says what to fix.
      // Error callbacks are served by poll, which a metadata call does not do.
      rd_kafka_poll(rk.get(), 0);
      if (auto reason = impl::last_client_error(rk.get())) throw KafkaException(*reason);
      throw KafkaException(impl::make_error(err, "metadata"));
    }
    return md;
  }
};

Admin::Admin(const config::Settings& settings) : impl_(std::make_unique<Impl>()) {
  impl_->settings = settings;
  if (!settings.kafka_enabled)
    throw KafkaException(Error(errc::disabled, "KAFKA_ENABLED=false: no admin client", false, false));
  ProducerOptions o;
  o.client_id = "taskstream-admin";
  // A producer handle serves metadata and admin requests alike. Admin calls must not
  // create topics as a side effect of asking about them.
  auto props = common_properties(settings, resolve_bootstrap(settings));
  props.emplace_back("client.id", "taskstream-admin");
  props.emplace_back("allow.auto.create.topics", "false");
  impl_->rk = impl::make_client(RD_KAFKA_PRODUCER, props);
}

Admin::~Admin() = default;

EnsureResult Admin::ensure_topics(const std::vector<TopicSpec>& topics, std::chrono::milliseconds timeout) {
  EnsureResult result;
  Metadata md{impl_->metadata(nullptr, timeout)};
  std::map<std::string, int> existing;
  for (int i = 0; i < md.md->topic_cnt; ++i)
    if (!md.md->topics[i].err) existing[md.md->topics[i].topic] = md.md->topics[i].partition_cnt;

  std::vector<const TopicSpec*> missing;
  for (const auto& t : topics) {
    auto it = existing.find(t.name);
    if (it == existing.end()) missing.push_back(&t);
    else {
      result.existing.push_back(t.name);
      if (it->second != t.partitions) result.mismatched.push_back(t.name);
    }
  }
  if (missing.empty()) return result;

  if (impl_->settings.kafka_embedded()) {
    for (const auto* t : missing) {
      embedded::create_topic(t->name, t->partitions, t->replication_factor);
      result.created.push_back(t->name);
    }
    return result;
  }

  char errstr[512];
  std::vector<rd_kafka_NewTopic_t*> news;
  for (const auto* t : missing) {
    auto* nt = rd_kafka_NewTopic_new(t->name.c_str(), t->partitions, t->replication_factor, errstr, sizeof errstr);
    if (!nt) {
      for (auto* n : news) rd_kafka_NewTopic_destroy(n);
      throw KafkaException(Error(errc::invalid_config, "topic " + t->name + ": " + errstr, false, false));
    }
    for (const auto& [k, v] : t->configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    news.push_back(nt);
  }
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(impl_->rk.get()));
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(impl_->rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, static_cast<int>(timeout.count()), errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), errstr, sizeof errstr);
  rd_kafka_CreateTopics(impl_->rk.get(), news.data(), news.size(), options, queue.get());
  rd_kafka_AdminOptions_destroy(options);
  for (auto* n : news) rd_kafka_NewTopic_destroy(n);

  std::unique_ptr<rd_kafka_event_t, EventDeleter> ev(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 5000));
  if (!ev) throw KafkaException(Error(errc::timed_out, "CreateTopics timed out"));
  if (auto err = rd_kafka_event_error(ev.get()))
    throw KafkaException(Error(err, std::string("CreateTopics: ") + rd_kafka_event_error_string(ev.get())));
  const auto* res = rd_kafka_event_CreateTopics_result(ev.get());
  size_t cnt = 0;
  const auto** rtopics = rd_kafka_CreateTopics_result_topics(res, &cnt);
  for (size_t i = 0; i < cnt; ++i) {
    auto err = rd_kafka_topic_result_error(rtopics[i]);
    std::string name = rd_kafka_topic_result_name(rtopics[i]);
    if (!err) result.created.push_back(name);
    else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) result.existing.push_back(name);  // another instance won the race
    else {
      const char* msg = rd_kafka_topic_result_error_string(rtopics[i]);
      throw KafkaException(Error(err, "create topic " + name + ": " + (msg ? msg : rd_kafka_err2str(err))));
    }
  }
  // Wait until the new topics show in metadata with leaders, so producers can use them at once.
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (const auto& name : result.created) {
    for (;;) {
      try {
        auto info = describe_topic(name, std::chrono::seconds(5));
        if (!info.partitions.empty() &&
            std::all_of(info.partitions.begin(), info.partitions.end(), [](auto& p) { return p.leader >= 0; }))
          break;
      } catch (const KafkaException&) {
      }
      if (std::chrono::steady_clock::now() > until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return result;
}

std::vector<TopicInfo> Admin::list_topics(std::chrono::milliseconds timeout) {
  Metadata md{impl_->metadata(nullptr, timeout)};
  std::vector<TopicInfo> out;
  for (int i = 0; i < md.md->topic_cnt; ++i) {
    const auto& t = md.md->topics[i];
    if (t.err || std::string_view(t.topic).substr(0, 2) == "__") continue;
    out.push_back(to_info(t));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

TopicInfo Admin::describe_topic(const std::string& name, std::chrono::milliseconds timeout) {
  Metadata md{impl_->metadata(name.c_str(), timeout)};
  for (int i = 0; i < md.md->topic_cnt; ++i) {
    const auto& t = md.md->topics[i];
    if (name != t.topic) continue;
    if (t.err) throw KafkaException(impl::make_error(t.err, "topic " + name));
    return to_info(t);
  }
  throw KafkaException(Error(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "topic " + name + " does not exist", false, false));
}

int Admin::broker_count(std::chrono::milliseconds timeout) {
  Metadata md{impl_->metadata(nullptr, timeout)};
  return md.md->broker_cnt;
}

std::map<std::int32_t, std::int64_t> Admin::consumer_lag(const std::string& group, const std::string& topic, std::chrono::milliseconds timeout) {
  auto info = describe_topic(topic, timeout);
  // A consumer handle of that group that never subscribes: it only asks for commits.
  ConsumerProperties cp{group, "taskstream-lag", {{"enable.auto.commit", "false"}}};
  auto rk = impl::make_client(RD_KAFKA_CONSUMER, consumer_properties(impl_->settings, resolve_bootstrap(impl_->settings), cp));
  auto* parts = rd_kafka_topic_partition_list_new(static_cast<int>(info.partitions.size()));
  for (const auto& p : info.partitions) rd_kafka_topic_partition_list_add(parts, topic.c_str(), p.id);
  auto err = rd_kafka_committed(rk.get(), parts, static_cast<int>(timeout.count()));
  std::map<std::int32_t, std::int64_t> lag;
  for (int i = 0; !err && i < parts->cnt; ++i) {
    std::int64_t low = 0, high = 0;
    auto e = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), parts->elems[i].partition, &low, &high, static_cast<int>(timeout.count()));
    if (e) {
      err = e;
      break;
    }
    const auto committed = parts->elems[i].offset >= 0 ? parts->elems[i].offset : low;
    lag[parts->elems[i].partition] = high - committed;
  }
  rd_kafka_topic_partition_list_destroy(parts);
  rd_kafka_consumer_close(rk.get());
  if (err) throw KafkaException(impl::make_error(err, "consumer lag of " + group));
  return lag;
}

std::map<std::pair<std::string, std::int32_t>, std::int64_t> Admin::end_offsets(const std::vector<TopicInfo>& topics,
                                                                               std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, std::int32_t>> parts;
  for (const auto& t : topics)
    for (const auto& p : t.partitions) parts.emplace_back(t.name, p.id);
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> out;
  list_offsets(impl_->rk.get(), parts, RD_KAFKA_OFFSET_SPEC_LATEST, timeout, out);
  return out;
}

std::vector<GroupStatus> Admin::consumer_groups(const std::function<bool(std::string_view)>& wanted,
                                                const std::function<std::vector<TopicInfo>(std::string_view)>& known,
                                                std::chrono::milliseconds timeout) {
  rd_kafka_t* rk = impl_->rk.get();
  // 1. Which groups there are.
  std::vector<std::string> ids;
  {
    auto ev = admin_call(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, timeout, "ListConsumerGroups",
                         [&](auto* options, auto* queue) { rd_kafka_ListConsumerGroups(rk, options, queue); });
    size_t cnt = 0;
    const auto** listings = rd_kafka_ListConsumerGroups_result_valid(rd_kafka_event_ListConsumerGroups_result(ev.get()), &cnt);
    for (size_t i = 0; i < cnt; ++i) {
      std::string id = rd_kafka_ConsumerGroupListing_group_id(listings[i]);
      if (!wanted || wanted(id)) ids.push_back(std::move(id));
    }
  }
  std::sort(ids.begin(), ids.end());
  std::vector<GroupStatus> groups;
  if (ids.empty()) return groups;
  // 2. Their state, members and assignments, in one request.
  {
    std::vector<const char*> names;
    for (const auto& id : ids) names.push_back(id.c_str());
    auto ev = admin_call(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout, "DescribeConsumerGroups", [&](auto* options, auto* queue) {
      rd_kafka_DescribeConsumerGroups(rk, names.data(), names.size(), options, queue);
    });
    size_t cnt = 0;
    const auto** descs = rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev.get()), &cnt);
    for (size_t i = 0; i < cnt; ++i) {
      GroupStatus g;
      g.group_id = rd_kafka_ConsumerGroupDescription_group_id(descs[i]);
      g.error = error_text(rd_kafka_ConsumerGroupDescription_error(descs[i]));
      g.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(descs[i]));
      const size_t members = rd_kafka_ConsumerGroupDescription_member_count(descs[i]);
      for (size_t m = 0; m < members; ++m) {
        const auto* md = rd_kafka_ConsumerGroupDescription_member(descs[i], m);
        GroupMember gm{rd_kafka_MemberDescription_consumer_id(md), rd_kafka_MemberDescription_client_id(md),
                       rd_kafka_MemberDescription_host(md), {}};
        if (const auto* a = rd_kafka_MemberDescription_assignment(md))
          if (const auto* parts = rd_kafka_MemberAssignment_partitions(a))
            for (int k = 0; k < parts->cnt; ++k) gm.assignment.emplace_back(parts->elems[k].topic, parts->elems[k].partition);
        std::sort(gm.assignment.begin(), gm.assignment.end());
        g.members.push_back(std::move(gm));
      }
      groups.push_back(std::move(g));
    }
  }
  std::sort(groups.begin(), groups.end(), [](auto& a, auto& b) { return a.group_id < b.group_id; });
  // 3. Committed offsets: librdkafka takes one group per request.
  std::vector<std::pair<std::string, std::int32_t>> all_parts, uncommitted;
  for (auto& g : groups) {
    try {
      auto* req = rd_kafka_ListConsumerGroupOffsets_new(g.group_id.c_str(), nullptr);
      auto ev = admin_call(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout, "ListConsumerGroupOffsets", [&](auto* options, auto* queue) {
        rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, options, queue);
      });
      rd_kafka_ListConsumerGroupOffsets_destroy(req);
      size_t cnt = 0;
      const auto** res = rd_kafka_ListConsumerGroupOffsets_result_groups(rd_kafka_event_ListConsumerGroupOffsets_result(ev.get()), &cnt);
      std::set<std::pair<std::string, std::int32_t>> seen;
      for (size_t i = 0; i < cnt; ++i) {
        if (const auto* e = rd_kafka_group_result_error(res[i])) g.error = error_text(e);
        const auto* parts = rd_kafka_group_result_partitions(res[i]);
        for (int k = 0; parts && k < parts->cnt; ++k) {
          const auto& tp = parts->elems[k];
          if (tp.err) continue;
          g.partitions.push_back({tp.topic, tp.partition, tp.offset >= 0 ? tp.offset : -1, -1, 0});
          seen.emplace(tp.topic, tp.partition);
        }
      }
      // Assigned partitions it has not committed on yet are lagging too.
      for (const auto& m : g.members)
        for (const auto& a : m.assignment)
          if (seen.insert(a).second) g.partitions.push_back({a.first, a.second, -1, -1, 0});
      if (known)
        for (const auto& t : known(g.group_id))
          for (const auto& p : t.partitions)
            if (seen.emplace(t.name, p.id).second) g.partitions.push_back({t.name, p.id, -1, -1, 0});
      std::sort(g.partitions.begin(), g.partitions.end(),
                [](auto& a, auto& b) { return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition); });
      for (const auto& p : g.partitions) {
        all_parts.emplace_back(p.topic, p.partition);
        if (p.committed < 0) uncommitted.emplace_back(p.topic, p.partition);
      }
    } catch (const KafkaException& e) {
      g.error = e.what();
    }
  }
  // 4. End offsets of every partition seen, and the start of those without a commit.
  std::sort(all_parts.begin(), all_parts.end());
  all_parts.erase(std::unique(all_parts.begin(), all_parts.end()), all_parts.end());
  std::sort(uncommitted.begin(), uncommitted.end());
  uncommitted.erase(std::unique(uncommitted.begin(), uncommitted.end()), uncommitted.end());
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> ends, starts;
  list_offsets(rk, all_parts, RD_KAFKA_OFFSET_SPEC_LATEST, timeout, ends);
  list_offsets(rk, uncommitted, RD_KAFKA_OFFSET_SPEC_EARLIEST, timeout, starts);
  for (auto& g : groups)
    for (auto& p : g.partitions) {
      auto e = ends.find({p.topic, p.partition});
      if (e == ends.end()) continue;
      p.end = e->second;
      std::int64_t from = p.committed;
      if (from < 0) {
        auto s = starts.find({p.topic, p.partition});
        from = s == starts.end() ? 0 : s->second;
      }
      p.lag = std::max<std::int64_t>(0, p.end - from);
    }
  return groups;
}

void Admin::delete_topics(const std::vector<std::string>& names, std::chrono::milliseconds timeout) {
  if (names.empty() || impl_->settings.kafka_embedded()) return;
  std::vector<rd_kafka_DeleteTopic_t*> dels;
  for (const auto& n : names) dels.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(impl_->rk.get()));
  rd_kafka_DeleteTopics(impl_->rk.get(), dels.data(), dels.size(), nullptr, queue.get());
  for (auto* d : dels) rd_kafka_DeleteTopic_destroy(d);
  std::unique_ptr<rd_kafka_event_t, EventDeleter> ev(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())));
}

}  // namespace taskstream::kafka
