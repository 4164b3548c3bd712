#pragma once
// fuzz_http's route table and dispatch (fuzz_http_routes.cpp).

#include <string>

#include "http/message.hpp"

/// Runs `req` through a Router holding the API's route table, on a private io_context.
/// Aborts when an exception escapes Router::dispatch. `label` gets the matched pattern.
taskstream::http::Response fuzz_dispatch(taskstream::http::Request& req, std::string& label);
