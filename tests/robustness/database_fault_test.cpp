// Database faults during load (docs/reliability.md, "Database faults"): the database goes
// away or fills up while changes keep coming. Requests meanwhile get 503/507 problem+json
// with Retry-After (never a 500, never a hang); the relay, the consumers and the API go on
// by themselves once it is back; the sets are compared as in fault_harness.hpp (a 503/507
// is an undetermined outcome: the database decides whether that change exists).

#include <sys/mount.h>
#include <sys/wait.h>

#include <filesystem>

#include "fault_harness.hpp"

using namespace taskstream;
using namespace taskstream::rtest;

namespace {

std::string figures(const Load& load) {
  auto l = load.latencies_ms();
  std::string statuses;
  for (const auto& [status, n] : load.statuses()) statuses += (statuses.empty() ? "" : ", ") + std::to_string(status) + "×" + std::to_string(n);
  char buf[300];
  std::snprintf(buf, sizeof buf, "answers %s; request latency p50 %.1f ms, p99 %.1f ms, max %.1f ms", statuses.c_str(), percentile(l, 0.5),
                percentile(l, 0.99), percentile(l, 1.0));
  return buf;
}

/// The checks every answer during an outage must pass.
void expect_outage_answer(const itest::HttpResult& r, int status, std::string_view detail_has) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.headers.count("retry-after") ? r.headers.at("retry-after") : "", "5");
  EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "", "application/problem+json");
  if (r.status == status) EXPECT_NE(r.json().value("detail", "").find(detail_has), std::string::npos) << r.body;
}

/// POSTs a task titled `title` until a write is answered `status` or `timeout` passes;
/// returns whether it was, and the last answer.
std::pair<bool, itest::HttpResult> wait_for_refusal(const itest::ServeProcess& serve, const std::map<std::string, std::string>& auth,
                                                    const std::string& title, int status, std::chrono::seconds timeout) {
  itest::HttpResult last;
  const bool refused = itest::wait_until(
      [&] {
        last = itest::http_request(serve.port(), "POST", "/tasks", json{{"title", title}}.dump(), auth);
        return last.status == status;
      },
      timeout);
  return {refused, std::move(last)};
}

/// The load met the outage (some answers were `status`) and never got a 500.
void expect_load_met(const Load& load, int status) {
  const auto statuses = load.statuses();
  EXPECT_GT(statuses.count(status) ? statuses.at(status) : 0, 0u) << "the load never met the fault: " << figures(load);
  EXPECT_EQ(statuses.count(500), 0u) << figures(load);
}

/// A tmpfs of `size` mounted at a fresh directory, unmounted (lazily) on destruction.
struct SmallFilesystem {
  std::filesystem::path dir;
  explicit SmallFilesystem(const std::string& size) : dir(std::filesystem::temp_directory_path() / itest::unique_name("smallfs")) {
    std::filesystem::create_directories(dir);
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallFilesystem() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  bool mounted = false;
};

/// A 32 MB ext4 file system on a loop device, mounted with errors=remount-ro at a fresh
/// directory: fail() makes the kernel record a file-system error (ext4's trigger_fs_error),
/// which turns the mount read-only at once, open files or not, as a disk error does in
/// production. repair() unmounts, runs e2fsck and mounts it read-write again.
struct LoopExt4 {
  std::filesystem::path dir, image;
  bool mounted = false;
  LoopExt4() : dir(std::filesystem::temp_directory_path() / itest::unique_name("ext4")), image(dir.string() + ".img") {
    std::filesystem::create_directories(dir);
    mounted = sh("truncate -s 32M " + image.string() + " && mkfs.ext4 -q -F " + image.string()) == 0 && mount() == 0;
  }
  ~LoopExt4() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::remove(image, ec);
  }
  static int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }
  int mount() const { return sh("mount -o loop,errors=remount-ro " + image.string() + " " + dir.string()); }
  std::string options() const {
    std::string out;
    if (FILE* p = popen(("findmnt -n -o OPTIONS " + dir.string()).c_str(), "r")) {
      char buf[512];
      while (fgets(buf, sizeof buf, p)) out += buf;
      pclose(p);
    }
    return out;
  }
  bool read_only() const { return options().rfind("ro", 0) == 0 || options().find(",ro") != std::string::npos || options().find("emergency_ro") != std::string::npos; }
  bool fail() const {
    std::string source;
    if (FILE* p = popen(("findmnt -n -o SOURCE " + dir.string()).c_str(), "r")) {
      char buf[256];
      if (fgets(buf, sizeof buf, p)) source = buf;
      pclose(p);
    }
    while (!source.empty() && source.back() == '\n') source.pop_back();
    const auto knob = "/sys/fs/ext4/" + std::filesystem::path(source).filename().string() + "/trigger_fs_error";
    std::ofstream f(knob);
    f << "1" << std::endl;
    return f.good();
  }
  bool repair() {
    mounted = !(::umount(dir.c_str()) == 0);
    // e2fsck: 0 clean, 1 errors corrected; anything else is a failure.
    const int fsck = sh("e2fsck -fy " + image.string());
    return !mounted && (fsck == 0 || WEXITSTATUS(fsck) <= 1) && (mounted = mount() == 0);
  }
};

