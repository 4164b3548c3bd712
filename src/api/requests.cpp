// Reading requests of the task and account routes (api/requests.hpp).
#include "api/requests.hpp"

#include <algorithm>
#include <charconv>

#include "api/body.hpp"
#include "events/events.hpp"
#include "outbox/task_events.hpp"
#include "util/logging.hpp"

namespace taskstream::api::detail {

using http::HttpError;
using http::Request;
using http::Response;

std::string normalize_email(std::string email) {
  std::transform(email.begin(), email.end(), email.begin(), [](unsigned char c) { return std::tolower(c); });
  return email;
}

std::pair<std::string, std::string> credentials(const Request& req) {
  auto body = parse_object(req.body);
  check_fields(body, {"email", "password"});
  auto email = string_field(body, "email");
  auto password = string_field(body, "password");
  if (!email) throw HttpError(422, "email: field required");
  if (!password) throw HttpError(422, "password: field required");
  return {normalize_email(*email), *password};
}

void check_email(const std::string& email) {
  auto at = email.find('@');
  if (email.size() > 254 || at == std::string::npos || at == 0 || at + 1 >= email.size() || email.find('@', at + 1) != std::string::npos ||
      email.find_first_of(" \t\r\n") != std::string::npos)
    throw HttpError(422, "email: not a valid email address");
}


TaskFields task_fields(const Request& req) {
  auto body = parse_object(req.body);
  check_fields(body, {"title", "description", "status", "priority", "due_at"},
               {"id", "user_id", "created_at", "updated_at", "completed_at", "version"});
  TaskFields f;
  if (body.contains("title")) {
    if (is_null(body, "title")) throw HttpError(422, "title: must not be null");
    f.title = string_field(body, "title");
    auto n = utf8_length(*f.title);
    if (n < 1 || n > 200) throw HttpError(422, "title: must be 1 to 200 characters");
  }
  if (body.contains("description")) {
    f.description = string_field(body, "description");
    if (*f.description && utf8_length(**f.description) > 10000) throw HttpError(422, "description: must be at most 10000 characters");
  }
  if (body.contains("status")) {
    f.status = string_field(body, "status");
    if (!f.status || !one_of(*f.status, kStatuses)) throw HttpError(422, "status: must be one of todo, in_progress, done");
  }
  if (body.contains("priority")) {
    f.priority = string_field(body, "priority");
    if (!f.priority || !one_of(*f.priority, kPriorities)) throw HttpError(422, "priority: must be one of low, medium, high");
  }
  if (body.contains("due_at")) {
    f.due_at = string_field(body, "due_at");
    if (*f.due_at) {
      // Stored as UTC in one shape, so the reminder scheduler can compare it as text.
      auto utc = events::to_utc_millis(**f.due_at);
      if (!utc) throw HttpError(422, "due_at: must be an RFC 3339 date-time, e.g. 2026-12-01T17:00:00Z");
      *f.due_at = *utc;
    }
  }
  return f;
}

bool apply(storage::Task& t, const TaskFields& f, const std::string& now) {
  const storage::Task before = t;
  if (f.title) t.title = *f.title;
  if (f.description) t.description = *f.description;
  if (f.priority) t.priority = *f.priority;
  if (f.due_at) t.due_at = *f.due_at;
  if (f.status) {
    if (*f.status == "done" && t.status != "done") t.completed_at = now;
    if (*f.status != "done") t.completed_at.reset();
    t.status = *f.status;
  }
  return !(t == before);
}

std::string change_type(const storage::Task& before, const storage::Task& after) {
  return before.status != "done" && after.status == "done" ? "task_completed" : "task_updated";
}

std::string traceparent_of(const Request& req) {
  auto tp = req.header("traceparent").value_or("");
  if (tp.size() > 256 || util::trace_id_of(tp).empty()) return {};
  if (tp.substr(0, 2) == "00" && tp.size() != 55) return {};
  if (tp.substr(0, 2) == "ff") return {};
  for (char c : tp)
    if (c < 0x21 || c > 0x7e) return {};
  return std::string(tp);
}

std::optional<IfMatch> if_match(const Request& req) {
  auto h = req.header("if-match");
  if (!h) return std::nullopt;
  const auto bad = [] { return HttpError(400, "If-Match: must be \"*\" or entity tags such as \"3\" (the task's version, from its ETag)"); };
  std::string_view v = *h;
  const auto trim = http::trim_ows;
  v = trim(v);
  IfMatch out;
  if (v == "*") {
    out.any = true;
    return out;
  }
  // The contract's older form, a bare version (`If-Match: 3`), reads as "3".
  if (std::int64_t version = 0; !v.empty() && v.size() <= 18 && v.front() != '-' && v.front() != '+') {
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
    if (ec == std::errc() && p == v.data() + v.size()) {
      out.versions.push_back(version);
      return out;
    }
  }
  // "#entity-tag" is a list of zero or more: an empty one names no version (412).
  while (!v.empty()) {
    v = trim(v);
    bool weak = false;
    if (v.substr(0, 2) == "W/") {
      weak = true;
      v.remove_prefix(2);
    }
    if (v.empty() || v.front() != '"') throw bad();
    const auto close = v.find('"', 1);
    if (close == std::string_view::npos) throw bad();
    const auto tag = v.substr(1, close - 1);
    // etagc: %x21 / %x23-7E / obs-text
    for (unsigned char c : tag)
      if (c < 0x21 || c == 0x7f) throw bad();
    std::int64_t version = 0;
    auto [p, ec] = std::from_chars(tag.data(), tag.data() + tag.size(), version);
    if (!weak && ec == std::errc() && p == tag.data() + tag.size() && !tag.empty() && tag.front() != '-') out.versions.push_back(version);
    v = trim(v.substr(close + 1));
    if (v.empty()) break;
    if (v.front() != ',') throw bad();
    v.remove_prefix(1);
    if (trim(v).empty()) throw bad();  // a trailing comma
  }
  return out;
}

Response task_response(int status, const storage::Task& t) {
  auto r = Response::json(status, outbox::task_to_json(t));
  r.headers.emplace_back("ETag", "\"" + std::to_string(t.version) + "\"");
  return r;
}

const std::string& task_id(const Request& req) {
  const auto& id = req.params.at("id");
  if (!events::is_uuid(id)) throw HttpError(404, "task not found");
  return id;
}

}  // namespace taskstream::api::detail
