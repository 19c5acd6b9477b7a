// P-IMAP login name tests.
#include "core/imap/login_name.h"

#include <string>

#include "gtest/gtest.h"

namespace pimap::imap {
namespace {

struct Case {
  std::string login;
  std::string user;
  std::string device;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.login; }

class LoginNameTest : public ::testing::TestWithParam<Case> {};

TEST_P(LoginNameTest, Splits) {
  absl::StatusOr<LoginName> n = ParseLoginName(GetParam().login);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->user, GetParam().user);
  EXPECT_EQ(n->device, GetParam().device);
  EXPECT_EQ(n->has_device(), !GetParam().device.empty());
}

INSTANTIATE_TEST_SUITE_P(
    All, LoginNameTest,
    ::testing::Values(Case{"joe#P6505551234@foo.com", "joe@foo.com",
                           "P6505551234"},
                      Case{"joe#P65", "joe", "P65"},
                      Case{"a#b#c@d", "a#b@d", "c"}, Case{"alice", "alice", ""},
                      Case{"alice@example.org", "alice@example.org", ""},
                      Case{"a@b@c.org", "a@b@c.org", ""},
                      Case{"a@b#dev@c.org", "a@b@c.org", "dev"},
                      Case{"joe@x#dev", "joe@x#dev", ""},
                      Case{"John Smith#d1", "John Smith", "d1"}));

TEST(LoginNameErrorsTest, Rejects) {
  for (const std::string& bad :
       {std::string(""), std::string("#dev"), std::string("#dev@x.org"),
        std::string("joe#"), std::string("joe#@x.org"), std::string("joe@"),
        std::string("joe#d@"), std::string("@x.org"), std::string("jo\0e", 4),
        std::string("joe\r\n"), std::string("joe\x7f")}) {
    EXPECT_FALSE(ParseLoginName(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace pimap::imap
