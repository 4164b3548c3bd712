#pragma once
// Rate limiting of login attempts (POST /auth/token): a token bucket per key (a client
// address, an account), `per_minute` attempts in a burst, one more every 60 s / per_minute.
// Kept in its GCRA form (one "theoretical arrival time" a key, integer nanoseconds), so
// there is no floating-point drift and a bucket is one time point.
//
// Memory is bounded: at most `max_keys` buckets, each keyed by at most kMaxKeyBytes of the
// key (longer keys are cut; callers pass short keys); when a new key arrives at the cap, the
// bucket used least recently goes (a bucket that has refilled is the same as no bucket, so
// what is lost is at worst the count of a key idle the longest).
// Thread-safety: every method is safe from any thread (one mutex; each call is O(1)).
// Blocking: no.

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace taskstream::auth {

class RateLimiter final {
 public:
  using Clock = std::chrono::steady_clock;

  /// `per_minute` 0 disables the limiter (every acquire() is allowed). Throws
  /// std::invalid_argument for a negative rate or a zero `max_keys`.
  explicit RateLimiter(int per_minute, std::size_t max_keys = 65'536);

  static constexpr std::size_t kMaxKeyBytes = 256;

  struct Decision {
    bool allowed = true;
    /// When refused: whole seconds (at least 1) until the next attempt is allowed.
    std::chrono::seconds retry_after{0};
  };

  /// Takes one attempt from `key`'s bucket if one is left.
  Decision acquire(std::string_view key, Clock::time_point now = Clock::now());
  /// Gives back one attempt taken by acquire() (e.g. the attempt turned out not to count:
  /// a successful login against a limit on failures). Never above the burst size.
  void refund(std::string_view key, Clock::time_point now = Clock::now());

  int per_minute() const noexcept { return per_minute_; }
  std::size_t size() const;  ///< buckets held (tests)

 private:
  struct Bucket {
    /// When the bucket is full again; an attempt at `now` is allowed while
    /// tat - now <= burst_tolerance_ (tat <= now: full).
    Clock::time_point tat;
    std::list<std::string>::iterator lru;  ///< position in lru_ (front: most recent)
  };
  /// Keys live in lru_ (list nodes do not move); the map views them.
  const int per_minute_;
  Clock::duration interval_{};         ///< 60 s / per_minute: one attempt's worth
  Clock::duration burst_tolerance_{};  ///< interval_ * (per_minute - 1)
  const std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::list<std::string> lru_;
  std::unordered_map<std::string_view, Bucket> buckets_;
};

/// The key a client address is limited under: an IPv4 address as it is, an IPv6 address by
/// its /64 prefix (one host usually owns a whole /64, so per-/128 limits are trivially
/// evaded); an IPv4-mapped IPv6 address as the IPv4 one. Unparsable text is returned as is.
std::string address_key(std::string_view remote);

}  // namespace taskstream::auth
