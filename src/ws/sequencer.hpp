#pragma once
// The per-socket order of task updates (docs/architecture.md, "WebSocket"), with no I/O: the
// WebSocket session feeds it what happens (a live frame from Kafka, a client's resume, the
// answer of a database read) and carries out what it returns (frames to send, the one
// database read to make). Unit-tested alone against a model (tests/unit/ws_sequencer_test.cpp).
//
// What it keeps true, per socket:
// - Frames carrying a `seq` go out in order, each once: last + 1 is sent, an older one is
//   dropped (a replay, or Kafka delivering again), a newer one (a gap) is held while the
//   missing ones are read from the outbox table.
// - While a read is in flight, live frames are held and released in order after it.
// - `resume(N)` replays everything after N from the DB and answers
//   `{"type":"resumed","recovered":true,"seq":M}`; when the rows after N are no longer all
//   there (pruned by OUTBOX_RETENTION_HOURS) or N is ahead, `recovered:false` with the current
//   seq: the client refetches. A gap on a live socket that the DB can no longer fill is
//   answered the same way (`recovered:false`, the seq it skips to), never skipped silently.
// - A new socket starts at the user's seq read before its handshake, and the first read
//   brings what came since.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace taskstream::ws {

class Sequencer final {
 public:
  using FramePtr = std::shared_ptr<const std::string>;

  struct Out {
    FramePtr frame;
    bool replay = false;  ///< from the DB (a resume or a gap fill), not a live frame
  };
  /// A database read to make: the user's current seq and, when `rows`, their task updates
  /// with seq > `after` (all of them, in seq order). Answer it with on_read().
  struct Read {
    enum class Kind { start, gap, resume };
    std::int64_t after = 0;
    bool rows = false;
    Kind kind = Kind::start;  ///< why: the socket's first read, a gap to fill, a resume
  };
  struct Step {
    std::vector<Out> send;
    std::optional<Read> read;
  };
  struct Row {
    std::int64_t seq = 0;
    FramePtr frame;
  };
  struct Replay {
    std::int64_t current = 0;  ///< the user's last assigned seq
    std::vector<Row> rows;     ///< seq > the read's `after`, ascending
  };

  /// `start_seq`: the user's seq read before the handshake (null with `resume_from`: the
  /// client's `/ws?last_seq=N`, resumed before any frame goes out).
  Sequencer(std::optional<std::int64_t> start_seq, std::optional<std::int64_t> resume_from)
      : start_seq_(start_seq), pending_resume_(resume_from) {}

  /// After the handshake: the first read.
  Step begin();
  /// A task update from Kafka with the user's `seq`.
  Step on_live(std::int64_t seq, FramePtr frame);
  /// The client's `{"type":"resume","last_seq":N}`.
  Step on_resume(std::int64_t after);
  /// The answer to the read the last step asked for.
  Step on_read(Replay replay);

  std::int64_t last_seq() const noexcept { return last_seq_; }
  bool reading() const noexcept { return reading_ != Reading::none; }
  std::uint64_t gap_fills() const noexcept { return gap_fills_; }
  /// Gaps the DB could no longer fill (answered with recovered:false).
  std::uint64_t unrecovered_gaps() const noexcept { return unrecovered_gaps_; }

  /// `{"type":"resumed","recovered":...,"seq":...}`
  static FramePtr resumed_frame(bool recovered, std::int64_t seq);

 private:
  enum class Reading { none, start, gap, resume };  // the read in flight
  void ask(Step& step, Reading kind, std::int64_t after, bool rows);
  void release_held(Step& step);
  void resume_with(Step& step, std::int64_t after, Replay& r);
  void send_rows(Step& step, Replay& r);

  std::optional<std::int64_t> start_seq_;
  std::optional<std::int64_t> pending_resume_;
  std::int64_t last_seq_ = 0;
  Reading reading_ = Reading::none;
  std::int64_t resume_after_ = 0;  ///< of the resume read in flight
  std::map<std::int64_t, FramePtr> held_;
  std::uint64_t gap_fills_ = 0, unrecovered_gaps_ = 0;
};

}  // namespace taskstream::ws