std::string sqlite_integrity(const std::string& path) {
  const std::string cmd = "python3 -c \"import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])\" " + path;
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

// PostgreSQL stopped (fast shutdown: sessions are cut) for 10 s while changes come in, then
// started again.
TEST(DatabaseFaults, PostgresRestartedDuringLoadAnswers503AndLosesNothing) {
  ASSERT_EQ(postgres_script("status"), 0) << "PostgreSQL is not running (scripts/postgres start)";
  const auto db = itest::fresh_postgres_schema_url("pgdown");
  itest::ServeProcess serve({{"DATABASE_URL", db}});
  auto users = make_users(serve, 8);
  const auto& probe_user = users.front();
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + probe_user.token}};
  Load load({serve.port()}, users, 60, 1'000'000);
  std::this_thread::sleep_for(3s);

  ASSERT_EQ(postgres_script("stop"), 0);
  const auto down_at = Clock::now();
  // The fault is real: a request now is refused by the database's absence, and says so.
  std::this_thread::sleep_for(500ms);
  const auto t0 = Clock::now();
  auto during = itest::http_request(serve.port(), "POST", "/tasks", json{{"title", "while the database is down"}}.dump(), auth);
  const auto probe_ms = ms_since(t0);
  expect_outage_answer(during, 503, "unavailable");
  auto ready = itest::http_request(serve.port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.json()["checks"].value("database", ""), "unavailable") << ready.body;
  std::this_thread::sleep_until(down_at + 10s);
  const auto postgres_started = postgres_script("start");
  const auto faults_over = Clock::now();
  ASSERT_EQ(postgres_started, 0);
  EXPECT_TRUE(itest::wait_until([&] { return itest::http_request(serve.port(), "GET", "/readyz").status == 200; }, 60s))
      << "not ready again after the database came back";
  std::this_thread::sleep_for(3s);
  load.stop();

  expect_load_met(load, 503);
  // No request waits longer than the pool's wait for a connection plus libpq's connect timeout.
  EXPECT_LT(percentile(load.latencies_ms(), 1.0), 15'000.0) << figures(load);
  auto v = verify(serve, load, faults_over, itest::kafka_settings());
  char extra[400];
  std::snprintf(extra, sizeof extra, "a POST during the outage answered %d in %.0f ms; %s", during.status, probe_ms, figures(load).c_str());
  print("PostgreSQL stopped 10 s (fast shutdown) during load", v, extra);
  EXPECT_TRUE(v.clean());
  EXPECT_GE(v.events, v.acked);
  EXPECT_EQ(v.audit_rows, v.events);
  EXPECT_EQ(serve.stop(), 0);
}

