// The operators' API (docs/operations.md, "Operators"): JSON under /admin for the console and
// for scripts. Every route needs a token with the operator role (ADMIN_EMAILS, or the first
// account under `serve --dev`): 401 without a valid token, 403 for any other account, checked
// by the router on each request.

#include <charconv>
#include <chrono>
#include <atomic>

#include "api/api.hpp"
#include "events/events.hpp"
#include "api/body.hpp"
#include "http/blocking.hpp"
#include "kafka/admin.hpp"
#include "kafka/dead_letter.hpp"
#include "kafka/error.hpp"
#include "kafka/redrive.hpp"
#include "ops/monitor.hpp"
#include "outbox/relay.hpp"

namespace taskstream::api {
namespace {

using boost::asio::awaitable;
using http::Request;
using http::Response;

double age_seconds(const std::optional<std::string>& since) {
  if (!since) return 0;
  auto ms = events::to_unix_millis(*since);
  if (!ms) return 0;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return std::max(0.0, static_cast<double>(now - *ms) / 1000.0);
}

}  // namespace

/// `limit` query parameter: a whole number in [1, max] (422 otherwise).
int limit_param(const Request& req, int fallback, int max) {
  int limit = fallback;
  if (auto l = req.query_param("limit")) {
    auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
    if (ec != std::errc() || p != l->data() + l->size() || limit < 1 || limit > max)
      throw http::HttpError(422, "limit: must be a whole number from 1 to " + std::to_string(max));
  }
  return limit;
}

/// The service topic `name` names (with or without its `.dlq`), or 404 naming it.
std::string service_topic(const config::Settings& s, std::string name) {
  if (name.ends_with(".dlq")) name.resize(name.size() - 4);
  for (const auto& t : kafka::service_topic_names(s))
    if (t == name) return name;
  throw http::HttpError(404, "no dead-letter topic for '" + name + "': taskstream's topics are " + s.kafka_topic_task_events + ", " +
                                 s.kafka_topic_task_updates + " and " + s.kafka_topic_notification_request);
}

kafka::DeadLetterFilter filter_of(const std::string& expression) {
  try {
    return kafka::DeadLetterFilter(expression);
  } catch (const std::invalid_argument&) {
    throw http::HttpError(422, "filter: must be FIELD=VALUE, e.g. reason=bad_json, error_class=permanent, key=<user id> or a header name");
  }
}

nlohmann::json letter_json(const kafka::DeadLetter& d) {
  nlohmann::json headers = nlohmann::json::object();
  auto h = [&](std::string_view name) -> nlohmann::json {
    for (const auto& [k, v] : d.headers)
      if (k == name) return v;
    return nullptr;
  };
  for (const auto& [k, v] : d.headers)
    if (!k.starts_with("dlq.")) headers[k] = v;
  auto number = [&](std::string_view name) -> nlohmann::json {
    auto v = h(name);
    if (!v.is_string()) return nullptr;
    std::int64_t n = 0;
    const auto& str = v.get_ref<const std::string&>();
    auto [p, ec] = std::from_chars(str.data(), str.data() + str.size(), n);
    return ec == std::errc() && p == str.data() + str.size() ? nlohmann::json(n) : nlohmann::json(nullptr);
  };
  // The payload as JSON when it is JSON (the console pretty-prints it), else as text.
  auto payload = nlohmann::json::parse(d.payload, nullptr, false);
  return {{"dlq_partition", d.partition},
          {"dlq_offset", d.offset},
          {"reason", h(kafka::dlq_header::reason)},
          {"error_class", h(kafka::dlq_header::error_class)},
          {"detail", h(kafka::dlq_header::detail)},
          {"source_topic", h(kafka::dlq_header::source_topic)},
          {"source_partition", number("dlq.source_partition")},
          {"source_offset", number("dlq.source_offset")},
          {"attempts", number(kafka::dlq_header::attempts)},
          {"first_failure", h(kafka::dlq_header::first_failure)},
          {"last_failure", h(kafka::dlq_header::last_failure)},
          {"key", d.key},
          {"headers", std::move(headers)},
          {"payload_json", payload.is_discarded() ? nlohmann::json(nullptr) : payload},
          {"payload", payload.is_discarded() ? nlohmann::json(d.payload) : nlohmann::json(nullptr)}};
}

nlohmann::json action_json(const storage::OperatorAction& a) {
  return {{"id", a.id},          {"at", a.at},           {"actor", a.actor},     {"action", a.action},   {"target", a.target},
          {"filter", a.filter},  {"seen", a.seen},       {"matched", a.matched}, {"sent", a.sent},       {"outcome", a.outcome},
          {"detail", a.detail}};
}

/// One redrive at a time in this process (the CLI and other instances are kept apart by
/// the redrive's consumer group: its committed position is where each one starts). A flag,
/// not a mutex: the coroutine that takes it may resume, and give it back, on another thread.
std::atomic<bool> redrive_running{false};

struct RedriveTurn {
  bool mine = !redrive_running.exchange(true);
  ~RedriveTurn() {
    if (mine) redrive_running = false;
  }
};

Response no_monitor() {
  return Response::problem(503, "the console's figures are not sampled in this process");
}

Response monitor_view(const std::string& body) {
  Response r;
  r.body = body;
  return r;
}

void register_admin_routes(http::Router& router, ApiContext& ctx) {
  // The figures come from the monitor's last sample (a few seconds old at most): an open
  // console never sends a request of its own to the brokers.
  using View = std::string ops::Monitor::Views::*;
  const std::tuple<const char*, const char*, View> views[] = {
      {"/admin/overview", "The pipeline at a glance: REST, outbox, relay, topics, consumer groups, effects, with rates and health (operators)",
       &ops::Monitor::Views::overview},
      {"/admin/groups", "Consumer groups: state, members, assignment, committed and end offsets, lag and its last 15 minutes (operators)",
       &ops::Monitor::Views::groups},
      {"/admin/topics", "Topics: partitions, leader, replicas, ISR, under-replicated, messages per second (operators)", &ops::Monitor::Views::topics},
      {"/admin/http", "HTTP per route over the last 15 minutes: requests, p50/p99 latency, errors (operators)", &ops::Monitor::Views::http},
  };
  for (const auto& [path, summary, view] : views)
    router.add({"GET", path, true, summary, kOperatorRole}, [&ctx, view](Request&) -> awaitable<Response> {
      if (!ctx.monitor) co_return no_monitor();
      co_return monitor_view(ctx.monitor->views().get()->*view);
    });
  // The live feed is a WebSocket (ops::LiveFeed takes the upgrade): a plain GET by an
  // operator learns so; anyone else gets the 401/403 of every /admin route.
  router.add({"GET", "/admin/live", true, "The console's live feed (WebSocket upgrade; operators)", kOperatorRole},
             [](Request&) -> awaitable<Response> {
               Response r = Response::problem(426, "GET /admin/live is a WebSocket endpoint: send Connection: Upgrade, Upgrade: websocket");
               r.headers.emplace_back("Upgrade", "websocket");
               co_return r;
             });
  // ---- dead letters: the same code path and progress memory as `taskstream dlq list|redrive`
  router.add({"GET", "/admin/dlq/{topic}", true, "Dead letters of a topic's .dlq, newest `limit` that match `filter` (operators)", kOperatorRole},
             [&ctx](Request& req) -> awaitable<Response> {
               const auto topic = service_topic(ctx.settings, req.params.at("topic"));
               const auto expression = std::string(req.query_param("filter").value_or(""));
               auto filter = filter_of(expression);
               const auto limit = limit_param(req, 200, 1000);
               if (!ctx.settings.kafka_enabled) throw http::HttpError(503, "Kafka is disabled (KAFKA_ENABLED=false)");
               auto page = co_await http::offload(ctx.kafka_pool ? *ctx.kafka_pool : ctx.blocking_pool, [&] {
                 try {
                   return kafka::read_dead_letters(ctx.settings, topic, filter, static_cast<std::size_t>(limit));
                 } catch (const kafka::KafkaException& e) {
                   if (e.error().code() == kafka::errc::unknown_topic) throw http::HttpError(404, "topic " + kafka::dlq_topic(topic) + " does not exist");
                   throw http::HttpError(503, std::string("Kafka: ") + e.what());
                 }
               });
               nlohmann::json letters = nlohmann::json::array();
               for (const auto& d : page.letters) letters.push_back(letter_json(d));
               co_return Response::json(200, {{"topic", topic}, {"dlq_topic", kafka::dlq_topic(topic)}, {"filter", expression},
                                              {"total", page.total}, {"matched", page.matched}, {"letters", std::move(letters)}});
             });
  router.add({"POST", "/admin/dlq/{topic}/redrive", true,
              "Send a topic's dead letters back (or list what would go: dry_run); logged in /admin/actions (operators)", kOperatorRole},
             [&ctx](Request& req) -> awaitable<Response> {
               const auto topic = service_topic(ctx.settings, req.params.at("topic"));
               auto body = req.body.empty() ? nlohmann::json::object() : parse_object(req.body);
               check_fields(body, {"filter", "dry_run"});
               const auto expression = string_field(body, "filter").value_or("");
               bool dry_run = false;
               if (body.contains("dry_run")) {
                 if (!body["dry_run"].is_boolean()) throw http::HttpError(422, "dry_run: must be true or false");
                 dry_run = body["dry_run"].get<bool>();
               }
               auto filter = filter_of(expression);
               if (!ctx.settings.kafka_enabled) throw http::HttpError(503, "Kafka is disabled (KAFKA_ENABLED=false)");
               RedriveTurn turn;
               if (!turn.mine) throw http::HttpError(409, "a redrive is running in this instance; try again when it is done");
               auto actor = co_await http::offload(ctx.blocking_pool, [&] {
                 auto u = ctx.store.find_user(req.user_id);
                 return u ? u->email : req.user_id;
               });
               storage::OperatorAction action{0, events::now_rfc3339(), actor, dry_run ? "dlq.dry_run" : "dlq.redrive", topic, expression,
                                              0, 0, 0, "ok", ""};
               nlohmann::json letters = nlohmann::json::array();
               std::optional<http::HttpError> failure;
               auto result = co_await http::offload(ctx.kafka_pool ? *ctx.kafka_pool : ctx.blocking_pool, [&]() -> kafka::RedriveResult {
                 try {
                   return kafka::redrive(ctx.settings, topic, filter, dry_run, {}, std::chrono::seconds(3), [&](const kafka::Message& m) {
                     if (letters.size() < 1000) letters.push_back(letter_json(kafka::DeadLetter::from(m)));
                   });
                 } catch (const kafka::KafkaException& e) {
                   failure = e.error().code() == kafka::errc::unknown_topic
                                 ? http::HttpError(404, "topic " + kafka::dlq_topic(topic) + " does not exist")
                                 : http::HttpError(503, std::string("Kafka: ") + e.what());
                 }
                 return {};
               });
               action.seen = static_cast<std::int64_t>(result.seen);
               action.matched = static_cast<std::int64_t>(result.matched);
               action.sent = static_cast<std::int64_t>(result.sent);
               if (failure) action.outcome = "error", action.detail = failure->what();
               action.id = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.record_operator_action(action); });
               if (failure) throw *failure;
               co_return Response::json(200, {{"topic", topic}, {"dry_run", dry_run}, {"filter", expression}, {"seen", result.seen},
                                              {"matched", result.matched}, {"sent", result.sent}, {"action", action_json(action)},
                                              {"letters", std::move(letters)}});
             });
  router.add({"GET", "/admin/actions", true, "What operators did (redrives, dry runs, email retries), newest first (operators)", kOperatorRole},
             [&ctx](Request& req) -> awaitable<Response> {
               const auto limit = limit_param(req, 100, 500);
               auto actions = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.list_operator_actions(limit); });
               nlohmann::json items = nlohmann::json::array();
               for (const auto& a : actions) items.push_back(action_json(a));
               co_return Response::json(200, {{"items", std::move(items)}});
             });

  // ---- the email queue
  router.add({"GET", "/admin/email", true, "The email queue: pending and failed emails, next attempt times (operators)", kOperatorRole},
             [&ctx](Request& req) -> awaitable<Response> {
               const auto limit = limit_param(req, 100, 500);
               auto q = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.email_queue(limit); });
               nlohmann::json items = nlohmann::json::array();
               for (const auto& e : q.items)
                 items.push_back({{"notification_id", e.notification_id}, {"user_id", e.user_id}, {"email", e.email}, {"title", e.title},
                                  {"status", e.status}, {"detail", e.detail}, {"updated_at", e.updated_at}, {"attempts", e.attempts},
                                  {"next_attempt_at", e.status == "pending" ? nlohmann::json(e.next_attempt_ms) : nlohmann::json(nullptr)},
                                  {"first_failure", e.first_failure ? nlohmann::json(*e.first_failure) : nlohmann::json(nullptr)}});
               co_return Response::json(200, {{"pending", q.pending}, {"failed", q.failed}, {"items", std::move(items)}});
             });
  router.add({"POST", "/admin/email/{id}/retry", true, "Send a pending or failed email at the next look of the sender (operators)", kOperatorRole},
             [&ctx](Request& req) -> awaitable<Response> {
               const auto id = req.params.at("id");
               auto [ok, action] = co_await http::offload(ctx.blocking_pool, [&] {
                 auto u = ctx.store.find_user(req.user_id);
                 const auto actor = u ? u->email : req.user_id;
                 const auto now = events::now_rfc3339();
                 const bool done = ctx.store.retry_email_now(id, "retry asked by " + actor, now);
                 storage::OperatorAction a{0, now, actor, "email.retry", id, "", 1, done ? 1 : 0, 0, done ? "ok" : "error",
                                           done ? "" : "no pending or failed email with this id"};
                 if (done) a.id = ctx.store.record_operator_action(a);
                 return std::pair{done, a};
               });
               if (!ok) throw http::HttpError(404, "no pending or failed email for notification " + id);
               co_return Response::json(200, {{"notification_id", id}, {"status", "pending"}, {"action", action_json(action)}});
             });

  router.add({"GET", "/admin/outbox", true, "Outbox and relay: rows waiting, oldest age, publish rate, last error, lease, restarts (operators)", kOperatorRole},
             [&ctx](Request&) -> awaitable<Response> {
               if (ctx.monitor) co_return monitor_view(ctx.monitor->views()->outbox);
               auto st = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.outbox_stats(); });
               nlohmann::json relay = nullptr;
               if (ctx.relay) {
                 const auto r = ctx.relay->stats();
                 relay = {{"published", r.published}, {"failed", r.failed}, {"batches", r.batches}, {"producer_restarts", r.producer_restarts}};
               }
               co_return Response::json(200, {{"waiting", st.waiting},
                                              {"oldest_waiting", st.oldest_waiting ? nlohmann::json(*st.oldest_waiting) : nlohmann::json(nullptr)},
                                              {"oldest_age_seconds", age_seconds(st.oldest_waiting)},
                                              {"relay", std::move(relay)}});
             });
}

}  // namespace taskstream::api
