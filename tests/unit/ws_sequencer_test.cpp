// ws::Sequencer, the per-socket order of task updates, alone: a few cases by hand, then a
// property test against a model of the user's outbox rows, with thousands of random
// interleavings of commits, live frames (late, missed, delivered again), client resumes and
// database answers, some of the oldest rows pruned.

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>

#include "ws/sequencer.hpp"

using taskstream::ws::Sequencer;

namespace {

Sequencer::FramePtr frame(std::int64_t seq) { return std::make_shared<const std::string>(std::to_string(seq)); }

/// The user's rows: seq 1..current committed, those <= pruned gone from the outbox.
struct Db {
  std::int64_t current = 0, pruned = 0;
  Sequencer::Replay read(const Sequencer::Read& r) const {
    Sequencer::Replay out{current, {}};
    if (r.rows)
      for (std::int64_t s = std::max(r.after, pruned) + 1; s <= current; ++s) out.rows.push_back({s, frame(s)});
    return out;
  }
};

struct Sent {
  bool resumed = false, recovered = false;
  std::int64_t seq = 0;
};

Sent parse(const Sequencer::Out& o) {
  const auto& t = *o.frame;
  if (t.front() != '{') return {false, false, std::stoll(t)};
  Sent s{true, t.find("\"recovered\":true") != std::string::npos, 0};
  s.seq = std::stoll(t.substr(t.find("\"seq\":") + 6));
  return s;
}

std::vector<Sent> sent(const Sequencer::Step& step) {
  std::vector<Sent> out;
  for (const auto& o : step.send) out.push_back(parse(o));
  return out;
}

}  // namespace

TEST(WsSequencer, ANewSocketSendsWhatCameSinceItsStartThenLiveFramesInOrder) {
  Db db{7, 0};
  Sequencer s(5, std::nullopt);  // the user's seq was 5 before the 101; 6 and 7 came since
  auto step = s.begin();
  ASSERT_TRUE(step.read);
  EXPECT_EQ(step.read->after, 5);
  EXPECT_TRUE(step.read->rows);
  // Live 7 arrives while the read is out: held, then dropped as the read brings it.
  EXPECT_TRUE(s.on_live(7, frame(7)).send.empty());
  step = s.on_read(db.read(*step.read));
  auto out = sent(step);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].seq, 6);
  EXPECT_EQ(out[1].seq, 7);
  EXPECT_TRUE(step.send[0].replay);
  EXPECT_FALSE(step.read);
  EXPECT_EQ(s.on_live(8, frame(8)).send.size(), 1u);
  EXPECT_TRUE(s.on_live(8, frame(8)).send.empty()) << "delivered again: dropped";
  EXPECT_EQ(s.last_seq(), 8);
}

TEST(WsSequencer, ALiveGapIsFilledFromTheDatabase) {
  Db db{3, 0};
  Sequencer s(3, std::nullopt);
  auto step = s.begin();
  step = s.on_read(db.read(*step.read));
  EXPECT_TRUE(step.send.empty());
  db.current = 6;
  step = s.on_live(6, frame(6));  // 4 and 5 went to this instance before it listened
  ASSERT_TRUE(step.read);
  EXPECT_EQ(step.read->after, 3);
  EXPECT_EQ(s.gap_fills(), 1u);
  step = s.on_read(db.read(*step.read));
  auto out = sent(step);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].seq, 4);
  EXPECT_EQ(out[2].seq, 6);
  EXPECT_EQ(s.unrecovered_gaps(), 0u);
}

TEST(WsSequencer, ALiveGapTheDatabaseNoLongerHoldsIsAnsweredWithRecoveredFalse) {
  Db db{3, 0};
  Sequencer s(3, std::nullopt);
  s.on_read(db.read(*s.begin().read));
  db.current = 9;
  db.pruned = 6;  // 4..6 are gone
  auto step = s.on_live(9, frame(9));
  step = s.on_read(db.read(*step.read));
  auto out = sent(step);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(out[0].resumed);
  EXPECT_FALSE(out[0].recovered);
  EXPECT_EQ(out[0].seq, 6) << "skips to the oldest row still there, saying so";
  EXPECT_EQ(out[1].seq, 7);
  EXPECT_EQ(out[3].seq, 9);
  EXPECT_EQ(s.unrecovered_gaps(), 1u);
}

