#pragma once
// Logging set-up: stderr, text or one JSON object a line (LOG_FORMAT=json).

#include "config/settings.hpp"

namespace taskstream::util {

/// Configures the default spdlog logger; call once at start, before any thread logs.
void setup_logging(const std::string& level, config::LogFormat format);

}  // namespace taskstream::util
