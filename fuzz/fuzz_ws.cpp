// Fuzz target: a WebSocket session's handling of what clients send and what it is fed, with
// no I/O — the hub's own pieces: ws::parse_client_message (every client text frame) and the
// ws::Sequencer it drives (src/ws/hub.cpp carries out exactly these steps).
//
// The input is a script of events, one byte of opcode each:
//   commit     the user changes a task: the database's seq grows, its Kafka frame is pending
//   deliver    Kafka delivers one pending frame (again, late or out of order: next byte picks)
//   answer     the database answers the read the sequencer asked for (rows after `after`
//              that retention has kept)
//   text       the client sends a text frame: the next byte is its length, then its bytes
//              (resume requests, pings and garbage alike)
//   prune      retention drops the oldest outbox rows
// At the end every pending frame is delivered and every read answered (the quiescent state).
//
// Bugs: a sanitizer report, an exception, a read asked while one is in flight, a frame for the
// wrong seq, a live seq frame that is not last + 1, a `resumed` that claims more than the
// database has, a client message that gets no answer it should (an error frame, a pong), or a
// client left behind at quiescence (the last seq it holds is not the database's).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ws/client_message.hpp"
#include "ws/sequencer.hpp"

using taskstream::ws::ClientMessage;
using taskstream::ws::Sequencer;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_ws: %s\n", what.c_str());
  std::abort();
}

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::string_view bytes(std::size_t count) {
    count = std::min(count, n);
    std::string_view out(reinterpret_cast<const char*>(p), count);
    p += count;
    n -= count;
    return out;
  }
};

Sequencer::FramePtr frame_for(std::int64_t seq) { return std::make_shared<const std::string>("u" + std::to_string(seq)); }

/// The database, Kafka and the client as the session sees them.
struct Session {
  std::int64_t db_seq = 0;     ///< the user's last assigned seq
  std::int64_t kept_from = 1;  ///< outbox rows below this were pruned
  std::vector<std::int64_t> kafka;  ///< frames committed, not yet delivered (any order)
  std::optional<Sequencer::Read> read;  ///< the read in flight
  std::int64_t client_last = 0;  ///< the last seq the client holds
  std::vector<std::int64_t> resumes;  ///< every last_seq the client asked to resume from
  std::optional<Sequencer> seq;

  void apply(Sequencer::Step step) {
    for (const auto& out : step.send) {
      const std::string& f = *out.frame;
      if (f.size() > 1 && f[0] == 'u') {
        const std::int64_t s = std::stoll(f.substr(1));
        if (s < 1 || s > db_seq) fail("a frame for seq " + std::to_string(s) + " the database never gave");
        // Live frames continue the client's stream; a replay may restart it (a resume), but
        // within it each frame is the next one.
        if (!out.replay && s != client_last + 1)
          fail("live frame " + std::to_string(s) + " after " + std::to_string(client_last));
        if (out.replay && s != client_last + 1 && std::find(resumes.begin(), resumes.end(), s - 1) == resumes.end())
          fail("replayed frame " + std::to_string(s) + " after " + std::to_string(client_last) + " and no resume from " + std::to_string(s - 1));
        client_last = s;
      } else {
        const auto j = nlohmann::json::parse(f);
        if (j.at("type") != "resumed") fail("unexpected frame " + f);
        const std::int64_t m = j.at("seq");
        if (m > db_seq || m < 0) fail("resumed at " + std::to_string(m) + " with the database at " + std::to_string(db_seq));
        // recovered:true: the client now holds M, either through the replay just sent or
        // because it said so itself (a resume from M with nothing after it).
        if (j.at("recovered") == true && m != client_last && std::find(resumes.begin(), resumes.end(), m) == resumes.end())
          fail("recovered:true at " + std::to_string(m) + " after the client got " + std::to_string(client_last));
        client_last = m;
      }
    }
    if (step.read) {
      if (read) fail("a read asked while one is in flight");
      read = step.read;
    }
  }

  void answer() {
    if (!read) return;
    Sequencer::Replay r;
    r.current = db_seq;
    if (read->rows)
      for (std::int64_t s = std::max(read->after + 1, kept_from); s <= db_seq; ++s) r.rows.push_back({s, frame_for(s)});
    read.reset();
    apply(seq->on_read(std::move(r)));
  }

  void deliver(std::size_t pick) {
    if (kafka.empty()) return;
    const std::size_t i = pick % kafka.size();
    const auto s = kafka[i];
    if (pick & 0x80) kafka.erase(kafka.begin() + static_cast<std::ptrdiff_t>(i));  // else: delivered again later
    apply(seq->on_live(s, frame_for(s)));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  Session s;
  // The socket opens with the database at some seq, maybe asking to resume (?last_seq=N).
  s.db_seq = in.byte() % 8;
  const std::uint8_t open = in.byte();
  std::optional<std::int64_t> resume_from;
  if (open & 1) resume_from = (open >> 1) % 12;
  s.client_last = resume_from.value_or(s.db_seq);
  if (resume_from) s.resumes.push_back(*resume_from);
  s.seq.emplace(resume_from ? std::nullopt : std::optional<std::int64_t>(s.db_seq), resume_from);
  s.apply(s.seq->begin());

  while (!in.empty()) {
    switch (in.byte() % 5) {
      case 0:
        ++s.db_seq;
        s.kafka.push_back(s.db_seq);
        break;
      case 1:
        s.deliver(in.byte());
        break;
      case 2:
        s.answer();
        break;
      case 3: {
        const auto text = in.bytes(in.byte());
        const auto msg = taskstream::ws::parse_client_message(text);
        switch (msg.kind) {
          case ClientMessage::Kind::resume:
            if (msg.last_seq < 0) fail("a negative resume was accepted");
            s.resumes.push_back(msg.last_seq);
            s.apply(s.seq->on_resume(msg.last_seq));
            break;
          case ClientMessage::Kind::ping:
            break;  // answered with a pong, outside the sequence
          case ClientMessage::Kind::error: {
            if (msg.detail.empty()) fail("an error without a detail");
            const auto frame = nlohmann::json::parse(taskstream::ws::error_frame(msg.detail));
            if (frame.at("type") != "error") fail("error frame without its type");
            break;
          }
        }
        break;
      }
      case 4:
        s.kept_from = std::min(s.db_seq + 1, s.kept_from + in.byte() % 4);
        break;
    }
  }
  // Quiescence: Kafka delivers what it has, the database answers every read.
  for (int rounds = 0; rounds < 10'000 && (s.read || !s.kafka.empty()); ++rounds) {
    if (s.read) s.answer();
    else s.deliver(0x80);
  }
  if (s.read || !s.kafka.empty()) fail("no quiescence");
  if (s.seq->last_seq() != s.db_seq) fail("the session stopped at " + std::to_string(s.seq->last_seq()) + " of " + std::to_string(s.db_seq));
  if (s.client_last != s.db_seq) fail("the client holds " + std::to_string(s.client_last) + " of " + std::to_string(s.db_seq));
  return 0;
}
