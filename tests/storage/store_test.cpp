// One suite for both Store backends: every TEST_P runs against SQLite (a fresh temp file)
// and PostgreSQL (a fresh schema in the database at TASKSTREAM_TEST_DATABASE_URL; without
// it the PostgreSQL instances fail, they never skip: run `scripts/postgres start` and
// export TASKSTREAM_TEST_DATABASE_URL=postgresql://taskstream:taskstream@127.0.0.1:5432/taskstream).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <ostream>
#include <tuple>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include "config/settings.hpp"
#include "events/events.hpp"
#include "storage/postgres/postgres_store.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "storage/store.hpp"

namespace taskstream::storage {

// store.hpp gives Task an operator== but not User; found by ADL from std::optional<User>.
bool operator==(const User& a, const User& b) {
  return std::tie(a.id, a.email, a.password_hash, a.created_at) == std::tie(b.id, b.email, b.password_hash, b.created_at);
}

namespace {

enum class Backend { sqlite, postgres };

void PrintTo(Backend backend, std::ostream* os) { *os << (backend == Backend::sqlite ? "sqlite" : "postgres"); }

// Migration and reconnect notes at info level would drown the test output.
const bool kQuietLogs = (spdlog::set_level(spdlog::level::warn), true);

constexpr const char* kDatabaseUrlEnv = "TASKSTREAM_TEST_DATABASE_URL";

std::string random_suffix() {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mutex);
  return fmt::format("{:016x}", rng());
}

/// The PostgreSQL server under test, or nullopt (and a test failure) when it is not set.
std::optional<std::string> postgres_base_url() {
  const char* url = std::getenv(kDatabaseUrlEnv);
  if (!url || !*url) {
    ADD_FAILURE() << kDatabaseUrlEnv
                  << " is not set: the PostgreSQL storage tests need a server. Run `scripts/postgres start` and "
                     "export "
                  << kDatabaseUrlEnv << "=postgresql://taskstream:taskstream@127.0.0.1:5432/taskstream";
    return std::nullopt;
  }
  return std::string(url);
}

/// A database nobody else uses, removed on destruction: a temp file for SQLite, a schema
/// (selected through search_path in the URL) for PostgreSQL. The schema name doubles as
/// the connections' application_name, so a test can find (and kill) its own sessions.
class Scratch final {
 public:
  explicit Scratch(Backend backend) : backend_(backend) {
    const auto suffix = random_suffix();
    if (backend == Backend::sqlite) {
      path_ = (std::filesystem::temp_directory_path() / fmt::format("taskstream-store-test-{}.db", suffix)).string();
      url_ = config::DatabaseUrl{config::DatabaseKind::sqlite, "sqlite:///" + path_, path_};
      ready_ = true;
      return;
    }
    const auto base = postgres_base_url();
    if (!base) return;
    base_url_ = *base;
    schema_ = "t_" + suffix;
    postgres_execute(base_url_, "CREATE SCHEMA " + schema_);
    const char sep = base_url_.find('?') == std::string::npos ? '?' : '&';
    url_ = config::DatabaseUrl{config::DatabaseKind::postgresql,
                               fmt::format("{}{}options=-csearch_path%3D{}&application_name={}", base_url_, sep,
                                           schema_, schema_),
                               ""};
    ready_ = true;
  }
  ~Scratch() {
    if (!ready_) return;
    if (backend_ == Backend::sqlite) {
      std::error_code ignored;
      for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + ext, ignored);
      return;
    }
    try {
      postgres_execute(base_url_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "dropping schema " << schema_ << ": " << e.what();
    }
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  bool ready() const { return ready_; }
  const config::DatabaseUrl& url() const { return url_; }
  const std::string& base_url() const { return base_url_; }
  const std::string& schema() const { return schema_; }

 private:
  Backend backend_;
  bool ready_ = false;
  config::DatabaseUrl url_;
  std::string path_;
  std::string base_url_;
  std::string schema_;
};

/// A timestamp `n` seconds after a fixed instant, in the shape the service writes.
std::string ts(int n) { return fmt::format("2026-11-27T{:02}:{:02}:{:02}.123Z", 10 + n / 3600, n / 60 % 60, n % 60); }

Task new_task(const std::string& user_id, const std::string& title, const std::string& created_at,
              const std::string& status = "todo") {
  Task t;
  t.id = events::new_event_id();
  t.user_id = user_id;
  t.title = title;
  t.status = status;
  t.created_at = created_at;
  t.updated_at = created_at;
  return t;
}

std::string event_type(const Task* before, const Task* after) {
  if (!before) return "task_created";
  if (!after) return "task_deleted";
  return "task_updated";
}

/// Two events per change, like the service: the audit event and the live update. Leaves
/// key/user_id/seq/created_at/event_id empty so the store's defaults are exercised.
std::vector<OutboxRecord> two_events(const Task* before, const Task* after, std::int64_t seq) {
  const Task& t = after ? *after : *before;
  const auto type = event_type(before, after);
  OutboxRecord audit;
  audit.topic = "task-events";
  audit.event_type = type;
  audit.payload = nlohmann::json{{"type", type}, {"task_id", t.id}, {"seq", seq}, {"title", t.title}}.dump();
  OutboxRecord update = audit;
  update.topic = "task-updates";
  return {audit, update};
}

/// two_events, remembering each call.
class Recorder final {
 public:
  struct Call {
    std::optional<Task> before;
    std::optional<Task> after;
    std::int64_t seq;
  };

  EventFactory factory() {
    return [this](const Task* before, const Task* after, std::int64_t seq) {
      std::lock_guard lock(mutex_);
      calls_.push_back({before ? std::optional(*before) : std::nullopt, after ? std::optional(*after) : std::nullopt, seq});
      return two_events(before, after, seq);
    };
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Call> calls_;
};

const EventFactory kTwoEvents = two_events;
const EventFactory kThrowingEvents = [](const Task*, const Task*, std::int64_t) -> std::vector<OutboxRecord> {
  throw std::runtime_error("event factory failed");
};

std::function<bool(Task&)> set_title(std::string title) {
  return [title = std::move(title)](Task& t) {
    t.title = title;
    return true;
  };
}

/// An audit entry of `task_id`; task_data has quotes, a backslash and non-ASCII text so
/// that every backend's escaping is exercised.
AuditEntry audit_entry(const std::string& user_id, const std::string& task_id, std::optional<std::int64_t> seq,
                       const std::string& occurred_at, std::string event_id = events::new_event_id()) {
  AuditEntry a;
  a.event_id = std::move(event_id);
  a.user_id = user_id;
  a.task_id = task_id;
  a.type = "task_updated";
  a.action = "updated";
  a.seq = seq;
  a.occurred_at = occurred_at;
  a.task_data = nlohmann::json{{"id", task_id}, {"title", "say \"hi\" \\ {a,b} – ü"}, {"seq", seq.value_or(0)}}.dump();
  a.source_topic = "task-events";
  a.source_partition = 3;
  a.source_offset = seq.value_or(0) + 1000;
  return a;
}

std::vector<std::optional<std::int64_t>> audit_seqs(const std::vector<AuditEntry>& entries) {
  std::vector<std::optional<std::int64_t>> out;
  for (const auto& e : entries) out.push_back(e.seq);
  return out;
}

std::vector<std::string> event_ids_of(const std::vector<AuditEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.event_id);
  return out;
}

Notification new_notification(const std::string& user_id, const std::string& created_at,
                              const std::vector<std::string>& channels = {"in_app"}) {
  Notification n;
  n.id = events::new_event_id();
  n.user_id = user_id;
  n.task_id = events::new_event_id();
  n.type = "deadline_reminder";
  n.title = "Due soon";
  n.message = "\"write tests\" is due – tomorrow";
  n.email = "someone@example.com";
  n.event_id = events::new_event_id();
  n.created_at = created_at;
  for (const auto& c : channels) n.channels.push_back(ChannelStatus{c, "pending", "", created_at});
  return n;
}

std::vector<std::string> ids_of(const std::vector<Notification>& notifications) {
  std::vector<std::string> out;
  for (const auto& n : notifications) out.push_back(n.id);
  return out;
}

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    scratch_ = std::make_unique<Scratch>(GetParam());
    if (!scratch_->ready()) GTEST_FAIL() << "no database for this backend";
    store_ = open_store(scratch_->url());
    store_->migrate();
  }
  void TearDown() override {
    store_.reset();  // close every connection before the schema or file goes
    scratch_.reset();
  }

  User add_user(const std::string& email) {
    auto user = store_->create_user(email, "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA");
    if (!user) throw std::runtime_error("could not create user " + email);
    return *user;
  }

  Task add_task(const User& user, const std::string& title, int at, const std::string& status = "todo") {
    const auto result = store_->create_task(new_task(user.id, title, ts(at), status), kTwoEvents);
    if (result.status != ChangeStatus::ok || !result.task) throw std::runtime_error("could not create task " + title);
    return *result.task;
  }

  std::vector<std::int64_t> seqs_of(const std::string& user_id, const std::string& topic) {
    std::vector<std::int64_t> seqs;
    for (const auto& r : store_->events_after(user_id, topic, 0, 10000)) seqs.push_back(r.seq);
    return seqs;
  }

  std::unique_ptr<Scratch> scratch_;
  std::unique_ptr<Store> store_;
};

// ---- migrations

TEST_P(StoreTest, MigrateIsIdempotent) {
  store_->migrate();
  auto again = open_store(scratch_->url());
  again->migrate();
  again->migrate();
  EXPECT_TRUE(again->ping());
  const auto user = add_user("a@example.com");
  EXPECT_EQ(again->find_user(user.id), user) << "both stores see one database";
}

