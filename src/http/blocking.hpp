#pragma once
// Running blocking work (the database, librdkafka flushes) off the threads that serve
// requests: `co_await offload(pool, fn)` runs fn on `pool` and resumes the coroutine on
// its own executor with fn's result (or exception).
//
// Blocking: never blocks the calling thread. fn runs on one of the pool's threads; the pool
// must outlive the co_await (a pool that is stopped or joined never runs fn, and the
// awaiting coroutine then stays suspended until its io_context is destroyed).

#include <optional>
#include <type_traits>
#include <utility>  // Boost 1.74's awaitable.hpp misses it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace taskstream::http {

/// The result is returned by value (a reference result is copied): the caller resumes on
/// another thread, after fn's stack frame is gone.
template <typename F>
auto offload(boost::asio::thread_pool& pool, F fn)
    -> boost::asio::awaitable<std::remove_cvref_t<std::invoke_result_t<F&>>> {
  using R = std::remove_cvref_t<std::invoke_result_t<F&>>;
  if constexpr (std::is_void_v<R>) {
    co_await boost::asio::co_spawn(
        pool.get_executor(),
        [fn = std::move(fn)]() mutable -> boost::asio::awaitable<void> {
          fn();
          co_return;
        },
        boost::asio::use_awaitable);
  } else {
    // Boost 1.74's co_spawn default-constructs the result on its exception path, so carry
    // it in an optional: results without a default constructor work too.
    auto result = co_await boost::asio::co_spawn(
        pool.get_executor(),
        [fn = std::move(fn)]() mutable -> boost::asio::awaitable<std::optional<R>> {
          co_return std::optional<R>{fn()};
        },
        boost::asio::use_awaitable);
    co_return std::move(*result);
  }
}

}  // namespace taskstream::http
