#include "workers/consumers.hpp"

#include <spdlog/spdlog.h>

#include <sstream>
#include <stdexcept>
#include <thread>

#include "workers/audit_consumer.hpp"
#include "workers/notification_consumer.hpp"

namespace taskstream::workers {

std::vector<std::string> parse_consumer_list(const std::string& list) {
  if (list == "all") return kConsumerNames;
  std::vector<std::string> out;
  if (list.empty() || list == "none") return out;
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    if (std::find(kConsumerNames.begin(), kConsumerNames.end(), name) == kConsumerNames.end()) {
      std::string known;
      for (const auto& k : kConsumerNames) known += (known.empty() ? "" : ", ") + k;
      throw std::invalid_argument("unknown consumer '" + name + "'; known: " + known + " (or all, none)");
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

Consumers::Consumers(const config::Settings& settings, storage::Store& store, std::vector<std::string> names,
                     const kafka::ConsumerSetup& setup, std::shared_ptr<kafka::Producer> dead_letters) {
  for (const auto& name : names) {
    kafka::ConsumerOptions o;
    o.client_id = "taskstream-" + name;
    // The database down, full or read-only: hold the batch until it is back (never the DLQ).
    o.is_outage = [](const std::exception& e) {
      const auto* se = dynamic_cast<const storage::StorageError*>(&e);
      return se && se->is_outage();
    };
    if (name == "audit") {
      o.group_id = settings.kafka_consumer_group_audit;
      o.topics = {settings.kafka_topic_task_events};
      apply_audit_batching(o);  // parse batch k+1 while batch k is written
      if (setup) setup(o);
      entries_.push_back({name, o.group_id, std::make_unique<kafka::ConsumerRunner>(settings, o, audit_handler(store, o.group_id))});
    } else if (name == "notification") {
      o.group_id = settings.kafka_consumer_group_notification;
      o.topics = {settings.kafka_topic_notification_request};
      // The handler only writes rows (email goes through the dispatcher's queue), so it takes
      // large batches too (500; the audit consumer takes kAuditBatch, 2000).
      o.max_batch = 500;
      if (!email_) {
        email_ = std::make_unique<notify::SmtpSender>(settings);
        EmailDispatcherOptions eo;
        eo.dead_letter_producer = dead_letters;
        dispatcher_ = std::make_unique<EmailDispatcher>(settings, store, store, store, *email_, eo);
      }
      if (setup) setup(o);
      entries_.push_back({name, o.group_id,
                          std::make_unique<kafka::ConsumerRunner>(settings, o,
                                                                  notification_handler(settings, store, store, dispatcher_.get(), o.group_id))});
    }
  }
}

Consumers::~Consumers() { stop(); }

void Consumers::start() {
  if (dispatcher_) dispatcher_->start();
  for (auto& e : entries_) {
    e.runner->start();
    spdlog::info("consumer {} started (group {})", e.name, e.group);
  }
}

void Consumers::stop(std::chrono::steady_clock::time_point until) {
  std::vector<std::thread> stoppers;
  for (auto& e : entries_)
    if (e.runner->running()) stoppers.emplace_back([&e, until] { e.runner->stop(until); });
  for (auto& t : stoppers) t.join();
  if (dispatcher_) dispatcher_->stop();
}

}  // namespace taskstream::workers