TEST_P(StoreTest, ConcurrentMigrationsOfAFreshDatabaseBothSucceed) {
  Scratch fresh(GetParam());
  ASSERT_TRUE(fresh.ready());
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(open_store(fresh.url()));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (auto& s : stores) {
    threads.emplace_back([&s, &failures] {
      try {
        s->migrate();
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << "concurrent migrate: " << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_TRUE(stores[0]->create_user("x@example.com", "h").has_value());
  EXPECT_FALSE(stores[1]->create_user("X@example.com", "h").has_value());
}

TEST_P(StoreTest, OpeningAnUnreachableDatabaseThrowsStorageError) {
  config::DatabaseUrl bad;
  if (GetParam() == Backend::sqlite) {
    bad = {config::DatabaseKind::sqlite, "sqlite:///no/such/dir/x.db", "/no/such/dir/x.db"};
  } else {
    // Right server, wrong password: libpq's message must not echo it.
    std::string url = scratch_->base_url();
    const auto scheme = url.find("://");
    const auto at = url.rfind('@');
    ASSERT_NE(at, std::string::npos) << "test URL has no credentials";
    url = url.substr(0, scheme + 3) + "taskstream:wrong-secret-pw" + url.substr(at);
    bad = {config::DatabaseKind::postgresql, url, ""};
  }
  try {
    open_store(bad);
    FAIL() << "open_store succeeded";
  } catch (const StorageError& e) {
    EXPECT_EQ(std::string(e.what()).find("wrong-secret-pw"), std::string::npos) << e.what();
  }
}

// ---- users

TEST_P(StoreTest, UsersAreUniqueIgnoringCase) {
  const auto alice = add_user("Alice@Example.com");
  EXPECT_EQ(alice.email, "Alice@Example.com") << "the email is kept as given";
  EXPECT_TRUE(events::is_uuid(alice.id));
  EXPECT_TRUE(events::is_rfc3339(alice.created_at));
  EXPECT_FALSE(store_->create_user("alice@example.com", "other").has_value());
  EXPECT_FALSE(store_->create_user("ALICE@EXAMPLE.COM", "other").has_value());

  EXPECT_EQ(store_->find_user_by_email("aLiCe@example.COM"), alice);
  EXPECT_EQ(store_->find_user(alice.id), alice);
  EXPECT_FALSE(store_->find_user_by_email("bob@example.com").has_value());
  EXPECT_FALSE(store_->find_user(events::new_event_id()).has_value());
  EXPECT_TRUE(store_->create_user("bob@example.com", "h").has_value());
}

TEST_P(StoreTest, FirstUserIsTheEarliestRegistered) {
  EXPECT_FALSE(store_->first_user().has_value());
  const auto first = add_user("first@example.com");
  add_user("second@example.com");
  add_user("third@example.com");
  EXPECT_EQ(store_->first_user(), first);
}

// ---- tasks

TEST_P(StoreTest, CreateAndGetAreScopedToTheOwner) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  Task task = new_task(alice.id, "write tests", "2026-11-27T12:00:00.123Z", "in_progress");
  task.description = "both backends";
  task.priority = "high";
  task.due_at = "2026-12-01T09:30:00Z";

  const auto created = store_->create_task(task, kTwoEvents);
  ASSERT_EQ(created.status, ChangeStatus::ok);
  EXPECT_EQ(created.task, task);
  EXPECT_EQ(created.seq, 1);

  EXPECT_EQ(store_->get_task(alice.id, task.id), task) << "every field, timestamps verbatim";
  EXPECT_FALSE(store_->get_task(bob.id, task.id).has_value());
  EXPECT_FALSE(store_->get_task(alice.id, events::new_event_id()).has_value());
  EXPECT_TRUE(store_->list_tasks(bob.id, std::nullopt, 100, std::nullopt).items.empty());
}

TEST_P(StoreTest, CreateWritesItsOutboxRowsWithDefaultsFilled) {
  const auto alice = add_user("alice@example.com");
  const EventFactory traced = [](const Task* before, const Task* after, std::int64_t seq) {
    auto records = two_events(before, after, seq);
    records[0].traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    records[0].event_id = "2f0c4a9e-1111-4222-8333-944455556666";
    records[0].subject = after->id;
    records[0].data_schema = "task-event/v1";
    return records;
  };
  const auto created = store_->create_task(new_task(alice.id, "t", ts(1)), traced);

  const auto rows = store_->fetch_unpublished(100);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_LT(rows[0].id, rows[1].id);
  EXPECT_EQ(rows[0].topic, "task-events");
  EXPECT_EQ(rows[1].topic, "task-updates");
  for (const auto& r : rows) {
    EXPECT_EQ(r.key, alice.id);
    EXPECT_EQ(r.user_id, alice.id);
    EXPECT_EQ(r.seq, created.seq);
    EXPECT_EQ(r.event_type, "task_created");
    EXPECT_TRUE(events::is_rfc3339(r.created_at)) << r.created_at;
    EXPECT_TRUE(events::is_uuid(r.event_id)) << r.event_id;
    EXPECT_EQ(nlohmann::json::parse(r.payload).at("task_id"), created.task->id);
  }
  EXPECT_EQ(rows[0].traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(rows[0].event_id, "2f0c4a9e-1111-4222-8333-944455556666");
  EXPECT_EQ(rows[1].traceparent, "");
  EXPECT_NE(rows[0].event_id, rows[1].event_id);
  EXPECT_EQ(rows[0].subject, created.task->id) << "the CloudEvents subject and schema round-trip";
  EXPECT_EQ(rows[0].data_schema, "task-event/v1");
  EXPECT_EQ(rows[1].subject, "");
  EXPECT_EQ(rows[1].data_schema, "");
}

TEST_P(StoreTest, UpdateBumpsVersionAndHandsBeforeAndAfterToTheFactory) {
  const auto alice = add_user("alice@example.com");
  const auto task = add_task(alice, "draft", 1);
  Recorder recorder;

  const auto result = store_->update_task(
      alice.id, task.id,
      [](Task& t) {
        t.status = "done";
        t.completed_at = "2026-11-27T13:00:00.000Z";
        t.description = "finished";
        t.id = "tampered";  // identity fields are not the callback's to change
        return true;
      },
      std::optional<std::int64_t>(1), "2026-11-27T13:00:00.000Z", recorder.factory());

  ASSERT_EQ(result.status, ChangeStatus::ok);
  ASSERT_TRUE(result.task);
  EXPECT_EQ(result.seq, 2);
  Task expected = task;
  expected.status = "done";
  expected.completed_at = "2026-11-27T13:00:00.000Z";
  expected.description = "finished";
  expected.version = 2;
  expected.updated_at = "2026-11-27T13:00:00.000Z";
  EXPECT_EQ(*result.task, expected);
  EXPECT_EQ(store_->get_task(alice.id, task.id), expected);

  const auto calls = recorder.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].before, task);
  EXPECT_EQ(calls[0].after, expected);
  EXPECT_EQ(calls[0].seq, 2);
  EXPECT_EQ(seqs_of(alice.id, "task-updates"), (std::vector<std::int64_t>{1, 2}));

  // Clearing optional fields stores NULL, not an empty string.
  const auto cleared = store_->update_task(
      alice.id, task.id,
      [](Task& t) {
        t.description.reset();
        t.completed_at.reset();
        return true;
      },
      std::nullopt, ts(7), kTwoEvents);
  ASSERT_EQ(cleared.status, ChangeStatus::ok);
  const auto stored = store_->get_task(alice.id, task.id);
  ASSERT_TRUE(stored);
  EXPECT_FALSE(stored->description.has_value());
  EXPECT_FALSE(stored->completed_at.has_value());
  EXPECT_EQ(stored->version, 3);
}

TEST_P(StoreTest, UpdateOfAForeignOrMissingTaskIsNotFound) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  const auto task = add_task(alice, "mine", 1);
  Recorder recorder;

  const auto foreign = store_->update_task(bob.id, task.id, set_title("stolen"), std::nullopt, ts(2), recorder.factory());
  EXPECT_EQ(foreign.status, ChangeStatus::not_found);
  EXPECT_FALSE(foreign.task.has_value());
  const auto missing =
      store_->update_task(alice.id, events::new_event_id(), set_title("x"), std::nullopt, ts(2), recorder.factory());
  EXPECT_EQ(missing.status, ChangeStatus::not_found);

  EXPECT_TRUE(recorder.calls().empty());
  EXPECT_EQ(store_->get_task(alice.id, task.id), task);
  EXPECT_TRUE(seqs_of(bob.id, "task-events").empty());
}

TEST_P(StoreTest, StaleExpectedVersionIsAConflictThatChangesNothing) {
  const auto alice = add_user("alice@example.com");
  const auto task = add_task(alice, "v1", 1);
  ASSERT_EQ(store_->update_task(alice.id, task.id, set_title("v2"), 1, ts(2), kTwoEvents).status, ChangeStatus::ok);
  const auto current = store_->get_task(alice.id, task.id);
  Recorder recorder;
  bool mutated = false;

  const auto result = store_->update_task(
      alice.id, task.id,
      [&](Task& t) {
        mutated = true;
        t.title = "lost update";
        return true;
      },
      1, ts(3), recorder.factory());

  EXPECT_EQ(result.status, ChangeStatus::version_conflict);
  EXPECT_EQ(result.task, current) << "the conflict reports the task as it is";
  EXPECT_EQ(result.seq, 0);
  EXPECT_FALSE(mutated);
  EXPECT_TRUE(recorder.calls().empty());
  EXPECT_EQ(store_->get_task(alice.id, task.id), current);
  EXPECT_EQ(seqs_of(alice.id, "task-events"), (std::vector<std::int64_t>{1, 2}));
  // The next real change takes the next seq: the conflict consumed none.
  EXPECT_EQ(store_->update_task(alice.id, task.id, set_title("v3"), 2, ts(4), kTwoEvents).seq, 3);
}

TEST_P(StoreTest, MutateReturningFalseChangesNothingAndEmitsNothing) {
  const auto alice = add_user("alice@example.com");
  const auto task = add_task(alice, "same", 1);
  Recorder recorder;

  const auto result = store_->update_task(alice.id, task.id, [](Task&) { return false; }, 1, ts(5), recorder.factory());

  EXPECT_EQ(result.status, ChangeStatus::ok);
  EXPECT_EQ(result.task, task);
  EXPECT_EQ(result.seq, 0);
  EXPECT_TRUE(recorder.calls().empty());
  EXPECT_EQ(store_->get_task(alice.id, task.id), task) << "no version bump, no updated_at";
  EXPECT_EQ(store_->outbox_stats().waiting, 2) << "only the create's rows";
  EXPECT_EQ(store_->update_task(alice.id, task.id, set_title("x"), std::nullopt, ts(6), kTwoEvents).seq, 2);
}

TEST_P(StoreTest, DeleteIsScopedToTheOwnerAndWritesItsEvent) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  const auto task = add_task(alice, "doomed", 1);
  Recorder recorder;

  EXPECT_EQ(store_->delete_task(bob.id, task.id, recorder.factory()).status, ChangeStatus::not_found);
  EXPECT_TRUE(store_->get_task(alice.id, task.id).has_value());
  EXPECT_TRUE(recorder.calls().empty());

  const auto result = store_->delete_task(alice.id, task.id, recorder.factory());
  EXPECT_EQ(result.status, ChangeStatus::ok);
  EXPECT_EQ(result.seq, 2);
  EXPECT_FALSE(store_->get_task(alice.id, task.id).has_value());
  const auto calls = recorder.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].before, task);
  EXPECT_FALSE(calls[0].after.has_value());
  const auto rows = store_->events_after(alice.id, "task-events", 1, 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].event_type, "task_deleted");

  EXPECT_EQ(store_->delete_task(alice.id, task.id, recorder.factory()).status, ChangeStatus::not_found);
  EXPECT_EQ(recorder.calls().size(), 1u);
}

