#include "storage/postgres/database.hpp"

namespace taskstream::storage::postgres {

bool retriable_state(std::string_view state) {
  return state.starts_with("08") ||  // connection exception
         state == "40001" ||         // serialization_failure
         state == "40P01" ||         // deadlock_detected
         state == "55P03" ||         // lock_not_available
         state == "53300" ||         // too_many_connections
         state == "57P01" || state == "57P02" || state == "57P03";  // admin/crash shutdown, cannot connect now
}

StorageCondition condition_of(std::string_view state) {
  if (state.starts_with("08") || state == "53300" || state == "57P01" || state == "57P02" || state == "57P03")
    return StorageCondition::unavailable;
  if (state == "53100") return StorageCondition::disk_full;
  if (state == "25006") return StorageCondition::read_only;
  return StorageCondition::error;
}

std::string one_line(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  return message;
}

Connection::Connection(const std::string& url) {
  // Entries before "dbname" are defaults that the URL's own parameters override.
  const char* keys[] = {"connect_timeout", "fallback_application_name", "client_encoding", "dbname", nullptr};
  const char* values[] = {"10", "taskstream", "UTF8", url.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_) throw StorageError("postgres: out of memory creating a connection", true, StorageCondition::unavailable);
  if (PQstatus(conn_) != CONNECTION_OK) {
    const auto message = one_line(PQerrorMessage(conn_));
    PQfinish(conn_);
    // Retriable: the server may just be starting or restarting; a wrong password or
    // database name shows in the message and keeps failing the same way.
    throw StorageError("postgres: cannot connect: " + message, true, StorageCondition::unavailable);
  }
  // libpq prints server notices (e.g. "drop cascades to ...") on stderr by default,
  // bypassing the service's log format.
  PQsetNoticeProcessor(
      conn_, [](void*, const char* message) { spdlog::debug("postgres: {}", one_line(message)); }, nullptr);
}

Result Connection::query(std::string_view sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  const std::string text(sql);
  return check(PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                            nullptr, 0),
               sql);
}

void Connection::script(std::string_view sql) {
  const std::string text(sql);
  check(PQexec(conn_, text.c_str()), sql);
}

Result Connection::check(PGresult* raw, std::string_view sql) {
  Result res(raw);
  const auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
  const bool lost_now = lost();
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  const std::string message = one_line(raw ? PQresultErrorMessage(raw) : PQerrorMessage(conn_));
  throw PgError(fmt::format("postgres: {}{} (in: {})", lost_now ? "connection lost: " : "",
                            message.empty() ? PQresStatus(status) : message, sql.substr(0, 60)),
                lost_now || (state && retriable_state(state)), lost_now, state ? condition_of(state) : StorageCondition::unavailable);
}

}  // namespace taskstream::storage::postgres
