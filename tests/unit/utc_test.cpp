#include <gtest/gtest.h>

#include "events/events.hpp"

using taskstream::events::to_utc_millis;

TEST(UtcMillis, NormalisesOffsetsAndFractions) {
  EXPECT_EQ(to_utc_millis("2026-12-01T17:00:00Z"), "2026-12-01T17:00:00.000Z");
  EXPECT_EQ(to_utc_millis("2026-12-01T17:00:00.123456+00:00"), "2026-12-01T17:00:00.123Z");
  EXPECT_EQ(to_utc_millis("2026-12-01T19:30:00+02:30"), "2026-12-01T17:00:00.000Z");
  EXPECT_EQ(to_utc_millis("2026-12-31T23:30:00-01:00"), "2027-01-01T00:30:00.000Z");
  EXPECT_EQ(to_utc_millis("2026-12-01t17:00:00.5z"), "2026-12-01T17:00:00.500Z");
  EXPECT_FALSE(to_utc_millis("tomorrow"));
  EXPECT_FALSE(to_utc_millis("2026-02-30T00:00:00Z"));
}

TEST(Utc, UnixMillisCountFromTheEpochEitherSideOfIt) {
  using taskstream::events::to_unix_millis;
  EXPECT_EQ(to_unix_millis("1970-01-01T00:00:01.250Z"), 1250);
  EXPECT_EQ(to_unix_millis("1970-01-01T02:00:00+02:00"), 0);
  EXPECT_EQ(to_unix_millis("1969-12-31T23:59:59.500Z"), -500);
  EXPECT_EQ(to_utc_millis("1969-12-31T23:59:59.500Z"), "1969-12-31T23:59:59.500Z");
  EXPECT_FALSE(to_unix_millis("yesterday"));
}