// ---- seq

TEST_P(StoreTest, SeqGrowsByOnePerUserAndUsersAreIndependent) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  std::vector<std::int64_t> alice_seqs, bob_seqs;
  const auto a1 = store_->create_task(new_task(alice.id, "a1", ts(1)), kTwoEvents);
  alice_seqs.push_back(a1.seq);
  bob_seqs.push_back(store_->create_task(new_task(bob.id, "b1", ts(2)), kTwoEvents).seq);
  alice_seqs.push_back(store_->update_task(alice.id, a1.task->id, set_title("a1'"), 1, ts(3), kTwoEvents).seq);
  const auto b2 = store_->create_task(new_task(bob.id, "b2", ts(4)), kTwoEvents);
  bob_seqs.push_back(b2.seq);
  alice_seqs.push_back(store_->create_task(new_task(alice.id, "a2", ts(5)), kTwoEvents).seq);
  bob_seqs.push_back(store_->delete_task(bob.id, b2.task->id, kTwoEvents).seq);
  alice_seqs.push_back(store_->delete_task(alice.id, a1.task->id, kTwoEvents).seq);

  EXPECT_EQ(alice_seqs, (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(bob_seqs, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(seqs_of(alice.id, "task-updates"), alice_seqs);
  EXPECT_EQ(seqs_of(bob.id, "task-events"), bob_seqs);
}

TEST_P(StoreTest, AFailingEventFactoryRollsTheWholeChangeBack) {
  const auto alice = add_user("alice@example.com");
  const auto doomed = new_task(alice.id, "never stored", ts(1));
  EXPECT_THROW(store_->create_task(doomed, kThrowingEvents), std::runtime_error);
  EXPECT_FALSE(store_->get_task(alice.id, doomed.id).has_value());
  EXPECT_EQ(store_->outbox_stats().waiting, 0);

  const auto task = add_task(alice, "kept", 2);
  EXPECT_EQ(seqs_of(alice.id, "task-events"), std::vector<std::int64_t>{1}) << "the failed create took no seq";

  EXPECT_THROW(store_->update_task(alice.id, task.id, set_title("never"), std::nullopt, ts(3), kThrowingEvents),
               std::runtime_error);
  EXPECT_THROW(store_->update_task(
                   alice.id, task.id, [](Task&) -> bool { throw std::logic_error("mutate failed"); }, std::nullopt,
                   ts(3), kTwoEvents),
               std::logic_error);
  EXPECT_THROW(store_->delete_task(alice.id, task.id, kThrowingEvents), std::runtime_error);
  EXPECT_EQ(store_->get_task(alice.id, task.id), task);
  EXPECT_EQ(store_->outbox_stats().waiting, 2);

  EXPECT_EQ(store_->update_task(alice.id, task.id, set_title("next"), 1, ts(4), kTwoEvents).seq, 2);
  EXPECT_EQ(seqs_of(alice.id, "task-events"), (std::vector<std::int64_t>{1, 2}));
}

TEST_P(StoreTest, ConcurrentUpdatesOfOneUserTakeEverySeqExactlyOnce) {
  constexpr int kThreads = 8;
  constexpr int kUpdatesPerThread = 16;
  const auto alice = add_user("alice@example.com");
  const auto shared = add_task(alice, "shared", 0);
  std::vector<Task> own;
  for (int i = 0; i < kThreads; ++i) own.push_back(add_task(alice, fmt::format("own {}", i), i + 1));

  std::vector<std::int64_t> seqs{1};
  for (int i = 0; i < kThreads; ++i) seqs.push_back(i + 2);
  std::mutex seqs_mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kUpdatesPerThread; ++i) {
        // Half on a task every thread changes (row contention), half on one of its own.
        const auto& id = i % 2 == 0 ? shared.id : own[t].id;
        try {
          const auto r = store_->update_task(alice.id, id, set_title(fmt::format("{}-{}", t, i)), std::nullopt,
                                             ts(100 + i), kTwoEvents);
          ASSERT_EQ(r.status, ChangeStatus::ok);
          std::lock_guard lock(seqs_mutex);
          seqs.push_back(r.seq);
        } catch (const std::exception& e) {
          ADD_FAILURE() << "thread " << t << " update " << i << ": " << e.what();
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  const auto total = 1 + kThreads + kThreads * kUpdatesPerThread;
  std::sort(seqs.begin(), seqs.end());
  std::vector<std::int64_t> expected(total);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(seqs, expected);
  EXPECT_EQ(seqs_of(alice.id, "task-updates"), expected) << "outbox rows: seqs 1..N in order, no gap, no repeat";
  EXPECT_EQ(store_->get_task(alice.id, shared.id)->version, 1 + kThreads * kUpdatesPerThread / 2);

  // Within the user, outbox ids (the relay's publishing order) follow seq order.
  const auto rows = store_->fetch_unpublished(10000);
  std::int64_t last = 0;
  for (const auto& r : rows) {
    if (r.topic != "task-updates") continue;
    EXPECT_EQ(r.seq, last + 1);
    last = r.seq;
  }
}

// ---- listing

TEST_P(StoreTest, CursorPaginationVisitsEveryTaskOnceNewestFirst) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  const std::vector<std::string> statuses{"todo", "in_progress", "done"};
  std::vector<Task> tasks;
  for (int i = 0; i < 23; ++i) {
    // Pairs share created_at, so the id tie-break is exercised at page edges.
    tasks.push_back(add_task(alice, fmt::format("t{}", i), i / 2, statuses[static_cast<std::size_t>(i) % 3]));
  }
  add_task(bob, "not alice's", 5);
  std::sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) {
    return std::tie(a.created_at, a.id) > std::tie(b.created_at, b.id);
  });

  const auto walk = [&](const std::optional<std::string>& status, int limit) {
    std::vector<Task> seen;
    std::optional<std::string> cursor;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = store_->list_tasks(alice.id, status, limit, cursor);
      EXPECT_LE(page.items.size(), static_cast<std::size_t>(limit));
      seen.insert(seen.end(), page.items.begin(), page.items.end());
      if (!page.next_cursor) break;
      EXPECT_FALSE(page.items.empty());
      cursor = page.next_cursor;
    }
    return seen;
  };

  EXPECT_EQ(walk(std::nullopt, 5), tasks);
  EXPECT_EQ(walk(std::nullopt, 23), tasks);
  EXPECT_EQ(walk(std::nullopt, 100), tasks);
  for (const auto& status : statuses) {
    std::vector<Task> expected;
    std::copy_if(tasks.begin(), tasks.end(), std::back_inserter(expected),
                 [&](const Task& t) { return t.status == status; });
    EXPECT_EQ(walk(status, 3), expected) << status;
  }
  EXPECT_TRUE(walk(std::string("no-such-status"), 10).empty());

  // A full last page still says there is nothing more only once it knows.
  const auto exact = store_->list_tasks(alice.id, std::nullopt, 23, std::nullopt);
  EXPECT_EQ(exact.items.size(), 23u);
  EXPECT_FALSE(exact.next_cursor.has_value());
}

TEST_P(StoreTest, PageLimitIsClampedTo1Through100) {
  const auto alice = add_user("alice@example.com");
  for (int i = 0; i < 101; ++i) add_task(alice, fmt::format("t{}", i), i);

  for (const int limit : {0, -7}) {
    const auto page = store_->list_tasks(alice.id, std::nullopt, limit, std::nullopt);
    EXPECT_EQ(page.items.size(), 1u) << limit;
    EXPECT_TRUE(page.next_cursor.has_value());
  }
  const auto big = store_->list_tasks(alice.id, std::nullopt, 1000, std::nullopt);
  EXPECT_EQ(big.items.size(), 100u);
  ASSERT_TRUE(big.next_cursor.has_value());
  const auto rest = store_->list_tasks(alice.id, std::nullopt, 1000, big.next_cursor);
  ASSERT_EQ(rest.items.size(), 1u);
  EXPECT_EQ(rest.items[0].title, "t0");
  EXPECT_FALSE(rest.next_cursor.has_value());
}

TEST_P(StoreTest, AMalformedCursorIsANonRetriableError) {
  const auto alice = add_user("alice@example.com");
  add_task(alice, "t", 1);
  for (const std::string cursor : {"", "not a cursor", "%%%%", "Zm9v", "AAAA", "A", "MgpYClk"}) {
    try {
      store_->list_tasks(alice.id, std::nullopt, 10, cursor);
      ADD_FAILURE() << "accepted cursor '" << cursor << "'";
    } catch (const StorageError& e) {
      EXPECT_FALSE(e.is_retriable()) << cursor;
    }
  }
}

// ---- outbox

