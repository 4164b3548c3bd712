#pragma once
// `taskstream serve` and `taskstream migrate`: everything is built and connected here,
// in one place, and stopped in reverse order (after Redpanda's application.cc).

#include "config/settings.hpp"

namespace taskstream::app {

struct ServeOptions {
  bool dev = false;  ///< generate a JWT secret when none is set
  std::chrono::milliseconds stop_deadline{15000};
};

/// Runs until SIGTERM/SIGINT; returns the exit code.
int serve(config::Settings settings, const ServeOptions& options);
/// Applies the database migrations; returns the exit code.
int migrate(const config::Settings& settings);

}  // namespace taskstream::app
