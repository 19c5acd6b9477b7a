// The gateway's mirror of the store's user-name rule
// (core/imap/user_name_format).
#include "core/imap/user_name_format.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::imap {
namespace {

using ::testing::HasSubstr;

std::string Canonical(absl::string_view spec, absl::string_view user) {
  absl::StatusOr<UserNameFormat> format = UserNameFormat::Parse(spec);
  EXPECT_TRUE(format.ok()) << format.status();
  if (!format.ok()) return "";
  absl::StatusOr<std::string> name = format->Apply(user);
  EXPECT_TRUE(name.ok()) << name.status();
  return name.ok() ? *name : "";
}

TEST(UserNameFormatTest, DefaultIsDovecotsDefault) {
  UserNameFormat format;
  EXPECT_FALSE(format.identity());
  EXPECT_EQ(format.spec(), "%Lu");
  EXPECT_EQ(*format.Apply("Alice@Example.ORG"), "alice@example.org");
}

TEST(UserNameFormatTest, PercentUKeepsTheName) {
  absl::StatusOr<UserNameFormat> format = UserNameFormat::Parse("%u");
  ASSERT_TRUE(format.ok());
  EXPECT_TRUE(format->identity());
  EXPECT_EQ(*format->Apply("Alice@Example.ORG"), "Alice@Example.ORG");
  EXPECT_FALSE(UserNameFormat::Parse("%Lu")->identity());
}

TEST(UserNameFormatTest, DovecotsDefaultLowercasesEverything) {
  EXPECT_EQ(Canonical("%Lu", "Alice@Example.ORG"), "alice@example.org");
  EXPECT_EQ(Canonical("%L{user}", "BOB"), "bob");
}

TEST(UserNameFormatTest, UserAndDomainParts) {
  EXPECT_EQ(Canonical("%Ln", "Alice@Example.org"), "alice");
  EXPECT_EQ(Canonical("%n", "alice"), "alice");
  EXPECT_EQ(Canonical("%Ln@%Ld", "Alice@Example.org"), "alice@example.org");
  EXPECT_EQ(Canonical("%{username}+%U{domain}", "a@b.c"), "a+B.C");
  // Dovecot splits at the first '@'.
  EXPECT_EQ(Canonical("%n|%d", "a@b@c"), "a|b@c");
  // A format may add a fixed domain; "%%" is a percent sign.
  EXPECT_EQ(Canonical("%Ln@example.org", "Alice@Other"), "alice@example.org");
  EXPECT_EQ(Canonical("%u%%", "x"), "x%");
}

TEST(UserNameFormatTest, OnlyAsciiLettersChangeCase) {
  EXPECT_EQ(Canonical("%Lu", "J\xC3\x96RG"), "j\xC3\x96rg");
  EXPECT_EQ(Canonical("%Uu", "j\xC3\xB6rg"), "J\xC3\xB6RG");
}

TEST(UserNameFormatTest, BadFormatsAreRefusedWithThePosition) {
  struct Case {
    const char* spec;
    const char* why;
  } cases[] = {
      {"%x", "position 1: unknown variable \"x\""},
      {"a%Lq", "position 2: unknown variable \"q\""},
      {"%", "'%' ends the format"},
      {"%L", "'%' ends the format"},
      {"%{user", "without '}'"},
      {"%{}", "unknown variable \"\""},
      {"%d", "names no user"},
      {"example", "names no user"},
      {"", "names no user"},
      {"%u%u%u%u%u%u%u%u%u%u%u%u%u%u%u%u%u", "more than 16 variables"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<UserNameFormat> format = UserNameFormat::Parse(c.spec);
    ASSERT_FALSE(format.ok()) << c.spec;
    EXPECT_EQ(format.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(format.status().message(), HasSubstr(c.why)) << c.spec;
  }
}

TEST(UserNameFormatTest, ANameTheRuleEmptiesIsRefused) {
  absl::StatusOr<UserNameFormat> format =
      UserNameFormat::Parse("%n@example.org");
  ASSERT_TRUE(format.ok());
  EXPECT_FALSE(format->Apply("@other.org").ok());
  EXPECT_FALSE(UserNameFormat::Parse("%n")->Apply("@x").ok());
  EXPECT_FALSE(UserNameFormat().Apply("").ok());
  EXPECT_FALSE(UserNameFormat::Parse("%u")->Apply("").ok());
  EXPECT_TRUE(UserNameFormat::Parse("%n")->Apply("a@").ok());
}

}  // namespace
}  // namespace pimap::imap