TEST_P(StoreTest, FetchUnpublishedMarkPublishedAndStats) {
  EXPECT_EQ(store_->outbox_stats().waiting, 0);
  EXPECT_FALSE(store_->outbox_stats().oldest_waiting.has_value());
  EXPECT_TRUE(store_->fetch_unpublished(10).empty());

  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  const auto a = add_task(alice, "a", 1);
  add_task(bob, "b", 2);
  store_->update_task(alice.id, a.id, set_title("a'"), std::nullopt, ts(3), kTwoEvents);

  const auto all = store_->fetch_unpublished(100);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.id < y.id; }));
  EXPECT_EQ(all[0].user_id, alice.id);
  EXPECT_EQ(all[2].user_id, bob.id);
  EXPECT_EQ(all[4].seq, 2);

  const auto first = store_->fetch_unpublished(4);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first.back().id, all[3].id);

  auto stats = store_->outbox_stats();
  EXPECT_EQ(stats.waiting, 6);
  EXPECT_EQ(stats.oldest_waiting, all[0].created_at);

  store_->mark_published({all[0].id, all[1].id});
  store_->mark_published({all[0].id, all[1].id});  // idempotent
  store_->mark_published({});
  store_->mark_published({all.back().id + 1000});  // unknown ids are ignored

  const auto rest = store_->fetch_unpublished(100);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest.front().id, all[2].id);
  stats = store_->outbox_stats();
  EXPECT_EQ(stats.waiting, 4);
  EXPECT_EQ(stats.oldest_waiting, all[2].created_at);

  std::vector<std::int64_t> ids;
  for (const auto& r : rest) ids.push_back(r.id);
  store_->mark_published(ids);
  EXPECT_TRUE(store_->fetch_unpublished(100).empty());
  EXPECT_EQ(store_->outbox_stats().waiting, 0);
  EXPECT_FALSE(store_->outbox_stats().oldest_waiting.has_value());
}

// The relay's fetch past the rows it holds (in flight or being marked): the oldest
// unpublished rows by id that are not skipped, `limit` of them however many are skipped.
TEST_P(StoreTest, FetchUnpublishedSkippingStepsOverHeldRowsInIdOrder) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  for (int i = 0; i < 5; ++i) {
    add_task(alice, fmt::format("a{}", i), 1 + i);
    add_task(bob, fmt::format("b{}", i), 1 + i);
  }
  const auto all = store_->fetch_unpublished(100);
  ASSERT_EQ(all.size(), 20u);
  EXPECT_EQ(store_->fetch_unpublished_skipping(100, {}).size(), 20u);

  // Held: the first 8 and two further apart; the next 5 not held come back, by id.
  std::unordered_set<std::int64_t> held;
  for (std::size_t i = 0; i < 8; ++i) held.insert(all[i].id);
  held.insert(all[10].id);
  held.insert(all[12].id);
  const auto next = store_->fetch_unpublished_skipping(5, held);
  ASSERT_EQ(next.size(), 5u);
  const std::vector<std::int64_t> want{all[8].id, all[9].id, all[11].id, all[13].id, all[14].id};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(next[i].id, want[i]);
    const auto& same = *std::find_if(all.begin(), all.end(), [&](const auto& r) { return r.id == want[i]; });
    EXPECT_EQ(next[i].payload, same.payload);
    EXPECT_EQ(next[i].event_id, same.event_id);
  }

  // Published rows are never returned; everything held or published: nothing.
  store_->mark_published({all[8].id, all[9].id});
  EXPECT_EQ(store_->fetch_unpublished_skipping(1, held).front().id, all[11].id);
  for (std::size_t i = 11; i < 20; ++i) held.insert(all[i].id);
  EXPECT_TRUE(store_->fetch_unpublished_skipping(10, held).empty());
}

TEST_P(StoreTest, EventsAfterReturnsAUsersTopicBySeqPublishedOrNot) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  const auto task = add_task(alice, "t", 1);
  add_task(bob, "b", 1);
  for (int i = 0; i < 4; ++i) store_->update_task(alice.id, task.id, set_title(fmt::format("v{}", i)), std::nullopt, ts(2 + i), kTwoEvents);
  std::vector<std::int64_t> published;
  for (const auto& r : store_->fetch_unpublished(3)) published.push_back(r.id);
  store_->mark_published(published);

  const auto after2 = store_->events_after(alice.id, "task-updates", 2, 100);
  ASSERT_EQ(after2.size(), 3u);
  for (std::size_t i = 0; i < after2.size(); ++i) {
    EXPECT_EQ(after2[i].seq, static_cast<std::int64_t>(i) + 3);
    EXPECT_EQ(after2[i].topic, "task-updates");
    EXPECT_EQ(after2[i].user_id, alice.id);
  }
  EXPECT_EQ(seqs_of(alice.id, "task-events"), (std::vector<std::int64_t>{1, 2, 3, 4, 5})) << "published rows included";
  const auto limited = store_->events_after(alice.id, "task-updates", 0, 2);
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[1].seq, 2);
  EXPECT_TRUE(store_->events_after(alice.id, "task-updates", 5, 100).empty());
  EXPECT_TRUE(store_->events_after(alice.id, "notification.request", 0, 100).empty());
  EXPECT_EQ(seqs_of(bob.id, "task-updates"), std::vector<std::int64_t>{1});
}

// ---- audit trail

TEST_P(StoreTest, RecordAuditCountsNewEventsAndSkipsDuplicates) {
  // Users the store has never seen: events may name them, so no foreign key may object.
  const std::string user = events::new_event_id();
  const std::string task = events::new_event_id();
  EXPECT_EQ(store_->record_audit("audit", {}), 0u);

  std::vector<AuditEntry> batch;
  for (int i = 1; i <= 4; ++i) batch.push_back(audit_entry(user, task, i, ts(i)));
  batch[2].recorded_at = "2026-11-27T09:00:00.000Z";  // given: kept
  batch.push_back(batch[1]);                            // a duplicate inside the batch
  batch.back().type = "task_deleted";                   // ...which must not win
  EXPECT_EQ(store_->record_audit("audit", batch), 4u);

  auto history = store_->task_history(user, task);
  ASSERT_EQ(history.size(), 4u);
  for (std::size_t i = 0; i < history.size(); ++i) {
    auto expected = batch[i];
    if (i == 2) {
      EXPECT_EQ(history[i].recorded_at, "2026-11-27T09:00:00.000Z");
    } else {
      EXPECT_TRUE(events::is_rfc3339(history[i].recorded_at)) << history[i].recorded_at;
      expected.recorded_at = history[i].recorded_at;
    }
    EXPECT_EQ(history[i], expected) << "every field round-trips, entry " << i;
  }

  // Across calls: two already recorded, one new (twice), one with no seq.
  const auto fresh = audit_entry(user, task, 5, ts(5));
  const auto unsequenced = audit_entry(user, task, std::nullopt, ts(6));
  EXPECT_EQ(store_->record_audit("audit", {batch[0], fresh, batch[3], fresh, unsequenced}), 2u);
  EXPECT_EQ(store_->record_audit("audit", {batch[0], fresh, unsequenced}), 0u);
  history = store_->task_history(user, task);
  ASSERT_EQ(history.size(), 6u);
  EXPECT_FALSE(history.back().seq.has_value());
  EXPECT_EQ(history.back().event_id, unsequenced.event_id);
}

TEST_P(StoreTest, ProcessedIsPerConsumerGroup) {
  const std::string user = events::new_event_id();
  const std::string task = events::new_event_id();
  const auto a = audit_entry(user, task, 1, ts(1));
  const auto b = audit_entry(user, task, 2, ts(2));
  EXPECT_FALSE(store_->processed("audit", a.event_id));
  EXPECT_EQ(store_->record_audit("audit", {a}), 1u);
  EXPECT_TRUE(store_->processed("audit", a.event_id));
  EXPECT_FALSE(store_->processed("audit", b.event_id));
  EXPECT_FALSE(store_->processed("audit-replay", a.event_id)) << "groups are independent";

  // Another group replaying the topic: new to it, yet still one audit row per event.
  EXPECT_EQ(store_->record_audit("audit-replay", {a, b}), 2u);
  EXPECT_TRUE(store_->processed("audit-replay", a.event_id));
  EXPECT_TRUE(store_->processed("audit-replay", b.event_id));
  EXPECT_FALSE(store_->processed("audit", b.event_id));
  EXPECT_EQ(store_->task_history(user, task).size(), 2u);
  EXPECT_EQ(store_->record_audit("audit", {a, b}), 1u);
  EXPECT_EQ(store_->task_history(user, task).size(), 2u);
}

TEST_P(StoreTest, RecordAuditRejectsAnEmptyEventIdAndChangesNothing) {
  const std::string user = events::new_event_id();
  const auto good = audit_entry(user, "t", 1, ts(1));
  auto bad = audit_entry(user, "t", 2, ts(2));
  bad.event_id.clear();
  try {
    store_->record_audit("audit", {good, bad});
    FAIL() << "accepted an empty event_id";
  } catch (const StorageError& e) {
    EXPECT_FALSE(e.is_retriable());
  }
  EXPECT_FALSE(store_->processed("audit", good.event_id));
  EXPECT_TRUE(store_->task_history(user, "t").empty());
}

TEST_P(StoreTest, TaskHistoryIsOrderedBySeqThenTimeAndScopedToTheUser) {
  const std::string alice = events::new_event_id();
  const std::string bob = events::new_event_id();
  const std::string task = events::new_event_id();

  // With seqs, in two batches, each out of order: seq order wins over time and arrival.
  store_->record_audit("audit", {audit_entry(alice, task, 3, ts(1)), audit_entry(alice, task, 1, ts(3))});
  store_->record_audit("audit", {audit_entry(alice, task, 2, ts(2)), audit_entry(alice, task, 5, ts(5)),
                                 audit_entry(alice, task, 4, ts(4))});
  EXPECT_EQ(audit_seqs(store_->task_history(alice, task)), (std::vector<std::optional<std::int64_t>>{1, 2, 3, 4, 5}));

  // Without seqs (seed messages): by occurred_at as an instant, whatever its offset or
  // fraction length; equal times in recorded order.
  const std::string seedless = events::new_event_id();
  const auto at30 = audit_entry(alice, seedless, std::nullopt, ts(30));
  const auto at10 = audit_entry(alice, seedless, std::nullopt, ts(10));
  const auto at20 = audit_entry(alice, seedless, std::nullopt, "2026-11-27T12:00:20.123+02:00");
  const auto at25 = audit_entry(alice, seedless, std::nullopt, "2026-11-27T10:00:25Z");
  const auto at25_123 = audit_entry(alice, seedless, std::nullopt, ts(25));
  const auto at10_again = audit_entry(alice, seedless, std::nullopt, ts(10));
  store_->record_audit("audit", {at30, at10, at20});
  store_->record_audit("audit", {at25_123, at25, at10_again});
  EXPECT_EQ(event_ids_of(store_->task_history(alice, seedless)),
            (std::vector<std::string>{at10.event_id, at10_again.event_id, at20.event_id, at25.event_id,
                                      at25_123.event_id, at30.event_id}));

  // Mixed: the sequenced ones keep seq order, the others slot in by time.
  const std::string mixed = events::new_event_id();
  const auto s1 = audit_entry(alice, mixed, 1, ts(5));
  const auto s2 = audit_entry(alice, mixed, 2, ts(15));
  const auto u = audit_entry(alice, mixed, std::nullopt, ts(10));
  store_->record_audit("audit", {s2, u, s1});
  EXPECT_EQ(event_ids_of(store_->task_history(alice, mixed)),
            (std::vector<std::string>{s1.event_id, u.event_id, s2.event_id}));

  // Scoping: only the owner sees a task's trail; another task's rows stay out.
  store_->record_audit("audit", {audit_entry(bob, events::new_event_id(), 1, ts(1))});
  EXPECT_TRUE(store_->task_history(bob, task).empty());
  EXPECT_TRUE(store_->task_history(alice, events::new_event_id()).empty());
  for (const auto& e : store_->task_history(alice, task)) {
    EXPECT_EQ(e.user_id, alice);
    EXPECT_EQ(e.task_id, task);
  }
}

