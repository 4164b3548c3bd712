// The login rate limiter: burst, refill, Retry-After, refunds, bounded memory, threads, and
// the address key. Every test drives the clock by hand: nothing here waits.

#include "auth/rate_limit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "config/settings.hpp"

using namespace taskstream::auth;
using namespace std::chrono_literals;

namespace {
const RateLimiter::Clock::time_point t0{};  // the clock's epoch: any fixed point will do
}

TEST(RateLimiter, AllowsABurstOfPerMinuteThenRefusesWithRetryAfter) {
  RateLimiter limiter(5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.acquire("k", t0).allowed) << i;
  auto d = limiter.acquire("k", t0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 12s) << "5 a minute: one back every 12 s";
  // Refused attempts do not dig the hole deeper.
  EXPECT_EQ(limiter.acquire("k", t0).retry_after, 12s);
  EXPECT_EQ(limiter.acquire("k", t0 + 6s).retry_after, 6s);
  EXPECT_EQ(limiter.acquire("k", t0 + 11500ms).retry_after, 1s) << "rounded up, never 0";
  EXPECT_TRUE(limiter.acquire("k", t0 + 12s).allowed);
  EXPECT_FALSE(limiter.acquire("k", t0 + 12s).allowed);
}

TEST(RateLimiter, RefillsAtPerMinuteOverSixtySecondsUpToTheBurst) {
  RateLimiter limiter(6);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(limiter.acquire("k", t0).allowed);
  EXPECT_FALSE(limiter.acquire("k", t0 + 9s).allowed);
  EXPECT_TRUE(limiter.acquire("k", t0 + 10s).allowed) << "one every 10 s";
  EXPECT_FALSE(limiter.acquire("k", t0 + 10s).allowed);
  // Idle for an hour: back to a full burst, not more.
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += limiter.acquire("k", t0 + 1h).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 6);
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter limiter(2);
  ASSERT_TRUE(limiter.acquire("a", t0).allowed);
  ASSERT_TRUE(limiter.acquire("a", t0).allowed);
  EXPECT_FALSE(limiter.acquire("a", t0).allowed);
  EXPECT_TRUE(limiter.acquire("b", t0).allowed);
  EXPECT_TRUE(limiter.acquire("b", t0).allowed);
  EXPECT_FALSE(limiter.acquire("b", t0).allowed);
}

TEST(RateLimiter, RefundGivesBackOneAttemptButNeverAboveTheBurst) {
  RateLimiter limiter(3);
  // Successes refunded: they never use the budget up (the per-account, failures-only use).
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(limiter.acquire("k", t0).allowed) << i;
    limiter.refund("k", t0);
  }
  // Refunds on a full bucket do not raise it above the burst.
  for (int i = 0; i < 10; ++i) limiter.refund("k", t0);
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += limiter.acquire("k", t0).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 3);
  limiter.refund("unknown", t0);  // no bucket: nothing happens
  EXPECT_EQ(limiter.size(), 1u);
}

TEST(RateLimiter, ZeroDisablesIt) {
  RateLimiter limiter(0);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.acquire("k", t0).allowed);
  EXPECT_EQ(limiter.size(), 0u);
  EXPECT_THROW(RateLimiter(-1), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1, 0), std::invalid_argument);
}

TEST(RateLimiter, MemoryIsBoundedByEvictingTheLeastRecentlyUsedKey) {
  RateLimiter limiter(1, 3);
  ASSERT_TRUE(limiter.acquire("a", t0).allowed);
  ASSERT_TRUE(limiter.acquire("b", t0).allowed);
  ASSERT_TRUE(limiter.acquire("c", t0).allowed);
  EXPECT_FALSE(limiter.acquire("a", t0).allowed);  // "a" is now the most recent
  ASSERT_TRUE(limiter.acquire("d", t0).allowed);   // evicts "b", the least recent
  EXPECT_EQ(limiter.size(), 3u);
  EXPECT_FALSE(limiter.acquire("a", t0).allowed) << "a survived";
  EXPECT_FALSE(limiter.acquire("c", t0).allowed) << "c survived";
  EXPECT_FALSE(limiter.acquire("d", t0).allowed) << "d survived";
  EXPECT_TRUE(limiter.acquire("b", t0).allowed) << "b was evicted: a fresh bucket";

  RateLimiter many(1, 1000);
  for (int i = 0; i < 100'000; ++i) many.acquire("key-" + std::to_string(i), t0);
  EXPECT_EQ(many.size(), 1000u);
}

TEST(RateLimiter, LongKeysAreCut) {
  RateLimiter limiter(1);
  const std::string base(RateLimiter::kMaxKeyBytes, 'x');
  ASSERT_TRUE(limiter.acquire(base + "one", t0).allowed);
  EXPECT_FALSE(limiter.acquire(base + "two", t0).allowed) << "same first kMaxKeyBytes: same bucket";
  EXPECT_TRUE(limiter.acquire(std::string(1 << 20, 'y'), t0).allowed);
  EXPECT_EQ(limiter.size(), 2u);
}

TEST(RateLimiter, ConcurrentCallersNeverGetMoreThanTheBurst) {
  RateLimiter limiter(100);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (limiter.acquire("shared", t0).allowed) ++allowed;
        limiter.acquire("own-" + std::to_string(i % 50), t0);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 100);
}

TEST(RateLimiter, AClockThatStepsBackDoesNotRefill) {
  RateLimiter limiter(1);
  ASSERT_TRUE(limiter.acquire("k", t0 + 60s).allowed);
  EXPECT_FALSE(limiter.acquire("k", t0).allowed);
  EXPECT_FALSE(limiter.acquire("k", t0 + 60s).allowed);
  EXPECT_TRUE(limiter.acquire("k", t0 + 120s).allowed);
}

TEST(AddressKey, Ipv4AsIsIpv6ByItsSlash64) {
  EXPECT_EQ(address_key("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(address_key("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(address_key("::ffff:203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:2:ffff::9"));
  EXPECT_NE(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
  EXPECT_EQ(address_key("not an address"), "not an address");
  EXPECT_EQ(address_key(""), "");
}

TEST(RateLimitSettings, DefaultsAndBounds) {
  using taskstream::config::ConfigError;
  using taskstream::config::Settings;
  auto s = Settings::load({});
  EXPECT_EQ(s.auth_rate_limit_per_address, 20);
  EXPECT_EQ(s.auth_rate_limit_per_account, 10);
  s = Settings::load({{"AUTH_RATE_LIMIT_PER_ADDRESS", "0"}, {"AUTH_RATE_LIMIT_PER_ACCOUNT", "3"}});
  EXPECT_EQ(s.auth_rate_limit_per_address, 0);
  EXPECT_EQ(s.auth_rate_limit_per_account, 3);
  EXPECT_THROW(Settings::load({{"AUTH_RATE_LIMIT_PER_ADDRESS", "-1"}}), ConfigError);
  EXPECT_THROW(Settings::load({{"AUTH_RATE_LIMIT_PER_ACCOUNT", "lots"}}), ConfigError);
  bool described = false;
  for (const auto& [name, value] : s.describe())
    if (name == "AUTH_RATE_LIMIT_PER_ACCOUNT") described = value == "3";
  EXPECT_TRUE(described);
}
