// The OpenAPI 3 description of the API, generated from the router's route table: every
// route is an operation (one without a written entry here still appears, with its summary),
// and what follows from the route itself is added to each: its security, 401 and 403 when it
// needs a token or a role, 400 and 413 when it takes a body, 503/507 with Retry-After when it
// uses the database, and 500. The entries below add what only the handler knows: parameters
// with their exact formats and limits, bodies, answers and examples. A test checks that the
// router and the entries name the same routes; the property-based API test (Schemathesis,
// tests/api) checks the document against the running service.

#include <map>

#include "storage/store.hpp"

#include "api/api.hpp"

namespace taskstream::api {
namespace {

using nlohmann::json;

json ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }
json body_of(const std::string& schema) { return {{"required", true}, {"content", {{"application/json", {{"schema", ref(schema)}}}}}}; }
json answer(const std::string& description, const std::string& schema = {}) {
  json r{{"description", description}};
  if (!schema.empty()) r["content"] = {{"application/json", {{"schema", ref(schema)}}}};
  return r;
}
json problem(const std::string& description) {
  return {{"description", description}, {"content", {{"application/problem+json", {{"schema", ref("Problem")}}}}}};
}
/// A problem answer that always carries Retry-After (seconds).
json retry_problem(const std::string& description) {
  json r = problem(description);
  r["headers"]["Retry-After"] = {{"description", "Seconds to wait before trying again"}, {"required", true},
                                 {"schema", {{"type", "integer"}, {"minimum", 0}}}};
  return r;
}
/// A task in the body and its version as a strong ETag (what If-Match takes back).
json task_answer(const std::string& description) {
  json r = answer(description, "Task");
  r["headers"]["ETag"] = {{"description", "The task's version, e.g. \"3\"; send it back in If-Match"}, {"required", true},
                          {"schema", {{"type", "string"}, {"pattern", "^\"[0-9]+\"$"}}}};
  return r;
}
json id_param() {
  return json::array({{{"name", "id"}, {"in", "path"}, {"required", true},
                       {"description", "A UUID; one that is not cannot exist (404)"},
                       {"schema", {{"type", "string"}, {"format", "uuid"}}}}});
}
/// RFC 9110's If-Match: "*" or a list of entity tags, strong ("3") or weak (W/"3").
constexpr const char* kIfMatchPattern = "^[ \\t]*(\\*|[0-9]{1,18}|((W/)?\"[!#-~\\x80-\\xff]*\"([ \\t]*,[ \\t]*(W/)?\"[!#-~\\x80-\\xff]*\")*)?)[ \\t]*$";

/// "METHOD /path" → operation.
const std::map<std::string, json>& operations() {
  static const std::map<std::string, json> ops = [] {
    std::map<std::string, json> m;
    m["POST /auth/register"] = {{"summary", "Register an account"}, {"security", json::array()}, {"requestBody", body_of("Credentials")},
                                {"responses", {{"201", answer("Registered", "User")}, {"409", problem("Email taken")}, {"422", problem("Invalid body")}}}};
    m["POST /auth/token"] = {{"summary", "Exchange email and password for a bearer token"}, {"security", json::array()},
                             {"requestBody", body_of("Credentials")},
                             {"responses", {{"200", answer("A token", "Token")}, {"401", problem("Wrong email or password")},
                                            {"422", problem("Invalid body")},
                                            {"429", retry_problem("Too many attempts from this address, or too many failures for this account; see Retry-After")}}}};
    m["GET /users/me"] = {{"summary", "The caller's account"}, {"responses", {{"200", answer("The caller", "User")}, {"401", problem("Not authenticated")}}}};
    m["POST /tasks"] = {{"summary", "Create a task"}, {"requestBody", body_of("TaskCreate")},
                        {"responses", {{"201", task_answer("Created")}, {"401", problem("Not authenticated")}, {"422", problem("Invalid body")}}}};
    m["GET /tasks"] = {{"summary", "List the caller's tasks, newest first"},
                       {"parameters", json::array({{{"name", "status"}, {"in", "query"}, {"description", "Only tasks of this status; absent: all"},
                                                    {"schema", {{"type", "string"}, {"enum", {"todo", "in_progress", "done"}}}}},
                                                   {{"name", "limit"}, {"in", "query"}, {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"default", 50}}}},
                                                   {{"name", "cursor"}, {"in", "query"},
                                                    {"description", "The next_cursor of the previous page: the created_at and id of its last task, \"~\" between "
                                                                    "them. Any string of this form is a position in the list"},
                                                    {"schema", {{"type", "string"}, {"pattern", std::string(storage::kCursorPattern)}}},
                                                    {"example", "2026-12-04T10:44:35.325Z~01a240a7-e77d-7904-9eea-ec38ee72caff"}}})},
                       {"responses", {{"200", answer("A page of tasks", "TaskPage")}, {"422", problem("A status, limit or cursor that is not of its form")}}}};
    m["GET /tasks/{id}"] = {{"summary", "One task"}, {"parameters", id_param()},
                            {"responses", {{"200", task_answer("The task")}, {"404", problem("No such task of the caller")}}}};
    m["PATCH /tasks/{id}"] = {{"summary", "Change a task"},
                              {"parameters", json::array({id_param()[0], {{"name", "If-Match"}, {"in", "header"},
                                                                          {"schema", {{"type", "string"}, {"pattern", kIfMatchPattern}}},
                                                                          {"example", "\"3\""},
                                                                          {"description", "RFC 9110 If-Match: the ETag of the version the change is based on. "
                                                                                          "Strong comparison: the change is made when the task's version is one "
                                                                                          "of the strong tags (\"*\": any version), else 412; a weak tag never "
                                                                                          "matches. A bare version (3) reads as \"3\". Absent: the change is made whatever the version"}}})},
                              {"requestBody", body_of("TaskPatch")},
                              {"responses", {{"200", task_answer("The changed task")}, {"404", problem("No such task")},
                                             {"400", problem("Malformed JSON, a body nested deeper than 32 levels, or an If-Match that is not RFC 9110's syntax")},
                                             {"412", problem("If-Match names no version the task is at: fetch it and retry")}, {"422", problem("Invalid body")}}}};
    m["POST /tasks/{id}/complete"] = {{"summary", "Mark a task done"}, {"parameters", id_param()},
                                      {"responses", {{"200", task_answer("The completed task")}, {"404", problem("No such task")}}}};
    m["DELETE /tasks/{id}"] = {{"summary", "Delete a task"}, {"parameters", id_param()},
                               {"responses", {{"204", answer("Deleted")}, {"404", problem("No such task")}}}};
    m["GET /tasks/{id}/history"] = {{"summary", "The audit trail of a task, oldest first"}, {"parameters", id_param()},
                                    {"responses", {{"200", answer("The trail", "History")},
                                                   {"404", problem("No such task of the caller, and no trail of one")},
                                                   {"410", {{"description", "The task was deleted: its trail (ending with task_deleted) is kept, in items"},
                                                            {"content", {{"application/problem+json", {{"schema", ref("DeletedTaskHistory")}}}}}}}}}};
    m["GET /notifications"] = {{"summary", "The caller's notifications, newest first"},
                               {"parameters", json::array({{{"name", "unread"}, {"in", "query"}, {"schema", {{"type", "boolean"}}}},
                                                           {{"name", "limit"}, {"in", "query"}, {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}}}}})},
                               {"responses", {{"200", answer("Notifications with per-channel status", "NotificationList")},
                                              {"422", problem("An unread that is not a boolean, or a limit out of range")}}}};
    m["POST /notifications/{id}/read"] = {{"summary", "Mark a notification read"}, {"parameters", id_param()},
                                          {"responses", {{"200", answer("The notification", "Notification")}, {"404", problem("No such notification of the caller")}}}};
    m["POST /notifications/read-all"] = {{"summary", "Mark all the caller's unread notifications read; no body is needed (one sent is ignored)"},
                                         {"responses", {{"200", answer("How many were unread and are now read (0 when none)", "ReadAllResult")},
                                                        {"401", problem("Not authenticated")}}}};
    auto admin_view = [&](const char* summary, const char* schema) {
      return json{{"summary", summary},
                  {"responses", {{"200", answer("The figures of the last sample (taken every few seconds by this instance)", schema)},
                                 {"401", problem("Missing, bad or expired token")},
                                 {"403", problem("The account is not an operator (ADMIN_EMAILS)")},
                                 {"503", problem("This process samples no figures")}}}};
    };
    m["GET /admin/outbox"] = admin_view("Outbox and relay: rows waiting, age of the oldest, publish rate, last error, lease, restarts (operators only)",
                                        "AdminOutbox");
    m["GET /admin/overview"] = admin_view("The pipeline at a glance: REST, outbox, relay, topics, consumer groups, with rates and health (operators only)",
                                          "AdminView");
    m["GET /admin/groups"] = admin_view("Consumer groups from Kafka: state, members, assignment, committed/end offsets, lag and its last 15 minutes "
                                        "(operators only)",
                                        "AdminView");
    m["GET /admin/topics"] = admin_view("Topics: partitions, leader, replicas, ISR, under-replicated, messages per second (operators only)", "AdminView");
    auto operators_only = [&](json op) {
      op["responses"]["401"] = problem("Missing, bad or expired token");
      op["responses"]["403"] = problem("The account is not an operator (ADMIN_EMAILS)");
      return op;
    };
    auto limit_param = [](int max) {
      return json{{"name", "limit"}, {"in", "query"}, {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", max}}}};
    };
    json topic_param = {{"name", "topic"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}},
                        {"description", "a service topic (task-events, task-updates, notification.request), with or without .dlq"}};
    m["GET /admin/dlq/{topic}"] = operators_only(
        {{"summary", "Dead letters of a topic's .dlq: the newest `limit` that match `filter` (operators only)"},
         {"parameters", json::array({topic_param,
                                     {{"name", "filter"}, {"in", "query"}, {"schema", {{"type", "string"}}},
                                      {"description", "FIELD=VALUE on a header (reason, error_class, any name) or key=<message key>"}},
                                     limit_param(1000)})},
         {"responses", {{"200", answer("The letters", "AdminDeadLetters")}, {"404", problem("Not a service topic, or its .dlq does not exist")},
                        {"422", problem("A filter or limit that does not parse")}, {"503", problem("Kafka is unreachable or disabled")}}}});
    m["POST /admin/dlq/{topic}/redrive"] = operators_only(
        {{"summary", "Send a topic's dead letters back to it, once (the same position as `taskstream dlq redrive`); dry_run lists what would "
                     "go. Logged in /admin/actions (operators only)"},
         {"parameters", json::array({topic_param})},
         {"requestBody", {{"required", false},
                          {"content", {{"application/json", {{"schema", {{"type", "object"}, {"additionalProperties", false},
                                                                         {"properties", {{"filter", {{"type", "string"}}},
                                                                                         {"dry_run", {{"type", "boolean"}}}}}}}}}}}}},
         {"responses", {{"200", answer("How many were read, matched and sent; the letters that matched", "AdminRedrive")},
                        {"404", problem("Not a service topic, or its .dlq does not exist")},
                        {"409", problem("A redrive is running in this instance")},
                        {"422", problem("A body, filter or dry_run that does not parse")},
                        {"503", problem("Kafka is unreachable or disabled")}}}});
    m["GET /admin/actions"] = operators_only({{"summary", "What operators did (redrives, dry runs, email retries), newest first (operators only)"},
                                             {"parameters", json::array({limit_param(500)})},
                                             {"responses", {{"200", answer("The action log", "AdminActions")}, {"422", problem("A limit that does not parse")}}}});
    m["GET /admin/email"] = operators_only({{"summary", "The email queue: pending and failed emails, next attempts (operators only)"},
                                           {"parameters", json::array({limit_param(500)})},
                                           {"responses", {{"200", answer("The queue", "AdminEmailQueue")}, {"422", problem("A limit that does not parse")}}}});
    m["POST /admin/email/{id}/retry"] = operators_only({{"summary", "Retry a pending or failed email now (never one that was sent) (operators only)"},
                                                       {"parameters", id_param()},
                                                       {"responses", {{"200", answer("Pending again, due now")},
                                                                      {"404", problem("No pending or failed email for this notification")}}}});
    m["GET /admin/http"] = admin_view("HTTP per route over the last 15 minutes: requests, p50/p99 latency, errors (operators only)", "AdminView");
    m["GET /admin/live"] = operators_only(
        {{"summary", "The console's live feed, a WebSocket (Authorization: Bearer <token> or subprotocols [\"bearer\", <token>]): "
                     "{\"type\":\"sample\",\"overview\":{...}} after each sample of this instance (operators only)"},
         {"responses", {{"101", {{"description", "Switching protocols"}}}, {"426", problem("Not a WebSocket upgrade")}}}});
    m["GET /healthz"] = {{"summary", "Liveness"}, {"security", json::array()}, {"responses", {{"200", answer("Alive")}}}};
    m["GET /readyz"] = {{"summary", "Readiness: database, and Kafka when enabled"}, {"security", json::array()},
                        {"responses", {{"200", answer("Ready")}, {"503", answer("Not ready")}}}};
    m["GET /metrics"] = {{"summary", "Prometheus metrics"}, {"security", json::array()},
                         {"responses", {{"200", {{"description", "Prometheus text format"}, {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}}}}}};
    m["GET /"] = {{"summary", "The web page"}, {"security", json::array()},
                  {"responses", {{"200", {{"description", "HTML"}, {"content", {{"text/html", {{"schema", {{"type", "string"}}}}}}}}}}}};
    m["GET /console"] = {{"summary", "The operations console (its figures come from /admin, for operators)"}, {"security", json::array()},
                         {"responses", {{"200", {{"description", "HTML"}, {"content", {{"text/html", {{"schema", {{"type", "string"}}}}}}}}}}}};
    m["GET /static/{file}"] = {{"summary", "The web page's scripts and styles"}, {"security", json::array()},
                               {"parameters", json::array({{{"name", "file"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}}})},
                               {"responses", {{"200", {{"description", "The file"}}}, {"404", problem("No such file")}}}};
    m["GET /static/{folder}/{file}"] = {{"summary", "The web page's modules (web/js, web/vendor)"}, {"security", json::array()},
                                        {"parameters", json::array({{{"name", "folder"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}},
                                                                    {{"name", "file"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}}})},
                                        {"responses", {{"200", {{"description", "The file"}}}, {"304", {{"description", "Not modified (If-None-Match)"}}},
                                                       {"404", problem("No such file")}}}};
    m["GET /ws"] = {{"summary", "WebSocket upgrade: Authorization: Bearer <token> or subprotocols [\"bearer\", <token>]; "
                                "frames as in docs/websocket.md"},
                    {"security", json::array()},
                    {"responses", {{"101", {{"description", "Switching protocols"}}}, {"401", problem("Missing, bad or expired token")},
                                   {"403", problem("Foreign Origin")}, {"426", problem("Not a WebSocket upgrade")},
                                   {"429", problem("Too many sockets for this user")}}}};
    m["GET /openapi.json"] = {{"summary", "This document"}, {"security", json::array()}, {"responses", {{"200", answer("OpenAPI 3 document")}}}};
    return m;
  }();
  return ops;
}