TEST_P(StoreTest, RecordAuditOfTenThousandEntriesIsOneFastTransaction) {
  constexpr int kEntries = 10'000;
  const std::string user = events::new_event_id();
  std::vector<std::string> tasks;
  for (int i = 0; i < 100; ++i) tasks.push_back(events::new_event_id());
  std::vector<AuditEntry> batch;
  batch.reserve(kEntries);
  for (int i = 0; i < kEntries; ++i) {
    batch.push_back(audit_entry(user, tasks[static_cast<std::size_t>(i) % tasks.size()], i + 1, ts(i % 3600)));
  }

  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(store_->record_audit("audit", batch), static_cast<std::size_t>(kEntries));
  const auto first = std::chrono::steady_clock::now() - start;
  const auto again_start = std::chrono::steady_clock::now();
  EXPECT_EQ(store_->record_audit("audit", batch), 0u);
  const auto again = std::chrono::steady_clock::now() - again_start;

  const auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "[   perf   ] record_audit " << kEntries << " entries (" << (GetParam() == Backend::sqlite ? "sqlite" : "postgres")
            << "): " << ms(first) << " ms new, " << ms(again) << " ms all duplicates\n";
  RecordProperty("record_audit_ms", static_cast<int>(ms(first)));
  // Printed, not asserted: a benchmark is not a timed test.

  const auto history = store_->task_history(user, tasks[7]);
  ASSERT_EQ(history.size(), static_cast<std::size_t>(kEntries) / tasks.size());
  EXPECT_EQ(history.front().seq, 8);
  EXPECT_EQ(history.back().seq, kEntries - 100 + 8);
  EXPECT_TRUE(std::is_sorted(history.begin(), history.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; }));
}

TEST_P(StoreTest, ConcurrentOverlappingAuditBatchesRecordEachEventOnce) {
  constexpr int kThreads = 4;
  const std::string user = events::new_event_id();
  const std::string task = events::new_event_id();
  std::vector<AuditEntry> all;
  for (int i = 0; i < 400; ++i) all.push_back(audit_entry(user, task, i + 1, ts(i)));
  std::atomic<std::size_t> fresh{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread covers 200 entries starting at its own offset, in its own order.
      std::vector<AuditEntry> batch(all.begin() + t * 50, all.begin() + t * 50 + 200);
      if (t % 2 == 1) std::reverse(batch.begin(), batch.end());
      for (int attempt = 0;; ++attempt) {
        try {
          fresh += store_->record_audit("audit", batch);
          return;
        } catch (const StorageError& e) {
          if (!e.is_retriable() || attempt >= 5) {
            ADD_FAILURE() << "thread " << t << ": " << e.what();
            return;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(fresh.load(), 350u) << "entries 0..349 are covered, each counted once";
  EXPECT_EQ(store_->task_history(user, task).size(), 350u);
}

// ---- notifications

TEST_P(StoreTest, EmailQueueLeasesEachDueEmailUntilItIsSentOrItsLeaseEnds) {
  const auto alice = add_user("alice@example.com");
  auto n = new_notification(alice.id, ts(1), {"in_app", "email"});
  n.channels[0].status = "sent";
  n.source_topic = "notification.request";
  n.source_partition = 2;
  n.source_offset = 41;
  ASSERT_TRUE(store_->create_notification("notify", n).second);
  EXPECT_EQ(store_->get_notification(n.id), n) << "the source position is kept";
  auto no_email = new_notification(alice.id, ts(2), {"in_app", "email"});
  no_email.channels[1].status = "skipped";
  store_->create_notification("notify", no_email);

  auto claims = store_->claim_due_emails(1000, 500, 10);
  ASSERT_EQ(claims.size(), 1u) << "only the pending email channel";
  EXPECT_EQ(claims[0].notification_id, n.id);
  EXPECT_EQ(claims[0].attempts, 1);
  EXPECT_FALSE(claims[0].first_failure.has_value());
  EXPECT_TRUE(store_->claim_due_emails(1499, 500, 10).empty()) << "leased";
  claims = store_->claim_due_emails(1500, 500, 10);
  ASSERT_EQ(claims.size(), 1u) << "the lease ended (a sender died mid-send)";
  EXPECT_EQ(claims[0].attempts, 2);

  store_->retry_email_later(n.id, 5000, "attempt 2 failed", ts(3));
  auto stored = store_->get_notification(n.id);
  EXPECT_EQ(stored->channels[1].status, "pending");
  EXPECT_EQ(stored->channels[1].detail, "attempt 2 failed");
  EXPECT_TRUE(store_->claim_due_emails(4999, 500, 10).empty());
  claims = store_->claim_due_emails(5000, 500, 10);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].attempts, 3);
  EXPECT_EQ(claims[0].first_failure, ts(3));
  store_->retry_email_later(n.id, 6000, "attempt 3 failed", ts(4));
  EXPECT_EQ(store_->claim_due_emails(6000, 500, 10).at(0).first_failure, ts(3)) << "the first failure stays";

  store_->set_channel_status(n.id, "email", "sent", "", ts(5));
  EXPECT_TRUE(store_->claim_due_emails(1'000'000'000'000, 500, 10).empty()) << "sent: out of the queue";
  store_->retry_email_later(n.id, 0, "late", ts(6));
  EXPECT_EQ(store_->get_notification(n.id)->channels[1].status, "sent") << "a late retry does not reopen it";
}

TEST_P(StoreTest, RearmFailedEmailReopensOnlyAFailedEmailWithFreshAttempts) {
  const auto alice = add_user("alice@example.com");
  auto n = new_notification(alice.id, ts(1), {"in_app", "email"});
  n.channels[0].status = "sent";
  ASSERT_TRUE(store_->create_notification("notify", n).second);
  EXPECT_FALSE(store_->rearm_failed_email(n.event_id, "redriven", ts(2))) << "pending: nothing to re-arm";

  ASSERT_EQ(store_->claim_due_emails(1000, 500, 10).size(), 1u);
  store_->retry_email_later(n.id, 2000, "attempt 1 failed", ts(2));
  ASSERT_EQ(store_->claim_due_emails(2000, 500, 10).at(0).attempts, 2);
  store_->set_channel_status(n.id, "email", "failed", "retries exhausted", ts(3));
  EXPECT_TRUE(store_->claim_due_emails(1'000'000, 500, 10).empty());

  EXPECT_FALSE(store_->rearm_failed_email("no-such-event", "redriven", ts(4)));
  EXPECT_TRUE(store_->rearm_failed_email(n.event_id, "redriven from x.dlq@0:7", ts(4)));
  auto stored = store_->get_notification(n.id);
  EXPECT_EQ(stored->channels[0].status, "sent") << "other channels untouched";
  EXPECT_EQ(stored->channels[1].status, "pending");
  EXPECT_EQ(stored->channels[1].detail, "redriven from x.dlq@0:7");
  EXPECT_EQ(stored->channels[1].updated_at, ts(4));
  auto claims = store_->claim_due_emails(3000, 500, 10);
  ASSERT_EQ(claims.size(), 1u) << "due at once";
  EXPECT_EQ(claims[0].attempts, 1) << "a fresh round of attempts";
  EXPECT_FALSE(claims[0].first_failure.has_value());

  store_->set_channel_status(n.id, "email", "sent", "", ts(5));
  EXPECT_FALSE(store_->rearm_failed_email(n.event_id, "redriven again", ts(6))) << "a sent email is never re-armed";
  EXPECT_EQ(store_->get_notification(n.id)->channels[1].status, "sent");
}

TEST_P(StoreTest, EmailQueueShowsPendingAndFailedAndRetryNowNeverReopensASentOne) {
  const auto alice = add_user("alice@example.com");
  auto later = new_notification(alice.id, ts(1), {"email"});
  auto failing = new_notification(alice.id, ts(2), {"email"});
  auto sent = new_notification(alice.id, ts(3), {"email"});
  for (auto* n : {&later, &failing, &sent}) ASSERT_TRUE(store_->create_notification("notify", *n).second);
  ASSERT_EQ(store_->claim_due_emails(1000, 500, 10).size(), 3u);
  store_->retry_email_later(later.id, 9000, "421 try later", ts(4));
  store_->set_channel_status(failing.id, "email", "failed", "550 no such mailbox", ts(5));
  store_->set_channel_status(sent.id, "email", "sent", "", ts(6));

  auto q = store_->email_queue(50);
  EXPECT_EQ(q.pending, 1);
  EXPECT_EQ(q.failed, 1);
  ASSERT_EQ(q.items.size(), 2u);
  EXPECT_EQ(q.items[0].notification_id, later.id);
  EXPECT_EQ(q.items[0].status, "pending");
  EXPECT_EQ(q.items[0].next_attempt_ms, 9000);
  EXPECT_EQ(q.items[0].attempts, 1);
  EXPECT_EQ(q.items[0].detail, "421 try later");
  EXPECT_EQ(q.items[0].first_failure, ts(4));
  EXPECT_EQ(q.items[0].user_id, alice.id);
  EXPECT_EQ(q.items[1].notification_id, failing.id);
  EXPECT_EQ(q.items[1].status, "failed");
  EXPECT_EQ(q.items[1].detail, "550 no such mailbox");

  EXPECT_TRUE(store_->retry_email_now(later.id, "retried by ops@example.com", ts(7)));
  EXPECT_TRUE(store_->retry_email_now(failing.id, "retried by ops@example.com", ts(7)));
  EXPECT_FALSE(store_->retry_email_now(sent.id, "retried", ts(7))) << "a sent email is never sent again";
  EXPECT_FALSE(store_->retry_email_now("no-such-notification", "retried", ts(7)));
  auto claims = store_->claim_due_emails(1500, 500, 10);
  ASSERT_EQ(claims.size(), 2u) << "both due now";
  for (const auto& c : claims) EXPECT_EQ(c.attempts, c.notification_id == failing.id ? 1 : 2) << "a failed one starts a fresh round";
  EXPECT_EQ(store_->email_queue(50).failed, 0);
}

TEST_P(StoreTest, OperatorActionsAreKeptNewestFirst) {
  EXPECT_TRUE(store_->list_operator_actions(10).empty());
  OperatorAction dry{0, ts(1), "ops@example.com", "dlq.dry_run", "task-events", "reason=bad_json", 7, 3, 0, "ok", ""};
  OperatorAction run{0, ts(2), "cli (root)", "dlq.redrive", "task-events", "", 7, 7, 7, "ok", ""};
  const auto a = store_->record_operator_action(dry);
  const auto b = store_->record_operator_action(run);
  EXPECT_GT(b, a);
  auto got = store_->list_operator_actions(10);
  ASSERT_EQ(got.size(), 2u);
  run.id = b;
  dry.id = a;
  EXPECT_EQ(got[0].id, run.id);
  EXPECT_EQ(got[0].actor, "cli (root)");
  EXPECT_EQ(got[0].sent, 7);
  EXPECT_EQ(got[1].filter, "reason=bad_json");
  EXPECT_EQ(got[1].matched, 3);
  EXPECT_EQ(got[1].at, ts(1));
  EXPECT_EQ(store_->list_operator_actions(1).size(), 1u);
}

TEST_P(StoreTest, EmailQueueClaimsFromManyThreadsNeverOverlap) {
  const auto alice = add_user("alice@example.com");
  constexpr int kEmails = 40;
  for (int i = 0; i < kEmails; ++i) store_->create_notification("notify", new_notification(alice.id, ts(i), {"email"}));
  std::mutex m;
  std::vector<std::string> claimed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (;;) {
        auto c = store_->claim_due_emails(1000, 60'000, 3);
        if (c.empty()) return;
        std::lock_guard lock(m);
        for (auto& e : c) claimed.push_back(e.notification_id);
      }
    });
  for (auto& t : threads) t.join();
  std::sort(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kEmails));
  EXPECT_EQ(std::adjacent_find(claimed.begin(), claimed.end()), claimed.end()) << "an email was claimed twice";
}

