// Argon2id password hashes (libsodium). Most cases use the minimal cost to stay fast; one
// checks that the default is the interactive Argon2id setting.

#include "auth/password.hpp"

#include <gtest/gtest.h>

using namespace taskstream::auth;

TEST(Password, DefaultHashIsInteractiveArgon2id) {
  const auto hash = hash_password("correct horse battery staple");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_NE(hash.find("m=65536,t=2"), std::string::npos) << hash;
  EXPECT_TRUE(verify_password(hash, "correct horse battery staple"));
}

TEST(Password, VerifyAcceptsRightAndRefusesWrongPassword) {
  const auto hash = hash_password("s3cret-pass", PasswordParams::minimal());
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_TRUE(verify_password(hash, "s3cret-pass"));
  EXPECT_FALSE(verify_password(hash, "s3cret-pasS"));
  EXPECT_FALSE(verify_password(hash, ""));
}

TEST(Password, SamePasswordHashesDifferently) {
  const auto a = hash_password("same password", PasswordParams::minimal());
  const auto b = hash_password("same password", PasswordParams::minimal());
  EXPECT_NE(a, b);  // fresh salt each time
  EXPECT_TRUE(verify_password(a, "same password"));
  EXPECT_TRUE(verify_password(b, "same password"));
}

TEST(Password, MalformedHashIsRefusedNotThrown) {
  EXPECT_FALSE(verify_password("", "x"));
  EXPECT_FALSE(verify_password("$argon2id$garbage", "x"));
  EXPECT_FALSE(verify_password(std::string(1000, 'a'), "x"));
}

TEST(Password, PasswordWithNulBytesIsHashedWhole) {
  const std::string with_nul{"ab\0cd", 5};
  const auto hash = hash_password(with_nul, PasswordParams::minimal());
  EXPECT_TRUE(verify_password(hash, with_nul));
  EXPECT_FALSE(verify_password(hash, "ab"));
}
