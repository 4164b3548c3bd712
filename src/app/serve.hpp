#pragma once
// `taskstream serve`, `taskstream worker` and `taskstream migrate`. serve and worker are one
// wiring (src/app/serve.cpp): worker is serve with fewer components. Components start in
// order and stop in reverse on one Lifecycle (app/lifecycle.hpp) by one deadline, after
// Redpanda's application.cc; each registers its own metrics.

#include <chrono>
#include <cstdint>
#include <string>

#include "config/settings.hpp"

namespace taskstream::app {

struct ServeOptions {
  bool dev = false;  ///< generate a JWT secret when none is set
  std::string consumers = "all";  ///< which consumers run in the process: all, none, or a comma list
  std::chrono::milliseconds stop_deadline{15000};
};

/// Runs until SIGTERM/SIGINT; returns the exit code.
int serve(config::Settings settings, const ServeOptions& options);
struct WorkerOptions {
  std::string consumers = "all";
  std::uint16_t port = 8001;  ///< /healthz, /readyz, /metrics
  std::chrono::milliseconds stop_deadline{15000};
};
/// Runs consumers only, until SIGTERM/SIGINT; returns the exit code.
int worker(const config::Settings& settings, const WorkerOptions& options);

/// Applies the database migrations; returns the exit code.
int migrate(const config::Settings& settings);

}  // namespace taskstream::app
