#pragma once
// What both backends share and must agree on: cursor format, limits, email keys and the
// defaults a store fills into outbox records. Internal to src/storage.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.hpp"

namespace taskstream::storage::impl {

/// Position after the last item of a page: the (created_at, id) keyset of that item.
struct CursorKey {
  std::string created_at;
  std::string id;
};

/// Opaque to callers: base64url (no padding) of "1\n<created_at>\n<id>". The leading
/// version lets the format change without misreading cursors clients still hold.
std::string encode_cursor(const Task& last);
/// Throws StorageError (not retriable) when `cursor` is not one encode_cursor made.
CursorKey decode_cursor(std::string_view cursor);

/// list_tasks page size: the interface promises 1..100, whatever the caller asks.
int clamp_page_limit(int limit) noexcept;
/// Outbox batch sizes: at least 1, at most 10000 (a relay asking for more is a bug).
int clamp_batch_limit(int limit) noexcept;

/// The key that makes emails unique case-insensitively. ASCII-only folding, done here
/// rather than with SQL lower() so SQLite and PostgreSQL (whose lower() depends on the
/// database locale) agree byte for byte.
std::string email_key(std::string_view email);

/// Fills what the EventFactory may leave empty: user_id, key (the user id), seq,
/// created_at (`now`) and event_id (a fresh UUID).
void fill_outbox_defaults(OutboxRecord& record, const std::string& user_id, std::int64_t seq, const std::string& now);

/// Forces the fields a mutate callback must not change back to their stored values.
void keep_identity(const Task& before, Task& after);

}  // namespace taskstream::storage::impl
