// Handlers of docs/api.md: accounts and tokens, tasks, health, metrics, OpenAPI.

#include <spdlog/spdlog.h>

#include <charconv>
#include <mutex>

#include "api/api.hpp"
#include "api/body.hpp"
#include "http/metrics.hpp"
#include "api/requests.hpp"
#include "auth/password.hpp"
#include "auth/rate_limit.hpp"
#include "events/events.hpp"
#include "http/blocking.hpp"
#include "outbox/task_events.hpp"
#include "util/logging.hpp"

namespace taskstream::api {
namespace {

using boost::asio::awaitable;
using http::HttpError;
using http::Request;
using http::Response;
using namespace detail;

}  // namespace

nlohmann::json notification_to_json(const storage::Notification& n) {
  nlohmann::json channels = nlohmann::json::array();
  for (const auto& c : n.channels)
    channels.push_back({{"channel", c.channel}, {"status", c.status}, {"detail", c.detail.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.detail)},
                        {"updated_at", c.updated_at}});
  auto opt = [](const std::optional<std::string>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"id", n.id},           {"user_id", n.user_id}, {"task_id", opt(n.task_id)}, {"type", n.type},
          {"title", n.title},     {"message", n.message}, {"email", opt(n.email)},     {"channels", std::move(channels)},
          {"event_id", n.event_id}, {"read", n.read_at.has_value()}, {"read_at", opt(n.read_at)}, {"created_at", n.created_at}};
}

std::optional<Response> storage_outage_response(const std::exception& e) {
  const auto* se = dynamic_cast<const storage::StorageError*>(&e);
  if (!se || !se->is_outage()) return std::nullopt;
  // docs/reliability.md, "Database faults": the client may retry; nothing it sent is lost
  // on our side (a write whose commit got no answer may have been saved: the task's
  // version says which).
  Response r;
  switch (se->condition()) {
    case storage::StorageCondition::disk_full:
      r = Response::problem(507, "the database's disk is full: the change was not saved; retry once space is freed");
      break;
    case storage::StorageCondition::read_only:
      r = Response::problem(503, "the database is read-only at the moment: the change was not saved; retry later");
      break;
    default:
      r = Response::problem(503, "the database is unavailable at the moment; retry later (a change sent just now may or may not have been saved: read it back)");
      break;
  }
  r.headers.emplace_back("Retry-After", "5");
  return r;
}

