#include "ws/sequencer.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace taskstream::ws {

Sequencer::FramePtr Sequencer::resumed_frame(bool recovered, std::int64_t seq) {
  return std::make_shared<const std::string>(fmt::format(R"({{"type":"resumed","recovered":{},"seq":{}}})", recovered, seq));
}

void Sequencer::ask(Step& step, Reading kind, std::int64_t after, bool rows) {
  reading_ = kind;
  step.read = Read{after, rows, kind == Reading::gap ? Read::Kind::gap : kind == Reading::resume ? Read::Kind::resume : Read::Kind::start};
}

Sequencer::Step Sequencer::begin() {
  Step step;
  if (pending_resume_) {  // resumed before any frame goes out: none can arrive twice or ahead of it
    resume_after_ = *pending_resume_;
    pending_resume_.reset();
    ask(step, Reading::resume, resume_after_, true);
  } else {
    ask(step, Reading::start, start_seq_.value_or(0), start_seq_.has_value());
  }
  return step;
}

Sequencer::Step Sequencer::on_live(std::int64_t seq, FramePtr frame) {
  Step step;
  if (reading_ != Reading::none) {
    held_.emplace(seq, std::move(frame));
    return step;
  }
  if (seq <= last_seq_) return step;  // sent already (a replay, or Kafka delivering again)
  if (seq == last_seq_ + 1) {
    last_seq_ = seq;
    step.send.push_back({std::move(frame), false});
    return step;
  }
  // A gap: what lies between comes from the DB (it committed before Kafka saw it).
  held_.emplace(seq, std::move(frame));
  ++gap_fills_;
  ask(step, Reading::gap, last_seq_, true);
  return step;
}

Sequencer::Step Sequencer::on_resume(std::int64_t after) {
  Step step;
  if (reading_ != Reading::none) {
    pending_resume_ = after;  // after the read in flight (the newest request wins)
    return step;
  }
  resume_after_ = after;
  ask(step, Reading::resume, after, true);
  return step;
}

void Sequencer::send_rows(Step& step, Replay& r) {
  for (auto& row : r.rows) {
    if (row.seq <= last_seq_) continue;
    if (row.seq != last_seq_ + 1) break;
    last_seq_ = row.seq;
    step.send.push_back({std::move(row.frame), true});
  }
}

void Sequencer::resume_with(Step& step, std::int64_t after, Replay& r) {
  // Recovered when the rows after `after` are all there: they start at after+1 and run
  // without a hole up to the current seq.
  bool recovered = after <= r.current;
  std::int64_t expect = after + 1;
  for (const auto& row : r.rows) {
    if (row.seq != expect) {
      recovered = false;
      break;
    }
    ++expect;
  }
  if (recovered && expect - 1 != r.current) recovered = false;
  if (recovered) {
    last_seq_ = after;
    for (auto& row : r.rows) {
      last_seq_ = row.seq;
      step.send.push_back({std::move(row.frame), true});
    }
  } else {
    last_seq_ = std::max<std::int64_t>(r.current, 0);
  }
  // Updates held meanwhile are newer than the DB read, or already in it.
  held_.erase(held_.begin(), held_.upper_bound(last_seq_));
  step.send.push_back({resumed_frame(recovered, last_seq_), false});
}

Sequencer::Step Sequencer::on_read(Replay r) {
  Step step;
  const auto kind = reading_;
  reading_ = Reading::none;
  switch (kind) {
    case Reading::none:
      return step;  // no read was asked: nothing to answer
    case Reading::resume:
      resume_with(step, resume_after_, r);
      break;
    case Reading::start:
      last_seq_ = start_seq_.value_or(r.current);
      send_rows(step, r);
      break;
    case Reading::gap: {
      send_rows(step, r);
      // The read held every row after last_seq_. If the next one is not there but a later
      // seq is (held, or further rows), the ones between were pruned: they cannot be had.
      // Say so (recovered:false, the seq skipped to) rather than wait forever or skip silently.
      std::optional<std::int64_t> next;
      if (!held_.empty() && held_.begin()->first > last_seq_ + 1) next = held_.begin()->first;
      for (const auto& row : r.rows)
        if (row.seq > last_seq_ + 1) {
          next = next ? std::min(*next, row.seq) : row.seq;
          break;
        }
      if (next && r.current >= *next) {
        ++unrecovered_gaps_;
        last_seq_ = *next - 1;
        step.send.push_back({resumed_frame(false, last_seq_), false});
        send_rows(step, r);
      }
      break;
    }
  }
  release_held(step);
  return step;
}

void Sequencer::release_held(Step& step) {
  while (!held_.empty()) {
    auto it = held_.begin();
    if (it->first <= last_seq_) {
      held_.erase(it);
      continue;
    }
    if (it->first != last_seq_ + 1) {
      ++gap_fills_;
      return ask(step, Reading::gap, last_seq_, true);
    }
    last_seq_ = it->first;
    step.send.push_back({std::move(it->second), false});
    held_.erase(it);
  }
  if (pending_resume_) {
    resume_after_ = *pending_resume_;
    pending_resume_.reset();
    ask(step, Reading::resume, resume_after_, true);
  }
}

}  // namespace taskstream::ws
