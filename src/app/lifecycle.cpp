#include "app/lifecycle.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <thread>

namespace taskstream::app {

namespace {

void stop_one(const Lifecycle::Component& c, Lifecycle::Deadline until) {
  if (!c.stop) return;
  const auto begun = std::chrono::steady_clock::now();
  try {
    c.stop(until);
  } catch (const std::exception& e) {
    spdlog::error("stop {}: {}", c.name, e.what());
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begun);
  spdlog::debug("stopped {} in {} ms", c.name, took.count());
  if (std::chrono::steady_clock::now() > until) spdlog::warn("stop {}: past the stop deadline", c.name);
}

}  // namespace

void Lifecycle::start_all(std::chrono::milliseconds on_failure_deadline) {
  for (; started_ < components_.size(); ++started_) {
    const auto& c = components_[started_];
    if (!c.start) continue;
    try {
      c.start();
    } catch (...) {
      spdlog::critical("start {} failed; stopping what started", c.name);
      stop_all(std::chrono::steady_clock::now() + on_failure_deadline);
      throw;
    }
  }
}

void Lifecycle::stop_all(Deadline until) {
  std::size_t i = started_;
  while (i > 0) {
    const auto& c = components_[i - 1];
    if (!c.alongside) {
      stop_one(c, until);
      --i;
      continue;
    }
    // A run of `alongside` components: stop them together, then go on.
    std::vector<std::thread> group;
    while (i > 0 && components_[i - 1].alongside) {
      group.emplace_back([&c = components_[i - 1], until] { stop_one(c, until); });
      --i;
    }
    for (auto& t : group) t.join();
  }
  started_ = 0;
}

}  // namespace taskstream::app