TEST_P(StoreTest, CreateNotificationIsIdempotentPerEvent) {
  const auto alice = add_user("alice@example.com");
  const auto n = new_notification(alice.id, ts(1), {"in_app", "email"});
  const auto [created, is_new] = store_->create_notification("notify", n);
  EXPECT_TRUE(is_new);
  EXPECT_EQ(created, n) << "stored as given";
  EXPECT_TRUE(store_->processed("notify", n.event_id));
  EXPECT_FALSE(store_->processed("audit", n.event_id));
  EXPECT_EQ(store_->get_notification(n.id), n);

  // A redelivery, even with other content and a new id, changes nothing.
  auto redelivered = new_notification(alice.id, ts(9), {"sms"});
  redelivered.event_id = n.event_id;
  redelivered.title = "changed";
  const auto [again, again_new] = store_->create_notification("notify", redelivered);
  EXPECT_FALSE(again_new);
  EXPECT_EQ(again, n);
  EXPECT_FALSE(store_->get_notification(redelivered.id).has_value());
  EXPECT_EQ(store_->list_notifications(alice.id, false, 10), std::vector<Notification>{n});

  // Another group meeting the same event finds the notification already there.
  const auto [other, other_new] = store_->create_notification("notify-2", redelivered);
  EXPECT_FALSE(other_new);
  EXPECT_EQ(other, n);
  EXPECT_TRUE(store_->processed("notify-2", n.event_id));
  EXPECT_EQ(store_->list_notifications(alice.id, false, 10).size(), 1u);
}

TEST_P(StoreTest, CreateNotificationFillsDefaultsAndKeepsOptionalsNull) {
  Notification n;
  n.id = events::new_event_id();
  n.user_id = events::new_event_id();  // a user this database does not know
  n.type = "task_overdue";
  n.title = "t";
  n.message = "m";
  n.event_id = events::new_event_id();
  n.channels = {{"in_app", "sent", "", ""}, {"email", "skipped", "no address", "2026-11-27T08:00:00Z"},
                {"in_app", "failed", "repeated", ""}};
  const auto [stored, is_new] = store_->create_notification("notify", n);
  ASSERT_TRUE(is_new);
  EXPECT_TRUE(events::is_rfc3339(stored.created_at)) << stored.created_at;
  EXPECT_FALSE(stored.task_id.has_value());
  EXPECT_FALSE(stored.email.has_value());
  EXPECT_FALSE(stored.read);
  EXPECT_FALSE(stored.read_at.has_value());
  ASSERT_EQ(stored.channels.size(), 2u) << "a repeated channel keeps its first entry";
  EXPECT_EQ(stored.channels[0], (ChannelStatus{"in_app", "sent", "", stored.created_at}));
  EXPECT_EQ(stored.channels[1], (ChannelStatus{"email", "skipped", "no address", "2026-11-27T08:00:00Z"}));
  EXPECT_EQ(store_->get_notification(n.id), stored);

  // No channels at all is stored as such.
  auto bare = new_notification(n.user_id, ts(2), {});
  bare.task_id.reset();
  EXPECT_EQ(store_->create_notification("notify", bare).first, bare);
  EXPECT_EQ(store_->get_notification(bare.id), bare);
  EXPECT_FALSE(store_->get_notification(events::new_event_id()).has_value());

  auto no_event = new_notification(n.user_id, ts(3));
  no_event.event_id.clear();
  try {
    store_->create_notification("notify", no_event);
    ADD_FAILURE() << "accepted an empty event_id";
  } catch (const StorageError& e) {
    EXPECT_FALSE(e.is_retriable());
  }
  EXPECT_FALSE(store_->get_notification(no_event.id).has_value());
}

TEST_P(StoreTest, SetChannelStatusUpdatesOneChannel) {
  const auto n = new_notification(events::new_event_id(), ts(1), {"in_app", "email", "sms"});
  store_->create_notification("notify", n);
  store_->set_channel_status(n.id, "email", "failed", "smtp: 550 mailbox unavailable", ts(5));
  store_->set_channel_status(n.id, "in_app", "sent", "", ts(6));
  store_->set_channel_status(n.id, "push", "sent", "", ts(7));                   // unknown channel: no-op
  store_->set_channel_status(events::new_event_id(), "email", "sent", "", ts(7));  // unknown notification: no-op

  auto expected = n;
  expected.channels = {{"in_app", "sent", "", ts(6)},
                       {"email", "failed", "smtp: 550 mailbox unavailable", ts(5)},
                       {"sms", "pending", "", ts(1)}};
  EXPECT_EQ(store_->get_notification(n.id), expected);

  store_->set_channel_status(n.id, "email", "sent", "", ts(8));  // a retry that worked clears the detail
  expected.channels[1] = {"email", "sent", "", ts(8)};
  EXPECT_EQ(store_->get_notification(n.id), expected);
  EXPECT_EQ(store_->list_notifications(n.user_id, false, 10), std::vector<Notification>{expected});
}

TEST_P(StoreTest, ListNotificationsNewestFirstWithUnreadFilterAndLimit) {
  const std::string alice = events::new_event_id();
  const std::string bob = events::new_event_id();
  std::vector<Notification> all;
  for (int i = 0; i < 7; ++i) {
    // Pairs share created_at: the id breaks the tie, newest first.
    all.push_back(new_notification(alice, ts(i / 2), {"in_app", "email"}));
    store_->create_notification("notify", all.back());
  }
  store_->create_notification("notify", new_notification(bob, ts(3)));
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return std::tie(a.created_at, a.id) > std::tie(b.created_at, b.id); });

  EXPECT_EQ(store_->list_notifications(alice, false, 200), all) << "channels included";
  EXPECT_EQ(ids_of(store_->list_notifications(alice, false, 3)), ids_of(std::vector<Notification>(all.begin(), all.begin() + 3)));
  EXPECT_EQ(store_->list_notifications(alice, false, 0).size(), 1u) << "limit is at least 1";
  EXPECT_EQ(store_->list_notifications(alice, false, -5).size(), 1u);
  EXPECT_EQ(store_->list_notifications(alice, false, 100000).size(), 7u);
  EXPECT_EQ(store_->list_notifications(bob, false, 10).size(), 1u);
  EXPECT_TRUE(store_->list_notifications(events::new_event_id(), false, 10).empty());

  ASSERT_TRUE(store_->mark_notification_read(alice, all[0].id, ts(50)));
  ASSERT_TRUE(store_->mark_notification_read(alice, all[3].id, ts(51)));
  std::vector<std::string> unread;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i != 0 && i != 3) unread.push_back(all[i].id);
  }
  EXPECT_EQ(ids_of(store_->list_notifications(alice, true, 200)), unread);
  EXPECT_EQ(ids_of(store_->list_notifications(alice, true, 2)), (std::vector<std::string>{unread[0], unread[1]}));
  EXPECT_EQ(store_->list_notifications(alice, false, 200).size(), 7u) << "read ones are still listed";
}