void register_user_routes(http::Router& router, ApiContext& ctx) {
  router.set_error_translator(storage_outage_response);
  router.set_cors(http::CorsPolicy(ctx.settings.cors_origins));
  router.set_authenticator([&ctx](const Request& req) -> http::Principal {
    auto header = req.header("authorization");
    if (!header) throw HttpError(401, "not authenticated: send Authorization: Bearer <token>");
    try {
      auto claims = ctx.jwt.verify_claims(auth::bearer_token(*header));
      return {std::move(claims.subject), std::move(claims.roles)};
    } catch (const auth::AuthError& e) {
      throw HttpError(401, std::string("invalid token: ") + e.what());
    }
  });

  // ---- accounts and tokens
  router.add({"POST", "/auth/register", false, "Register an account"}, [&ctx](Request& req) -> awaitable<Response> {
    // Not a structured binding: the lambdas below capture these (clang before 16 cannot).
    const auto creds = credentials(req);
    const std::string& email = creds.first;
    const std::string& password = creds.second;
    check_email(email);
    if (utf8_length(password) < 8) throw HttpError(422, "password: must be at least 8 characters");
    if (password.size() > 1024) throw HttpError(422, "password: must be at most 1024 bytes");
    auto user = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.create_user(email, auth::hash_password(password)); });
    if (!user) throw HttpError(409, "email: already registered");
    co_return Response::json(201, {{"id", user->id}, {"email", user->email}});
  });

  // Login attempts: per client address every attempt counts (taken before the body is even
  // read); per account only failures do (taken before the password check, so concurrent
  // guesses cannot overshoot, and given back on success).
  struct LoginLimits {
    LoginLimits(int per_address_per_minute, int per_account_per_minute)
        : per_address(per_address_per_minute), per_account(per_account_per_minute) {}
    auth::RateLimiter per_address;
    auth::RateLimiter per_account;
  };
  auto limits = std::make_shared<LoginLimits>(ctx.settings.auth_rate_limit_per_address, ctx.settings.auth_rate_limit_per_account);
  auto too_many = [](const auth::RateLimiter::Decision& d, std::string_view what) {
    auto r = Response::problem(429, "too many login attempts " + std::string(what) + "; retry in " + std::to_string(d.retry_after.count()) + " s");
    r.headers.emplace_back("Retry-After", std::to_string(d.retry_after.count()));
    return r;
  };

  router.add({"POST", "/auth/token", false, "Exchange email and password for a bearer token"}, [&ctx, limits, too_many](Request& req) -> awaitable<Response> {
    if (auto d = limits->per_address.acquire(auth::address_key(req.remote)); !d.allowed) {
      util::LogScope scope({.request_id = req.request_id});
      spdlog::warn("login attempts from {} over the limit", req.remote);
      co_return too_many(d, "from this address");
    }
    // Not a structured binding: the lambdas below capture these (clang before 16 cannot).
    const auto creds = credentials(req);
    const std::string& email = creds.first;
    const std::string& password = creds.second;
    if (auto d = limits->per_account.acquire(email); !d.allowed) {
      util::LogScope scope({.request_id = req.request_id});
      spdlog::warn("failed logins for one account over the limit");
      co_return too_many(d, "for this account");
    }
    auto user = co_await http::offload(ctx.blocking_pool, [&]() -> std::optional<std::pair<std::string, std::vector<std::string>>> {
      auto user = ctx.store.find_user_by_email(email);
      // Verify against a fixed hash when the user is unknown, so timing does not tell
      // which emails are registered.
      static const std::string dummy = auth::hash_password("taskstream-dummy-password");
      bool ok = auth::verify_password(user ? user->password_hash : dummy, password);
      if (!user || !ok) return std::nullopt;
      return std::pair{user->id, roles_of(ctx, *user)};
    });
    if (user) limits->per_account.refund(email);
    if (!user) {
      auto r = Response::problem(401, "incorrect email or password");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      co_return r;
    }
    co_return Response::json(200, {{"access_token", ctx.jwt.issue(user->first, user->second)}, {"token_type", "bearer"}, {"expires_in", ctx.jwt.ttl().count()}});
  });

  router.add({"GET", "/users/me", true, "The caller's account"}, [&ctx](Request& req) -> awaitable<Response> {
    auto user = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.find_user(req.user_id); });
    if (!user) throw HttpError(401, "invalid token: the user no longer exists");
    co_return Response::json(200, {{"id", user->id}, {"email", user->email}, {"created_at", user->created_at}});
  });

  // ---- tasks
  router.add({"POST", "/tasks", true, "Create a task"}, [&ctx](Request& req) -> awaitable<Response> {
    auto f = task_fields(req);
    if (!f.title) throw HttpError(422, "title: field required");
    storage::Task t;
    t.id = events::new_event_id();
    t.user_id = req.user_id;
    t.created_at = t.updated_at = events::now_rfc3339();
    apply(t, f, t.created_at);
    auto factory = outbox::task_event_factory(ctx.settings, "task_created", traceparent_of(req));
    auto result = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.create_task(t, factory); });
    if (ctx.wake_relay) ctx.wake_relay();
    co_return task_response(201, *result.task);
  });

  router.add({"GET", "/tasks", true, "List the caller's tasks, newest first"}, [&ctx](Request& req) -> awaitable<Response> {
    std::optional<std::string> status;
    // Present but empty is not "any status": the parameter is an enum (422 like any other).
    if (auto s = req.query_param("status")) {
      if (!one_of(*s, kStatuses)) throw HttpError(422, "status: must be one of todo, in_progress, done");
      status = std::string(*s);
    }
    int limit = 50;
    if (auto l = req.query_param("limit")) {
      auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
      if (ec != std::errc() || p != l->data() + l->size() || limit < 1 || limit > 100) throw HttpError(422, "limit: must be a whole number from 1 to 100");
    }
    std::optional<std::string> cursor;
    if (auto c = req.query_param("cursor")) cursor = std::string(*c);  // empty: 422 below, like any other bad cursor
    auto page = co_await http::offload(ctx.blocking_pool, [&] {
      try {
        return ctx.store.list_tasks(req.user_id, status, limit, cursor);
      } catch (const storage::StorageError& e) {
        if (!e.is_retriable() && cursor) throw HttpError(422, "cursor: not a cursor this API returned");
        throw;
      }
    });
    nlohmann::json items = nlohmann::json::array();
    for (const auto& t : page.items) items.push_back(outbox::task_to_json(t));
    co_return Response::json(200, {{"items", std::move(items)}, {"next_cursor", page.next_cursor ? nlohmann::json(*page.next_cursor) : nlohmann::json(nullptr)}});
  });

  router.add({"GET", "/tasks/{id}", true, "One task"}, [&ctx](Request& req) -> awaitable<Response> {
    const auto& id = task_id(req);
    auto t = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.get_task(req.user_id, id); });
    if (!t) throw HttpError(404, "task not found");
    co_return task_response(200, *t);
  });

  auto change = [&ctx](Request& req, std::function<bool(storage::Task&, const std::string&)> mutate, std::optional<std::string> forced_type,
                       std::optional<IfMatch> precondition) -> awaitable<Response> {
    const auto& id = task_id(req);
    const auto now = events::now_rfc3339();
    const auto traceparent = traceparent_of(req);
    // The event type depends on the change, known only inside the transaction.
    storage::EventFactory factory = [&](const storage::Task* before, const storage::Task* after, std::int64_t seq) {
      auto type = forced_type ? *forced_type : change_type(*before, *after);
      return outbox::task_event_factory(ctx.settings, type, traceparent)(before, after, seq);
    };
    auto result = co_await http::offload(ctx.blocking_pool, [&] {
      // The precondition is checked on the row the transaction read, before any change:
      // thrown, it rolls the change back and becomes the 412.
      return ctx.store.update_task(
          req.user_id, id,
          [&](storage::Task& t) {
            if (precondition && !precondition->any &&
                std::find(precondition->versions.begin(), precondition->versions.end(), t.version) == precondition->versions.end())
              throw HttpError(412, "If-Match: the task is at version " + std::to_string(t.version) + "; fetch it and retry");
            return mutate(t, now);
          },
          std::nullopt, now, factory);
    });
    switch (result.status) {
      case storage::ChangeStatus::not_found: throw HttpError(404, "task not found");
      case storage::ChangeStatus::version_conflict:
        throw HttpError(412, "If-Match: the task is at version " + std::to_string(result.task->version) + "; fetch it and retry");
      case storage::ChangeStatus::ok: break;
    }
    if (result.seq > 0 && ctx.wake_relay) ctx.wake_relay();
    co_return task_response(200, *result.task);
  };

  router.add({"PATCH", "/tasks/{id}", true, "Change a task (If-Match: version optional)"}, [change](Request& req) -> awaitable<Response> {
    auto f = task_fields(req);
    auto expected = if_match(req);
    // Named, not temporaries: g++ 12 destroys temporaries in a co_await expression twice.
    std::function<bool(storage::Task&, const std::string&)> mutate = [f](storage::Task& t, const std::string& now) { return apply(t, f, now); };
    auto op = change(req, std::move(mutate), std::nullopt, expected);
    co_return co_await std::move(op);
  });

  router.add({"POST", "/tasks/{id}/complete", true, "Mark a task done"}, [change](Request& req) -> awaitable<Response> {
    TaskFields f;
    f.status = "done";
    std::function<bool(storage::Task&, const std::string&)> mutate = [f](storage::Task& t, const std::string& now) { return apply(t, f, now); };
    auto op = change(req, std::move(mutate), std::string("task_completed"), std::nullopt);
    co_return co_await std::move(op);
  });

  router.add({"DELETE", "/tasks/{id}", true, "Delete a task"}, [&ctx](Request& req) -> awaitable<Response> {
    const auto& id = task_id(req);
    auto factory = outbox::task_event_factory(ctx.settings, "task_deleted", traceparent_of(req));
    auto result = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.delete_task(req.user_id, id, factory); });
    if (result.status == storage::ChangeStatus::not_found) throw HttpError(404, "task not found");
    if (ctx.wake_relay) ctx.wake_relay();
    co_return Response::no_content();
  });

  // A deleted task's trail is kept (it ends with task_deleted) but is no longer the
  // resource's: 410 Gone, a problem+json that carries the trail in `items` (docs/api.md).
  router.add({"GET", "/tasks/{id}/history", true, "The audit trail of a task, oldest first"}, [&ctx](Request& req) -> awaitable<Response> {
    const auto& id = task_id(req);
    auto [entries, live] = co_await http::offload(ctx.blocking_pool, [&] {
      auto e = ctx.store.task_history(req.user_id, id);
      return std::pair{std::move(e), ctx.store.get_task(req.user_id, id).has_value()};
    });
    if (!live && entries.empty()) throw HttpError(404, "task not found");
    nlohmann::json items = nlohmann::json::array();
    for (const auto& a : entries) {
      auto snapshot = nlohmann::json::parse(a.task_data, nullptr, false);
      items.push_back({{"event_id", a.event_id},
                       {"type", a.type},
                       {"action", a.action},
                       {"seq", a.seq ? nlohmann::json(*a.seq) : nlohmann::json(nullptr)},
                       {"timestamp", a.occurred_at},
                       {"task", snapshot.is_discarded() ? nlohmann::json(nullptr) : std::move(snapshot)},
                       {"recorded_at", a.recorded_at}});
    }
    if (!live) {
      Response r = Response::json(410, {{"status", 410}, {"title", "Gone"}, {"detail", "the task was deleted; its audit trail is in items"},
                                        {"task_id", id}, {"items", std::move(items)}});
      r.content_type = "application/problem+json";
      co_return r;
    }
    co_return Response::json(200, {{"task_id", id}, {"items", std::move(items)}});
  });

  // ---- notifications (written by the notification consumer)
  router.add({"GET", "/notifications", true, "The caller's notifications, newest first"}, [&ctx](Request& req) -> awaitable<Response> {
    bool unread = false;
    if (auto u = req.query_param("unread")) {
      if (*u == "true" || *u == "1") unread = true;
      else if (*u != "false" && *u != "0") throw HttpError(422, "unread: must be true or false");
    }
    int limit = 50;
    if (auto l = req.query_param("limit")) {
      auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
      if (ec != std::errc() || p != l->data() + l->size() || limit < 1 || limit > 200) throw HttpError(422, "limit: must be a whole number from 1 to 200");
    }
    // unread_count: all the caller's unread notifications, whatever `limit` and `unread` say.
    auto [list, unread_count] = co_await http::offload(ctx.blocking_pool, [&] {
      auto l = ctx.store.list_notifications(req.user_id, unread, limit);
      return std::pair{std::move(l), ctx.store.count_unread_notifications(req.user_id)};
    });
    nlohmann::json items = nlohmann::json::array();
    for (const auto& n : list) items.push_back(notification_to_json(n));
    co_return Response::json(200, {{"items", std::move(items)}, {"unread_count", unread_count}});
  });

  router.add({"POST", "/notifications/read-all", true, "Mark all the caller's unread notifications read"},
             [&ctx](Request& req) -> awaitable<Response> {
               // No body is needed; one that is sent is ignored.
               auto marked = co_await http::offload(
                   ctx.blocking_pool, [&] { return ctx.store.mark_all_notifications_read(req.user_id, events::now_rfc3339()); });
               co_return Response::json(200, {{"marked", marked}});
             });

  router.add({"POST", "/notifications/{id}/read", true, "Mark a notification read"}, [&ctx](Request& req) -> awaitable<Response> {
    const auto& id = req.params.at("id");
    if (!events::is_uuid(id)) throw HttpError(404, "notification not found");
    auto n = co_await http::offload(ctx.blocking_pool, [&] { return ctx.store.mark_notification_read(req.user_id, id, events::now_rfc3339()); });
    if (!n) throw HttpError(404, "notification not found");
    co_return Response::json(200, notification_to_json(*n));
  });

  register_operations_routes(router, ctx);
}

}  // namespace taskstream::api
