#include "auth/rate_limit.hpp"

#include <algorithm>
#include <stdexcept>

#include <boost/asio/ip/address.hpp>

namespace taskstream::auth {

RateLimiter::RateLimiter(int per_minute, std::size_t max_keys) : per_minute_(per_minute), max_keys_(max_keys) {
  if (per_minute < 0) throw std::invalid_argument("rate limit per minute must not be negative");
  if (max_keys == 0) throw std::invalid_argument("rate limiter needs room for at least one key");
  if (per_minute > 0) {
    interval_ = std::chrono::duration_cast<Clock::duration>(std::chrono::minutes(1)) / per_minute;
    burst_tolerance_ = interval_ * (per_minute - 1);
  }
}

RateLimiter::Decision RateLimiter::acquire(std::string_view key, Clock::time_point now) {
  if (per_minute_ == 0) return {};
  key = key.substr(0, kMaxKeyBytes);
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      buckets_.erase(std::string_view(lru_.back()));
      lru_.pop_back();
    }
    lru_.emplace_front(key);
    it = buckets_.emplace(std::string_view(lru_.front()), Bucket{now, lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  auto& b = it->second;
  const auto tat = std::max(b.tat, now);
  const auto over = tat - now - burst_tolerance_;
  if (over > Clock::duration::zero()) {
    // Whole seconds, rounded up: Retry-After 0 would invite an immediate retry.
    const auto secs = std::chrono::ceil<std::chrono::seconds>(over);
    return {false, std::max(secs, std::chrono::seconds(1))};
  }
  b.tat = tat + interval_;
  return {};
}

void RateLimiter::refund(std::string_view key, Clock::time_point now) {
  if (per_minute_ == 0) return;
  key = key.substr(0, kMaxKeyBytes);
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return;  // evicted meanwhile: it starts full anyway
  it->second.tat = std::max(it->second.tat - interval_, now);
}

std::size_t RateLimiter::size() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

std::string address_key(std::string_view remote) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(remote), ec);
  if (ec) return std::string(remote);
  if (address.is_v4()) return address.to_string();
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace taskstream::auth