TEST_P(StoreTest, MarkNotificationReadIsIdempotentAndScopedToTheOwner) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  const auto n = new_notification(alice.id, ts(1));
  store_->create_notification("notify", n);

  EXPECT_FALSE(store_->mark_notification_read(bob.id, n.id, ts(2)).has_value()) << "another user's";
  EXPECT_FALSE(store_->mark_notification_read(alice.id, events::new_event_id(), ts(2)).has_value());
  EXPECT_FALSE(store_->get_notification(n.id)->read);

  auto expected = n;
  expected.read = true;
  expected.read_at = ts(3);
  EXPECT_EQ(store_->mark_notification_read(alice.id, n.id, ts(3)), expected);
  EXPECT_EQ(store_->mark_notification_read(alice.id, n.id, ts(4)), expected) << "the first read_at stays";
  EXPECT_EQ(store_->get_notification(n.id), expected);
  EXPECT_TRUE(store_->list_notifications(alice.id, true, 10).empty());
}

TEST_P(StoreTest, CountUnreadNotificationsCountsOnlyTheUsersUnreadOnes) {
  const std::string alice = events::new_event_id();
  const std::string bob = events::new_event_id();
  EXPECT_EQ(store_->count_unread_notifications(alice), 0) << "none yet";
  std::vector<Notification> mine;
  for (int i = 0; i < 205; ++i) {  // more than list_notifications ever returns: the count is not limited
    mine.push_back(new_notification(alice, ts(i % 60)));
    store_->create_notification("notify", mine.back());
  }
  for (int i = 0; i < 3; ++i) store_->create_notification("notify", new_notification(bob, ts(i)));
  EXPECT_EQ(store_->count_unread_notifications(alice), 205);
  EXPECT_EQ(store_->count_unread_notifications(bob), 3);
  EXPECT_EQ(store_->count_unread_notifications(events::new_event_id()), 0);

  ASSERT_TRUE(store_->mark_notification_read(alice, mine[0].id, ts(70)));
  ASSERT_TRUE(store_->mark_notification_read(alice, mine[7].id, ts(71)));
  ASSERT_TRUE(store_->mark_notification_read(alice, mine[7].id, ts(72)));  // again: still one read
  EXPECT_EQ(store_->count_unread_notifications(alice), 203);
  EXPECT_EQ(store_->count_unread_notifications(bob), 3) << "another user's reads change nothing";

  // Stored already read (read_at given at creation): not counted.
  auto read_one = new_notification(bob, ts(5));
  read_one.read = true;
  read_one.read_at = ts(6);
  store_->create_notification("notify", read_one);
  EXPECT_EQ(store_->count_unread_notifications(bob), 3);
}

TEST_P(StoreTest, MarkAllNotificationsReadMarksOnlyTheUsersUnreadOnes) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  std::vector<Notification> mine;
  for (int i = 0; i < 5; ++i) {
    mine.push_back(new_notification(alice.id, ts(i), {"in_app", "email"}));
    store_->create_notification("notify", mine.back());
  }
  const auto bobs = new_notification(bob.id, ts(2));
  store_->create_notification("notify", bobs);
  ASSERT_TRUE(store_->mark_notification_read(alice.id, mine[1].id, ts(10)));

  EXPECT_EQ(store_->mark_all_notifications_read(alice.id, ts(20)), 4u) << "the four unread ones";
  EXPECT_EQ(store_->count_unread_notifications(alice.id), 0);
  EXPECT_TRUE(store_->list_notifications(alice.id, true, 200).empty());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    auto expected = mine[i];
    expected.read = true;
    expected.read_at = i == 1 ? ts(10) : ts(20);  // one read before keeps its read_at
    EXPECT_EQ(store_->get_notification(mine[i].id), expected) << i;
  }
  EXPECT_EQ(store_->get_notification(bobs.id), bobs) << "another user's is never touched";
  EXPECT_EQ(store_->count_unread_notifications(bob.id), 1);

  EXPECT_EQ(store_->mark_all_notifications_read(alice.id, ts(30)), 0u) << "nothing left unread";
  EXPECT_EQ(store_->get_notification(mine[0].id)->read_at, ts(20)) << "a second call changes no read_at";
  EXPECT_EQ(store_->mark_all_notifications_read(events::new_event_id(), ts(30)), 0u) << "an unknown user";

  // A notification that arrives afterwards is unread again, and the next call marks just it.
  const auto later = new_notification(alice.id, ts(40));
  store_->create_notification("notify", later);
  EXPECT_EQ(store_->count_unread_notifications(alice.id), 1);
  EXPECT_EQ(store_->mark_all_notifications_read(alice.id, ts(41)), 1u);
  EXPECT_EQ(store_->get_notification(later.id)->read_at, ts(41));
  EXPECT_EQ(store_->mark_all_notifications_read(bob.id, ts(42)), 1u);
  EXPECT_EQ(store_->count_unread_notifications(bob.id), 0);
}

TEST_P(StoreTest, ConcurrentDeliveriesOfOneRequestCreateOneNotification) {
  constexpr int kThreads = 6;
  const auto request = new_notification(events::new_event_id(), ts(1), {"in_app", "email"});
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  std::mutex results_mutex;
  std::vector<Notification> results;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto copy = request;
      copy.id = events::new_event_id();  // each delivery would mint its own id
      try {
        const auto [n, is_new] = store_->create_notification("notify", copy);
        if (is_new) ++created;
        std::lock_guard lock(results_mutex);
        results.push_back(n);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "thread " << t << ": " << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(created.load(), 1);
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kThreads));
  for (const auto& n : results) EXPECT_EQ(n, results.front()) << "every caller sees the one stored";
  EXPECT_EQ(store_->list_notifications(request.user_id, false, 10).size(), 1u);
}

// ---- deadline reminders

/// The outbox rows of one reminder, leaving the store's defaults to fill.
std::vector<OutboxRecord> reminder_records(const Task& task, const std::string& kind) {
  OutboxRecord r;
  r.topic = "notification.request";
  r.event_type = kind;
  r.payload = nlohmann::json{{"type", kind}, {"task_id", task.id}, {"due_at", task.due_at.value_or("")}}.dump();
  return {r};
}

std::vector<std::string> task_ids(const std::vector<Task>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t.id);
  return out;
}

std::vector<OutboxRecord> unpublished_of_topic(Store& store, const std::string& topic) {
  std::vector<OutboxRecord> out;
  for (auto& r : store.fetch_unpublished(10000)) {
    if (r.topic == topic) out.push_back(std::move(r));
  }
  return out;
}

Task add_due_task(Store& store, const User& user, const std::string& title, std::optional<std::string> due_at,
                  const std::string& status = "todo") {
  auto t = new_task(user.id, title, ts(0), status);
  t.due_at = std::move(due_at);
  const auto result = store.create_task(t, kTwoEvents);
  if (result.status != ChangeStatus::ok || !result.task) throw std::runtime_error("could not create task " + title);
  return *result.task;
}

TEST_P(StoreTest, DueTasksAreTheOpenOnesAtOrBeforeUntilOldestDueFirst) {
  const auto alice = add_user("alice@example.com");
  const auto bob = add_user("bob@example.com");
  const auto a = add_due_task(*store_, alice, "a", ts(30));
  const auto b = add_due_task(*store_, bob, "b", ts(10), "in_progress");
  add_due_task(*store_, alice, "done", ts(20), "done");
  add_due_task(*store_, alice, "undated", std::nullopt);
  add_due_task(*store_, alice, "later", ts(51));
  const auto at_until = add_due_task(*store_, alice, "at until", ts(50));

  const auto due = store_->tasks_due_without_reminder("deadline_reminder", ts(50), 100);
  EXPECT_EQ(task_ids(due), (std::vector<std::string>{b.id, a.id, at_until.id}));
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(due[0], b) << "the whole task, as stored";
  EXPECT_EQ(task_ids(store_->tasks_due_without_reminder("deadline_reminder", ts(50), 2)),
            (std::vector<std::string>{b.id, a.id}));
  EXPECT_TRUE(store_->tasks_due_without_reminder("deadline_reminder", ts(9), 100).empty());
}

TEST_P(StoreTest, AReminderSkipsItsKindUntilDueAtMoves) {
  const auto alice = add_user("alice@example.com");
  const auto a = add_due_task(*store_, alice, "a", ts(30));
  const auto b = add_due_task(*store_, alice, "b", ts(10));

  ASSERT_TRUE(store_->record_reminder(b, "deadline_reminder", reminder_records(b, "deadline_reminder")));
  EXPECT_EQ(task_ids(store_->tasks_due_without_reminder("deadline_reminder", ts(50), 100)),
            std::vector<std::string>{a.id});
  EXPECT_EQ(task_ids(store_->tasks_due_without_reminder("task_overdue", ts(50), 100)),
            (std::vector<std::string>{b.id, a.id}))
      << "another kind is not covered";
  ASSERT_TRUE(store_->record_reminder(b, "task_overdue", reminder_records(b, "task_overdue")));
  EXPECT_EQ(task_ids(store_->tasks_due_without_reminder("task_overdue", ts(50), 100)), std::vector<std::string>{a.id});

  const auto moved = store_->update_task(
      alice.id, b.id,
      [](Task& t) {
        t.due_at = ts(40);
        return true;
      },
      std::nullopt, ts(5), kTwoEvents);
  ASSERT_EQ(moved.status, ChangeStatus::ok);
  for (const std::string kind : {"deadline_reminder", "task_overdue"}) {
    EXPECT_EQ(task_ids(store_->tasks_due_without_reminder(kind, ts(50), 100)), (std::vector<std::string>{a.id, b.id}))
        << kind << ": a new due_at is a new reminder";
  }
  EXPECT_TRUE(store_->record_reminder(*moved.task, "deadline_reminder", reminder_records(*moved.task, "deadline_reminder")));
  EXPECT_EQ(task_ids(store_->tasks_due_without_reminder("deadline_reminder", ts(50), 100)),
            std::vector<std::string>{a.id});

  store_->update_task(alice.id, a.id, [](Task& t) { t.status = "done"; return true; }, std::nullopt, ts(6), kTwoEvents);
  EXPECT_TRUE(store_->tasks_due_without_reminder("deadline_reminder", ts(50), 100).empty()) << "done tasks are not due";
}

