#pragma once
// A small blocking pool of database connections, shared by both backends.
//
// Lifecycle: connections are opened lazily, on demand, up to `max_open`; a lease returns
// its connection on destruction unless discard() was called (a lost or poisoned one).
// The pool must outlive every lease.
// Thread-safety: acquire() may be called from any thread; a lease and its connection are
// used by one thread at a time.
// Blocking: acquire() blocks while all connections are leased (up to `wait`, then throws
// a retriable StorageError) and while a new connection is being opened.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "storage/store.hpp"

namespace taskstream::storage::impl {

template <class Conn>
class ConnectionPool final {
 public:
  using Factory = std::function<std::unique_ptr<Conn>()>;

  class Lease final {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)), conn_(std::move(other.conn_)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (pool_) pool_->give_back(std::move(conn_));
    }

    Conn& operator*() const { return *conn_; }
    Conn* operator->() const { return conn_.get(); }
    /// Closes the connection instead of returning it, e.g. after the server went away.
    void discard() { conn_.reset(); }
    /// discard(), and closes the idle connections too: when the server went away (a
    /// restart, a failover) they are dead as well, and a retry must not pick one of them.
    void discard_all() {
      conn_.reset();
      if (pool_) pool_->close_idle();
    }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  ConnectionPool(Factory factory, std::size_t max_open, std::chrono::milliseconds wait)
      : factory_(std::move(factory)), max_open_(max_open), wait_(wait) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  Lease acquire() {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, wait_, [&] { return !idle_.empty() || open_ < max_open_; })) {
      throw StorageError("all " + std::to_string(max_open_) + " database connections stayed busy for " +
                             std::to_string(wait_.count()) + " ms",
                         true, StorageCondition::unavailable);
    }
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    // Open outside the lock: connecting to a remote server can take a while and must not
    // hold up callers that could use an idle connection meanwhile.
    ++open_;
    lock.unlock();
    try {
      return Lease(this, factory_());
    } catch (...) {
      lock.lock();
      --open_;
      cv_.notify_one();
      throw;
    }
  }

 private:
  void close_idle() {
    std::vector<std::unique_ptr<Conn>> closing;
    {
      std::lock_guard lock(mutex_);
      closing.swap(idle_);
      open_ -= closing.size();
    }
    cv_.notify_all();
  }  // closed here, outside the lock

  void give_back(std::unique_ptr<Conn> conn) {
    {
      std::lock_guard lock(mutex_);
      if (conn) {
        idle_.push_back(std::move(conn));
      } else {
        --open_;
      }
    }
    cv_.notify_one();
  }

  Factory factory_;
  const std::size_t max_open_;
  const std::chrono::milliseconds wait_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::size_t open_ = 0;  ///< leased + idle
};

}  // namespace taskstream::storage::impl
