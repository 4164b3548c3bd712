#pragma once
// What the account and task routes (api/routes.cpp) read from a request, checked as
// docs/api.md says: credentials, task fields, If-Match, traceparent, the task id of the
// path. Each throws http::HttpError (400/404/422) with the `detail` a client sees.
// Non-blocking; internal to src/api.

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.hpp"
#include "storage/types.hpp"

namespace taskstream::api::detail {

constexpr std::string_view kStatuses[] = {"todo", "in_progress", "done"};
constexpr std::string_view kPriorities[] = {"low", "medium", "high"};

bool one_of(std::string_view v, const auto& allowed) { return std::find(std::begin(allowed), std::end(allowed), v) != std::end(allowed); }

/// ASCII lower case (emails compare case-insensitively).
std::string normalize_email(std::string email);
/// Email and password of a register or token body.
std::pair<std::string, std::string> credentials(const http::Request& req);
/// 422 unless `email` looks like an address (one @, something on both sides, no spaces).
void check_email(const std::string& email);

/// Writable task fields of a POST or PATCH body, checked.
struct TaskFields {
  std::optional<std::string> title;
  std::optional<std::optional<std::string>> description;  // outer: given; inner: null
  std::optional<std::string> status;
  std::optional<std::string> priority;
  std::optional<std::optional<std::string>> due_at;
};

TaskFields task_fields(const http::Request& req);
/// Applies `f` to `t`; true when anything changed. Keeps completed_at in step with status.
bool apply(storage::Task& t, const TaskFields& f, const std::string& now);
/// The event type of a change from `before` to `after`.
std::string change_type(const storage::Task& before, const storage::Task& after);
/// The request's W3C traceparent, when well formed (one that is not starts no trace: it is
/// not copied into the events' headers).
std::string traceparent_of(const http::Request& req);

/// If-Match as RFC 9110 section 13.1.1 reads it: "*" (any current version), or a list of
/// entity tags `"3"` / `W/"3"`; also a bare version `3` (docs/api.md). Strong comparison: a weak tag never matches, nor does a tag
/// that is not a version; the change goes ahead when the task's version is one of the
/// strong numeric tags, else 412 (an empty list too). nullopt: no header, no precondition.
/// A header that is not that syntax is 400. The OpenAPI pattern of If-Match is this grammar (docs/api.md).
struct IfMatch {
  bool any = false;                    ///< "*"
  std::vector<std::int64_t> versions;  ///< strong tags that are versions
};
std::optional<IfMatch> if_match(const http::Request& req);

/// The task as JSON with its ETag (the version).
http::Response task_response(int status, const storage::Task& t);
/// A task id that is not a UUID cannot exist: 404 without asking the database.
const std::string& task_id(const http::Request& req);

}  // namespace taskstream::api::detail