TEST(WsSequencer, ResumeReplaysWhatWasMissedOrSaysItCannot) {
  Db db{10, 0};
  Sequencer s(std::nullopt, 7);  // /ws?last_seq=7
  auto step = s.begin();
  ASSERT_TRUE(step.read);
  EXPECT_EQ(step.read->after, 7);
  auto out = sent(s.on_read(db.read(*step.read)));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].seq, 8);
  EXPECT_TRUE(out[3].resumed && out[3].recovered);
  EXPECT_EQ(out[3].seq, 10);

  db.pruned = 5;
  step = s.on_resume(2);  // from before what the outbox still holds
  out = sent(s.on_read(db.read(*step.read)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].resumed);
  EXPECT_FALSE(out[0].recovered);
  EXPECT_EQ(out[0].seq, 10);

  step = s.on_resume(12);  // ahead of the user's seq
  out = sent(s.on_read(db.read(*step.read)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].recovered);
  EXPECT_EQ(out[0].seq, 10);
}

// The model: the client's position starts at the socket's start seq. A data frame must be
// position + 1. A recovered resume answer (rows, then `resumed`) may start anywhere after
// the resume's `after` and ends at the `resumed` seq; recovered:false moves the position to
// its seq, and only when the rows in between are really gone (pruned) or the client asked
// from the future. At the end every committed seq has been reached: position == current.
TEST(WsSequencer, RandomInterleavingsKeepOrderNoGapNoDuplicateAndSayWhenTheyCannot) {
  std::size_t runs = 0, resumes = 0, unrecovered = 0, gap_fills = 0, frames = 0;
  for (std::uint32_t seed = 1; seed <= 3000; ++seed) {
    std::mt19937 rng(seed);
    auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
    Db db;
    db.current = static_cast<std::int64_t>(rng() % 5);
    const std::int64_t total = db.current + 5 + static_cast<std::int64_t>(rng() % 60);
    const bool url_resume = chance(20);
    const std::int64_t start = db.current;
    std::int64_t position = start;
    Sequencer s(url_resume ? std::nullopt : std::optional(start), url_resume ? std::optional<std::int64_t>(rng() % (start + 2)) : std::nullopt);
    std::deque<std::int64_t> live;                // frames on their way from Kafka
    std::optional<Sequencer::Read> read;          // the one read in flight
    std::vector<std::int64_t> pending_after;      // `after` of each resume not answered yet, in order
    using Kind = Sequencer::Read::Kind;

    // Replays a step's frames through the client model. `answering`: the kind of read whose
    // answer produced the step (only those carry a `resumed`).
    auto walk = [&](const Sequencer::Step& step, std::optional<Kind> answering = std::nullopt) {
      if (step.read) {
        ASSERT_FALSE(read) << "seed " << seed << ": a second read while one is out";
        read = step.read;
      }
      const auto out = sent(step);
      std::size_t i = 0;
      while (i < out.size()) {
        std::size_t r = i;  // the next `resumed` of the step, or its end
        while (r < out.size() && !out[r].resumed) ++r;
        if (r < out.size()) ASSERT_TRUE(answering == Kind::resume || answering == Kind::gap) << "seed " << seed << ": resumed out of the blue";
        if (r < out.size() && answering == Kind::resume) {
          ASSERT_FALSE(pending_after.empty()) << "seed " << seed << ": an answer to no resume";
          const auto after = pending_after.front();
          pending_after.erase(pending_after.begin());
          if (out[r].recovered) {
            ASSERT_GE(after, db.pruned) << "seed " << seed << ": recovered over pruned rows";
            std::int64_t expect = after;
            for (std::size_t m = i; m < r; ++m) ASSERT_EQ(out[m].seq, ++expect) << "seed " << seed << ": the replay after " << after;
            ASSERT_EQ(out[r].seq, expect) << "seed " << seed;
            ASSERT_EQ(expect, db.current) << "seed " << seed << ": a replay stops at the user's seq";
            ++resumes;
          } else {
            ASSERT_EQ(r, i) << "seed " << seed << ": nothing replayed before recovered:false";
            ASSERT_TRUE(after < db.pruned || after > db.current) << "seed " << seed << ": recovered:false for a resume after " << after
                                                                 << " with rows " << db.pruned + 1 << ".." << db.current << " all there";
            ASSERT_EQ(out[r].seq, db.current) << "seed " << seed;
            ++unrecovered;
          }
          position = out[r].seq;
        } else {
          for (std::size_t m = i; m < r; ++m) ASSERT_EQ(out[m].seq, ++position) << "seed " << seed << ": out of order or a gap";
          if (r < out.size()) {  // a live gap the outbox can no longer fill
            ASSERT_FALSE(out[r].recovered) << "seed " << seed;
            ASSERT_LE(out[r].seq, db.pruned) << "seed " << seed << ": skipped " << position + 1 << ".." << out[r].seq << " that the outbox holds";
            ASSERT_GT(out[r].seq, position) << "seed " << seed;
            position = out[r].seq;
            ++unrecovered;
          }
        }
        frames += r - i;
        i = r + 1;
      }
    };
    auto answer = [&] {
      const auto r = *read;
      read.reset();
      walk(s.on_read(db.read(r)), r.kind);
    };

    auto first_step = s.begin();
    if (url_resume) pending_after.push_back(first_step.read->after);
    walk(first_step);
    if (::testing::Test::HasFatalFailure()) return;
    int resume_budget = 3;
    for (int tick = 0; tick < 2000; ++tick) {
      const bool done_committing = db.current >= total;
      if (done_committing && live.empty() && !read) break;
      const int what = static_cast<int>(rng() % 100);
      if (what < 30 && !done_committing) {  // a change commits; its frame heads for Kafka
        ++db.current;
        live.push_back(db.current);
        if (chance(8) && db.pruned + 2 < db.current) db.pruned += 1 + static_cast<std::int64_t>(rng() % 3);  // retention prunes the oldest
      } else if (what < 65 && !live.empty()) {  // Kafka delivers the next frame (or misses it, or delivers again)
        const auto seq = live.front();
        live.pop_front();
        if (chance(10) && !live.empty()) continue;  // this instance never saw it
        walk(s.on_live(seq, frame(seq)));
        if (chance(5)) live.push_front(std::max<std::int64_t>(1, seq - static_cast<std::int64_t>(rng() % 4)));  // a rewind
      } else if (what < 90 && read) {  // the database answers
        answer();
      } else if (what >= 95 && resume_budget > 0) {  // the client resumes (its position, or a bad one)
        --resume_budget;
        std::int64_t after = chance(70) ? position : static_cast<std::int64_t>(rng() % (db.current + 3));
        // While a read is out, a resume waits; a newer one replaces the one waiting (one answer).
        const std::size_t in_flight = read && read->kind == Kind::resume ? 1 : 0;
        if (read && pending_after.size() > in_flight) pending_after.back() = after;
        else pending_after.push_back(after);
        walk(s.on_resume(after));
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    // Quiescence: everything committed, delivered, answered. The last frame reached the
    // socket (so a trailing gap was seen) and the client is at the user's seq.
    while (read || !live.empty()) {
      if (read) {
        answer();
      } else {
        const auto seq = live.front();
        live.pop_front();
        walk(s.on_live(seq, frame(seq)));
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    if (s.last_seq() < db.current) {  // the final frame was missed: deliver it (Kafka's at-least-once)
      walk(s.on_live(db.current, frame(db.current)));
      while (read) answer();
    }
    ASSERT_TRUE(pending_after.empty()) << "seed " << seed << ": a resume was never answered";
    ASSERT_EQ(position, db.current) << "seed " << seed;
    ASSERT_EQ(s.last_seq(), db.current) << "seed " << seed;
    gap_fills += s.gap_fills();
    ++runs;
  }
  std::printf("%zu runs: %zu frames, %zu gap fills, %zu recovered resumes, %zu recovered:false\n", runs, frames, gap_fills, resumes, unrecovered);
}
