// A creation's events are built before its transaction with a placeholder seq, and the
// real seq is stamped in under the write lock (storage/impl/common.hpp). The stamped
// payloads must be exactly what the factory would have built with the real seq.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/settings.hpp"
#include "outbox/task_events.hpp"
#include "storage/impl/common.hpp"

using namespace taskstream;
using storage::impl::PrebuiltEvents;

namespace {

storage::Task sample_task() {
  storage::Task t;
  t.id = "0190f0f0-0000-7000-8000-000000000001";
  t.user_id = "0190f0f0-0000-7000-8000-0000000000aa";
  // A title that tries to look like the placeholder: inside a JSON string it is escaped.
  t.title = R"(x","seq":9223372036854775807,"y":")";
  t.description = "seq 9223372036854775807";
  t.created_at = t.updated_at = "2026-12-04T12:00:00.000Z";
  return t;
}

}  // namespace

TEST(PrebuiltEvents, StampedPayloadsCarryTheRealSeqAndNothingElseChanges) {
  const auto settings = config::Settings::load({});
  const auto factory = outbox::task_event_factory(settings, "task_created");
  const auto task = sample_task();
  const auto pre = storage::impl::prebuild_events(factory, nullptr, &task);
  ASSERT_TRUE(pre.ok);
  ASSERT_EQ(pre.records.size(), 2u);
  for (std::int64_t seq : {1LL, 42LL, 1234567890123LL}) {
    const auto stamped = storage::impl::stamp_seq(pre, seq);
    ASSERT_EQ(stamped.size(), 2u);
    for (std::size_t i = 0; i < stamped.size(); ++i) {
      EXPECT_EQ(stamped[i].seq, seq);
      const auto doc = nlohmann::json::parse(stamped[i].payload);
      EXPECT_EQ(doc.at("seq").get<std::int64_t>(), seq);
      // Everything but seq is the prebuilt record's.
      auto before = nlohmann::json::parse(pre.records[i].payload);
      before["seq"] = seq;
      EXPECT_EQ(doc, before);
      EXPECT_EQ(stamped[i].event_id, pre.records[i].event_id);
      EXPECT_EQ(stamped[i].topic, pre.records[i].topic);
    }
    const auto audit = nlohmann::json::parse(stamped[0].payload);
    EXPECT_EQ(audit.at("task_data").at("title"), task.title) << "a title that looks like the placeholder is left alone";
  }
}

TEST(PrebuiltEvents, AFactoryWithoutThePlaceholderFallsBack) {
  const storage::EventFactory no_seq = [](const storage::Task*, const storage::Task*, std::int64_t) {
    storage::OutboxRecord r;
    r.topic = "t";
    r.payload = R"({"type":"x"})";
    return std::vector<storage::OutboxRecord>{r};
  };
  const auto task = sample_task();
  EXPECT_FALSE(storage::impl::prebuild_events(no_seq, nullptr, &task).ok);
  const storage::EventFactory twice = [](const storage::Task*, const storage::Task*, std::int64_t seq) {
    storage::OutboxRecord r;
    r.payload = nlohmann::json{{"seq", seq}, {"nested", {{"seq", seq}}}}.dump();
    r.payload += r.payload;  // not JSON any more, and the token twice: not one this knows
    return std::vector<storage::OutboxRecord>{r};
  };
  EXPECT_FALSE(storage::impl::prebuild_events(twice, nullptr, &task).ok);
}