TEST_P(StoreTest, RecordingOneReminderTwiceWritesItsOutboxRowsOnce) {
  const auto alice = add_user("alice@example.com");
  const auto task = add_due_task(*store_, alice, "a", ts(30));
  const auto before = store_->outbox_stats().waiting;

  EXPECT_TRUE(store_->record_reminder(task, "deadline_reminder", reminder_records(task, "deadline_reminder")));
  EXPECT_FALSE(store_->record_reminder(task, "deadline_reminder", reminder_records(task, "deadline_reminder")));
  EXPECT_EQ(store_->outbox_stats().waiting, before + 1);
  const auto rows = unpublished_of_topic(*store_, "notification.request");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].seq, 0) << "a reminder takes no user seq";
  EXPECT_EQ(rows[0].user_id, alice.id);
  EXPECT_EQ(rows[0].key, alice.id);
  EXPECT_FALSE(rows[0].created_at.empty());
  EXPECT_FALSE(rows[0].event_id.empty());
  EXPECT_EQ(rows[0].event_type, "deadline_reminder");

  // The user's seq stream is untouched: resuming sees no seq-0 row, the next change gets seq 2.
  EXPECT_TRUE(store_->events_after(alice.id, "notification.request", 0, 100).empty());
  EXPECT_TRUE(store_->events_after(alice.id, "notification.request", -1, 100).empty());
  EXPECT_EQ(seqs_of(alice.id, "task-events"), std::vector<std::int64_t>{1});
  EXPECT_EQ(store_->update_task(alice.id, task.id, set_title("b"), std::nullopt, ts(2), kTwoEvents).seq, 2);
  EXPECT_EQ(seqs_of(alice.id, "task-updates"), (std::vector<std::int64_t>{1, 2}));

  Task undated = task;
  undated.due_at.reset();
  try {
    store_->record_reminder(undated, "deadline_reminder", {});
    ADD_FAILURE() << "no due_at must throw";
  } catch (const StorageError& e) {
    EXPECT_FALSE(e.is_retriable());
  }
}

TEST_P(StoreTest, ConcurrentRecordsOfOneReminderSendItOnce) {
  const auto alice = add_user("alice@example.com");
  const auto task = add_due_task(*store_, alice, "a", ts(30));
  constexpr int kThreads = 4;
  std::atomic<int> fresh{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        if (store_->record_reminder(task, "task_overdue", reminder_records(task, "task_overdue"))) ++fresh;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "thread " << t << ": " << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_EQ(unpublished_of_topic(*store_, "notification.request").size(), 1u);
  EXPECT_TRUE(store_->tasks_due_without_reminder("task_overdue", ts(50), 100).empty());
}

// ---- upgrading a database made by an earlier version

/// `exec` runs SQL on the database outside the stores.
template <class ConcreteStore>
void check_upgrade_from_version_1(ConcreteStore& old_version, ConcreteStore& new_version, const std::function<void(const std::string&)>& exec) {
  old_version.migrate_to(1);
  old_version.migrate_to(1);
  ASSERT_EQ(old_version.schema_version(), 1);
  // The code under test plays the earlier binary that wrote the data below; it writes the two
  // outbox columns migration 8 adds, so they exist while it does and are dropped before the
  // upgrade (an earlier binary's rows have neither).
  exec("ALTER TABLE outbox ADD COLUMN subject TEXT NOT NULL DEFAULT ''");
  exec("ALTER TABLE outbox ADD COLUMN data_schema TEXT NOT NULL DEFAULT ''");
  const auto user = old_version.create_user("old@example.com", "h");
  ASSERT_TRUE(user);
  const auto task = old_version.create_task(new_task(user->id, "from v1", ts(1)), kTwoEvents);
  ASSERT_EQ(task.status, ChangeStatus::ok);
  EXPECT_THROW(old_version.record_audit("audit", {audit_entry(user->id, task.task->id, 1, ts(1))}), StorageError)
      << "no audit_log before migration 2";

  // The first task's events are published and pruned before the upgrade: outbox ids must
  // still never be reused after migration 6 rebuilds the outbox (SQLite).
  const auto first = old_version.fetch_unpublished(10);
  ASSERT_EQ(first.size(), 2u);
  old_version.mark_published({first[0].id, first[1].id});
  ASSERT_EQ(old_version.prune_outbox("9999-12-31T00:00:00Z"), 2u);
  const auto second = old_version.create_task(new_task(user->id, "also from v1", ts(2)), kTwoEvents);
  ASSERT_EQ(second.status, ChangeStatus::ok);
  exec("ALTER TABLE outbox DROP COLUMN subject");
  exec("ALTER TABLE outbox DROP COLUMN data_schema");

  new_version.migrate();
  EXPECT_EQ(new_version.schema_version(), 8);
  EXPECT_EQ(new_version.get_task(user->id, task.task->id), task.task) << "v1 data survives";
  EXPECT_EQ(new_version.get_task(user->id, second.task->id), second.task) << "v1 data survives";
  const auto kept = new_version.fetch_unpublished(10);
  ASSERT_EQ(kept.size(), 2u) << "unpublished events survive the outbox rebuild";
  EXPECT_EQ(kept[0].data_schema, "") << "rows written before migration 8 have no schema (sent as version 1)";
  EXPECT_GT(kept[0].id, first[1].id);
  new_version.mark_published({kept[0].id, kept[1].id});
  ASSERT_EQ(new_version.prune_outbox("9999-12-31T00:00:00Z"), 2u);
  const auto third = new_version.create_task(new_task(user->id, "after the upgrade", ts(3)), kTwoEvents);
  ASSERT_EQ(third.status, ChangeStatus::ok);
  const auto fresh = new_version.fetch_unpublished(10);
  ASSERT_EQ(fresh.size(), 2u);
  EXPECT_GT(fresh[0].id, kept[1].id) << "outbox ids are never reused, even after the table was emptied and rebuilt";
  EXPECT_EQ(fresh[0].seq, 3);
  EXPECT_NE(fresh[0].payload.find("\"seq\":3"), std::string::npos) << fresh[0].payload;
  EXPECT_EQ(new_version.record_audit("audit", {audit_entry(user->id, task.task->id, 1, ts(1))}), 1u);
  const auto n = new_notification(user->id, ts(2));
  EXPECT_TRUE(new_version.create_notification("notify", n).second);

  new_version.migrate();  // a no-op now
  old_version.migrate();
  EXPECT_EQ(new_version.schema_version(), 8);
  EXPECT_GT(new_version.record_operator_action({0, ts(3), "ops@example.com", "dlq.dry_run", "task-events", "", 0, 0, 0, "ok", ""}), 0)
      << "operator_actions exists after migration 5";
  EXPECT_EQ(new_version.task_history(user->id, task.task->id).size(), 1u);
  EXPECT_EQ(new_version.get_notification(n.id), n);
  EXPECT_FALSE(new_version.create_user("old@example.com", "h").has_value());
}

TEST_P(StoreTest, MigratesADatabaseAtVersion1ToVersion2) {
  Scratch fresh(GetParam());
  ASSERT_TRUE(fresh.ready());
  if (GetParam() == Backend::sqlite) {
    SqliteStore old_version(fresh.url().path), new_version(fresh.url().path);
    EXPECT_EQ(old_version.schema_version(), 0);
    check_upgrade_from_version_1(old_version, new_version, [&](const std::string& sql) {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open(fresh.url().path.c_str(), &db), SQLITE_OK);
      char* error = nullptr;
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << sql << ": " << (error ? error : "");
      sqlite3_free(error);
      sqlite3_close(db);
    });
  } else {
    PostgresStore old_version(fresh.url().url), new_version(fresh.url().url);
    EXPECT_EQ(old_version.schema_version(), 0);
    check_upgrade_from_version_1(old_version, new_version, [&](const std::string& sql) { postgres_execute(fresh.url().url, sql); });
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(Backend::sqlite, Backend::postgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::sqlite ? "sqlite" : "postgres";
                         });

// ---- backend-specific

TEST(SqliteMemoryStore, OneDatabaseSharedByEveryThread) {
  auto store = open_store(config::Settings::load({{"DATABASE_URL", "sqlite:///:memory:"}}).database);
  store->migrate();
  const auto user = store->create_user("mem@example.com", "h");
  ASSERT_TRUE(user);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) store->create_task(new_task(user->id, fmt::format("{}-{}", t, i), ts(i)), kTwoEvents);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store->list_tasks(user->id, std::nullopt, 100, std::nullopt).items.size(), 40u);
  EXPECT_EQ(store->outbox_stats().waiting, 80);
}

TEST(PostgresStore, OpenStoreAcceptsThePostgresScheme) {
  Scratch scratch(Backend::postgres);
  ASSERT_TRUE(scratch.ready());
  auto url = scratch.url().url;
  ASSERT_EQ(url.rfind("postgresql://", 0), 0u) << "set " << kDatabaseUrlEnv << " to a postgresql:// URL";
  url = "postgres://" + url.substr(std::string("postgresql://").size());
  const auto parsed = config::Settings::load({{"DATABASE_URL", url}}).database;
  ASSERT_EQ(parsed.kind, config::DatabaseKind::postgresql);
  auto store = open_store(parsed);
  store->migrate();
  EXPECT_TRUE(store->ping());
}

TEST(PostgresStore, RecoversFromLostConnections) {
  Scratch scratch(Backend::postgres);
  ASSERT_TRUE(scratch.ready());
  auto store = open_store(scratch.url());
  store->migrate();
  const auto user = store->create_user("re@example.com", "h");
  ASSERT_TRUE(user);
  // Several idle pooled connections, so a retry must not pick another dead one.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { EXPECT_TRUE(store->ping()); });
  for (auto& th : threads) th.join();

  const auto kill_sessions = [&] {
    postgres_execute(scratch.base_url(), fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                                     "WHERE application_name = '{}'",
                                                     scratch.schema()));
  };
  kill_sessions();
  EXPECT_TRUE(store->find_user(user->id).has_value()) << "a read reconnects";
  kill_sessions();
  const auto created = store->create_task(new_task(user->id, "after restart", ts(1)), kTwoEvents);
  EXPECT_EQ(created.seq, 1) << "a write whose BEGIN failed reconnects";
  EXPECT_TRUE(store->ping());
}

}  // namespace
}  // namespace taskstream::storage