// The SQLite file's file system fills up (a small tmpfs, filled by another file) while
// changes come in, then space is freed.
TEST(DatabaseFaults, SqliteDiskFullAnswers507KeepsTheFileIntactAndWritesAgainOnceSpaceReturns) {
  SmallFilesystem fs("24m");
  ASSERT_TRUE(fs.mounted) << "cannot mount a tmpfs (the fault tests run as root): " << std::strerror(errno);
  const auto db_path = (fs.dir / "taskstream.db").string();
  itest::ServeProcess serve({{"DATABASE_URL", "sqlite:///" + db_path}});
  auto users = make_users(serve, 6);
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + users.front().token}};
  Load load({serve.port()}, users, 60, 1'000'000);
  std::this_thread::sleep_for(2s);

  // Fill every byte left: the WAL can no longer grow and the checkpoint cannot extend the file.
  const auto filler = (fs.dir / "filler").string();
  std::system(("dd if=/dev/zero of=" + filler + " bs=64k >/dev/null 2>&1").c_str());
  const auto full_at = Clock::now();
  const auto [refused, during] = wait_for_refusal(serve, auth, "on a full disk", 507, 90s);
  const auto full_for_ms = ms_since(full_at);
  ASSERT_TRUE(refused) << "no write was refused with the disk full; last answer " << during.status << " " << during.body;
  expect_outage_answer(during, 507, "disk is full");
  std::this_thread::sleep_for(3s);  // the load meets the full disk too

  std::filesystem::remove(filler);
  const auto faults_over = Clock::now();
  EXPECT_TRUE(itest::wait_until(
      [&] { return itest::http_request(serve.port(), "POST", "/tasks", json{{"title", "space is back"}}.dump(), auth).status == 201; }, 60s))
      << "writes did not work again once space returned";
  std::this_thread::sleep_for(3s);
  load.stop();

  expect_load_met(load, 507);
  auto v = verify(serve, load, faults_over, itest::kafka_settings());
  EXPECT_EQ(serve.stop(), 0);
  const auto integrity = sqlite_integrity(db_path);
  EXPECT_EQ(integrity, "ok");
  char extra[400];
  std::snprintf(extra, sizeof extra, "first 507 %.1f s after the disk filled; integrity_check %s; %s", full_for_ms / 1000, integrity.c_str(),
                figures(load).c_str());
  print("SQLite disk full, then space freed", v, extra);
  EXPECT_TRUE(v.clean());
  EXPECT_GE(v.events, v.acked);
  EXPECT_EQ(v.audit_rows, v.events);
}

// The SQLite file's file system turns read-only under load (an ext4 error with
// errors=remount-ro, as a failing disk does). Writes answer 503 problem+json with
// Retry-After, reads go on, nothing is a 500; after the operator's repair (stop, fsck,
// mount read-write, start) every change acknowledged before has its events and audit row.
TEST(DatabaseFaults, SqliteFileSystemTurnsReadOnlyAnswers503ReadsGoOnAndNothingAcknowledgedIsLost) {
  LoopExt4 fs;
  ASSERT_TRUE(fs.mounted) << "cannot make and mount a loop ext4 file system (the fault tests run as root)";
  const auto db_path = (fs.dir / "taskstream.db").string();
  itest::ServeProcess serve({{"DATABASE_URL", "sqlite:///" + db_path}});
  auto users = make_users(serve, 6);
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + users.front().token}};
  Load load({serve.port()}, users, 60, 1'000'000);
  std::this_thread::sleep_for(3s);

  ASSERT_TRUE(fs.fail()) << "cannot write ext4's trigger_fs_error";
  ASSERT_TRUE(itest::wait_until([&] { return fs.read_only(); }, 10s)) << "the mount did not turn read-only: " << fs.options();
  const auto ro_at = Clock::now();
  const auto [refused, during] = wait_for_refusal(serve, auth, "on a read-only disk", 503, 30s);
  const auto refused_after_ms = ms_since(ro_at);
  ASSERT_TRUE(refused) << "no write was refused with the file system read-only; last answer " << during.status << " " << during.body;
  expect_outage_answer(during, 503, "");
  const auto read = itest::http_request(serve.port(), "GET", "/tasks?limit=5", {}, auth);
  EXPECT_EQ(read.status, 200) << "reads stopped with the file system read-only: " << read.body;
  std::this_thread::sleep_for(3s);  // the load meets it too
  load.stop();
  expect_load_met(load, 503);

  // The operator's repair, then the same service again on the same file and topics.
  EXPECT_EQ(serve.stop(), 0);
  ASSERT_TRUE(fs.repair()) << "e2fsck or the read-write mount failed";
  serve.restart();
  const auto faults_over = Clock::now();
  const auto [fresh_user, fresh_token] = serve.new_user("repaired");  // not one of the load's users, whose sets are compared
  EXPECT_EQ(serve.call("POST", "/tasks", json{{"title", "repaired"}}.dump(), fresh_token).status, 201) << "writes after the repair";
  auto v = verify(serve, load, faults_over, itest::kafka_settings());
  EXPECT_EQ(serve.stop(), 0);
  const auto integrity = sqlite_integrity(db_path);
  EXPECT_EQ(integrity, "ok");
  char extra[400];
  std::snprintf(extra, sizeof extra, "first 503 %.1f s after the mount turned read-only; a read meanwhile %d; integrity_check %s; %s",
                refused_after_ms / 1000, read.status, integrity.c_str(), figures(load).c_str());
  print("SQLite file system turned read-only (ext4 error), repaired", v, extra);
  EXPECT_TRUE(v.clean());
  EXPECT_GE(v.events, v.acked);
  EXPECT_EQ(v.audit_rows, v.events);
}
