#pragma once
// Private: building librdkafka handles from Properties, with logs routed to spdlog.
//
// Each handle carries its own context as librdkafka's opaque (rd_kafka_conf_set_opaque):
// the last error its callbacks saw, why a certificate was refused, its log rate windows,
// and the owner its creator named. Callbacks reach it through the opaque, never through a
// process-wide table; it lives exactly as long as the handle.
// Thread-safety: the callbacks run on librdkafka's threads; every function here is
// thread-safe. Blocking: make_client and the deleters block only inside librdkafka.

#include <librdkafka/rdkafka.h>

#include <functional>
#include <memory>
#include <optional>

#include "kafka/client_config.hpp"
#include "kafka/error.hpp"

namespace taskstream::kafka::impl {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const noexcept;
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

/// A new client of `type` with `props`; `customize` may set callbacks on the conf, but not
/// its opaque (that is the client's context): those callbacks find `owner` with
/// callback_owner(opaque). Throws KafkaException (INVALID_CONFIG) naming the refused
/// property, never its value.
Handle make_client(rd_kafka_type_t type, const Properties& props, const std::function<void(rd_kafka_conf_t*)>& customize = {},
                   void* owner = nullptr);

/// The `owner` given to make_client, from the opaque librdkafka hands a callback.
void* callback_owner(void* opaque) noexcept;

/// Destroys a consumer without leaving its group or committing (the group coordinator may
/// be unreachable from a wedged client): for replacing a client, never for a clean stop.
void destroy_without_close(Handle handle) noexcept;

/// The last non-retriable error (authentication, SSL, ...) the client reported through its
/// error callback, if any: turns a bare timeout into the reason behind it.
std::optional<Error> last_client_error(const rd_kafka_t* rk);

/// An Error from a librdkafka error object or code.
Error make_error(rd_kafka_resp_err_t err, std::string_view context = {});
Error make_error(const rd_kafka_error_t* err, std::string_view context = {});

}  // namespace taskstream::kafka::impl