json components() {
  json nullable_string = {{"type", "string"}, {"nullable", true}};
  json task_status = {{"type", "string"}, {"enum", {"todo", "in_progress", "done"}}};
  json task_priority = {{"type", "string"}, {"enum", {"low", "medium", "high"}}};
  json date_time = {{"type", "string"}, {"format", "date-time"}};
  json nullable_date_time = {{"type", "string"}, {"format", "date-time"}, {"nullable", true}};
  json writable = {{"title", {{"type", "string"}, {"minLength", 1}, {"maxLength", 200}}},
                   {"description", {{"type", "string"}, {"maxLength", 10000}, {"nullable", true}}},
                   {"status", task_status},
                   {"priority", task_priority},
                   {"due_at", nullable_date_time}};
  return {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}}}},
          {"schemas",
           {{"Problem", {{"type", "object"}, {"required", {"status", "title", "detail"}},
                         {"properties", {{"status", {{"type", "integer"}}}, {"title", {{"type", "string"}}}, {"detail", {{"type", "string"}}}}}}},
            {"Credentials", {{"type", "object"}, {"required", {"email", "password"}}, {"additionalProperties", false},
                             {"properties", {{"email", {{"type", "string"}, {"format", "email"}}}, {"password", {{"type", "string"}, {"minLength", 8}}}}}}},
            {"User", {{"type", "object"}, {"properties", {{"id", {{"type", "string"}, {"format", "uuid"}}}, {"email", {{"type", "string"}}}, {"created_at", date_time}}}}},
            {"Token", {{"type", "object"},
                       {"properties", {{"access_token", {{"type", "string"}}}, {"token_type", {{"type", "string"}, {"enum", {"bearer"}}}}, {"expires_in", {{"type", "integer"}}}}}}},
            {"TaskCreate", {{"type", "object"}, {"required", {"title"}}, {"additionalProperties", false}, {"properties", writable}}},
            {"TaskPatch", {{"type", "object"}, {"additionalProperties", false}, {"properties", writable}}},
            {"Task", {{"type", "object"},
                      {"required", {"id", "user_id", "title", "status", "priority", "created_at", "updated_at", "version"}},
                      {"properties", {{"id", {{"type", "string"}, {"format", "uuid"}}}, {"user_id", {{"type", "string"}}}, {"title", {{"type", "string"}}},
                                      {"description", nullable_string}, {"status", task_status}, {"priority", task_priority},
                                      {"due_at", nullable_date_time}, {"created_at", date_time}, {"updated_at", date_time},
                                      {"completed_at", nullable_date_time}, {"version", {{"type", "integer"}}}}}}},
            {"History", {{"type", "object"},
                         {"properties", {{"task_id", {{"type", "string"}}},
                                         {"items", {{"type", "array"},
                                                    {"items", {{"type", "object"},
                                                               {"properties", {{"event_id", {{"type", "string"}}}, {"type", {{"type", "string"}}},
                                                                               {"action", {{"type", "string"}}}, {"seq", {{"type", "integer"}, {"nullable", true}}},
                                                                               {"timestamp", date_time},
                                                                               {"task", {{"allOf", json::array({ref("Task")})}, {"nullable", true},
                                                                                         {"description", "The task after the event (null when unreadable)"}}},
                                                                               {"recorded_at", date_time}}}}}}}}}}},
            {"DeletedTaskHistory", {{"type", "object"}, {"required", {"status", "title", "detail", "task_id", "items"}},
                                    {"properties", {{"status", {{"type", "integer"}, {"enum", {410}}}}, {"title", {{"type", "string"}}},
                                                    {"detail", {{"type", "string"}}}, {"task_id", {{"type", "string"}}},
                                                    {"items", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}}},
            {"Notification", {{"type", "object"},
                              {"properties", {{"id", {{"type", "string"}}}, {"user_id", {{"type", "string"}}}, {"task_id", nullable_string},
                                              {"type", {{"type", "string"}}}, {"title", {{"type", "string"}}}, {"message", {{"type", "string"}}},
                                              {"email", nullable_string},
                                              {"event_id", {{"type", "string"}, {"format", "uuid"},
                                                            {"description", "The notification.request event it came from; a WebSocket "
                                                                            "notification frame carries the same event_id"}}},
                                              {"read", {{"type", "boolean"}}}, {"read_at", nullable_date_time},
                                              {"created_at", date_time},
                                              {"channels", {{"type", "array"},
                                                            {"items", {{"type", "object"},
                                                                       {"properties", {{"channel", {{"type", "string"}, {"enum", {"in_app", "email", "sms"}}}},
                                                                                       {"status", {{"type", "string"}, {"enum", {"pending", "sent", "failed", "skipped"}}}},
                                                                                       {"detail", nullable_string}, {"updated_at", date_time}}}}}}}}}}},
            {"AdminDeadLetters", {{"type", "object"}, {"required", {"topic", "dlq_topic", "total", "matched", "letters"}},
                                  {"properties", {{"topic", {{"type", "string"}}}, {"dlq_topic", {{"type", "string"}}},
                                                  {"total", {{"type", "integer"}}}, {"matched", {{"type", "integer"}}},
                                                  {"letters", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}}},
            {"AdminRedrive", {{"type", "object"}, {"required", {"topic", "dry_run", "seen", "matched", "sent", "action", "letters"}},
                              {"properties", {{"seen", {{"type", "integer"}}}, {"matched", {{"type", "integer"}}}, {"sent", {{"type", "integer"}}},
                                              {"dry_run", {{"type", "boolean"}}}, {"action", {{"type", "object"}}},
                                              {"letters", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}}},
            {"AdminActions", {{"type", "object"}, {"required", {"items"}},
                              {"properties", {{"items", {{"type", "array"}, {"items", {{"type", "object"},
                                  {"required", {"id", "at", "actor", "action", "target", "filter", "seen", "matched", "sent", "outcome", "detail"}}}}}}}}}},
            {"AdminEmailQueue", {{"type", "object"}, {"required", {"pending", "failed", "items"}},
                                 {"properties", {{"pending", {{"type", "integer"}}}, {"failed", {{"type", "integer"}}},
                                                 {"items", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}}},
            {"AdminView", {{"type", "object"},
                           {"required", {"instance", "sampled_at", "interval_seconds", "window_seconds", "kafka_error"}},
                           {"properties", {{"instance", {{"type", "string"}}}, {"sampled_at", nullable_date_time},
                                           {"interval_seconds", {{"type", "number"}}}, {"window_seconds", {{"type", "integer"}}},
                                           {"kafka_error", nullable_string}}}}},
            {"AdminOutbox", {{"type", "object"},
                             {"required", {"waiting", "oldest_waiting", "oldest_age_seconds", "relay"}},
                             {"properties", {{"waiting", {{"type", "integer"}, {"nullable", true}}}, {"oldest_waiting", nullable_date_time},
                                             {"oldest_age_seconds", {{"type", "number"}}},
                                             {"relay", {{"type", "object"}, {"nullable", true},
                                                        {"properties", {{"published", {{"type", "integer"}}}, {"failed", {{"type", "integer"}}},
                                                                        {"batches", {{"type", "integer"}}}, {"producer_restarts", {{"type", "integer"}}}}}}}}}}},
            {"NotificationList", {{"type", "object"},
                                  {"properties", {{"items", {{"type", "array"}, {"items", ref("Notification")}}},
                                                  {"unread_count", {{"type", "integer"}, {"minimum", 0},
                                                                    {"description", "All the caller's unread notifications, not limited by limit"}}}}}}},
            {"ReadAllResult", {{"type", "object"}, {"required", {"marked"}},
                               {"properties", {{"marked", {{"type", "integer"}, {"minimum", 0}}}}}}},
            {"TaskPage", {{"type", "object"},
                          {"properties", {{"items", {{"type", "array"}, {"items", ref("Task")}}}, {"next_cursor", nullable_string}}}}}}}};
}

}  // namespace

std::vector<std::string> described_operations() {
  std::vector<std::string> out;
  for (const auto& [k, v] : operations()) out.push_back(k);
  return out;
}

namespace {

/// Whether a route's handler reads or writes the database (and so can answer 503/507).
bool uses_database(const http::Route& r) {
  for (const char* prefix : {"/auth/", "/users/", "/tasks", "/notifications", "/admin/actions", "/admin/email"})
    if (r.pattern.rfind(prefix, 0) == 0) return true;
  return r.pattern == "/admin/dlq/{topic}/redrive";  // logs the action
}

/// "GET /tasks/{id}/history" → "getTasksIdHistory".
std::string operation_id(const http::Route& r) {
  std::string out;
  for (char c : r.method) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool upper = true;
  for (char c : r.pattern) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    } else {
      upper = true;
    }
  }
  return out == "get" ? "getRoot" : out;
}

/// Adds to `op` what follows from the route itself; an answer the entry already gives is kept.
void complete(json& op, const http::Route& r) {
  auto& responses = op["responses"];
  auto add = [&](const char* status, json answer) {
    if (!responses.contains(status)) responses[status] = std::move(answer);
  };
  if (r.requires_auth) {
    op["security"] = json::array({{{"bearer", json::array()}}});
    add("401", problem("Missing, malformed or expired bearer token"));
  } else {
    op["security"] = json::array();
  }
  if (!r.role.empty()) add("403", problem("The account lacks the " + r.role + " role (ADMIN_EMAILS)"));
  if (op.contains("requestBody")) {
    add("400", problem("Malformed JSON, a body nested deeper than 32 levels, or a required body missing"));
    add("413", problem("A body larger than the limit"));
  }
  if (uses_database(r)) {
    add("503", retry_problem("The database is unavailable (restarting, locked, read-only); nothing was changed: retry after Retry-After"));
    if (r.method != "GET") add("507", retry_problem("The database's disk is full; nothing was changed: retry after Retry-After"));
  }
  add("500", problem("A fault of the service (logged with the request id); the request may be retried"));
}

}  // namespace

json openapi_document(const http::Router& router) {
  json paths = json::object();
  for (const auto& r : router.routes()) {
    auto it = operations().find(r.method + " " + r.pattern);
    json op = it != operations().end() ? it->second : json{{"summary", r.summary}, {"responses", json::object()}};
    op["operationId"] = operation_id(r);
    complete(op, r);
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    paths[r.pattern][method] = std::move(op);
  }
  return {{"openapi", "3.0.3"},
          {"info", {{"title", "taskstream"}, {"version", "0.1.0"}, {"description", "Tasks with Kafka event streaming (docs/api.md)"}}},
          {"security", json::array({{{"bearer", json::array()}}})},
          {"paths", std::move(paths)},
          {"components", components()}};
}

}  // namespace taskstream::api
