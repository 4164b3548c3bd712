#pragma once
// Lifecycle: the components of a process (serve, worker) start in the order they are added
// and stop in the reverse order, all within one deadline (docs/architecture.md, "One
// lifecycle"), as Redpanda's application stacks its services' stops.
//
// A component added with `alongside` stops in parallel with its neighbours that are too:
// each maximal run of such components, in stack order, stops together and is joined before
// the next one (Kafka consumers whose closes are each bounded, but would add up with the
// broker gone).
//
// Thread-safety: add/start_all/stop_all from one owning thread.
// Blocking: start_all and stop_all block for as long as the components' start and stop do.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace taskstream::app {

class Lifecycle final {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  struct Component {
    std::string name;
    std::function<void()> start;          ///< may be empty (nothing to start)
    std::function<void(Deadline)> stop;   ///< may be empty; should return by the deadline
    bool alongside = false;               ///< stops in parallel with adjacent `alongside` ones
  };

  void add(Component c) { components_.push_back(std::move(c)); }

  /// Starts every component in order. When one throws, those already started stop (in
  /// reverse, by `on_failure_deadline` from now) and the exception propagates.
  void start_all(std::chrono::milliseconds on_failure_deadline = std::chrono::seconds(10));
  /// Stops what started, in reverse order, by `until` (each stop is told the deadline).
  /// Idempotent; a stop that throws is logged and the others still run.
  void stop_all(Deadline until);

 private:
  std::vector<Component> components_;
  std::size_t started_ = 0;  ///< components_[0..started_) have started
};

}  // namespace taskstream::app
