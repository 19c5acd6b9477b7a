// A new message's headline (core/session/headline.h) from raw header values:
// what a `--outband-payload full` wake-up shows of it.
#include "core/session/headline.h"

#include <string>

#include "gtest/gtest.h"

namespace pimap::session {
namespace {

TEST(MakeHeadlineTest, DecodesStripsAndCuts) {
  auto h = MakeHeadline("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n =?UTF-8?Q?_aus_Bonn?=",
                        "=?ISO-8859-1?Q?J=FCrgen?= <j@example.org>");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->subject, "Grüße aus Bonn");
  EXPECT_EQ(h->from, "Jürgen <j@example.org>");
  // CR/LF never survive, whatever the source.
  h = MakeHeadline("one\r\ntwo", "a\nb", /*subject_decoded=*/true);
  EXPECT_EQ(h->subject, "one two");
  EXPECT_EQ(h->from, "a b");
  std::string long_subject;
  for (int i = 0; i < 100; ++i) long_subject += "€";  // 300 bytes
  h = MakeHeadline(long_subject, "x@example.org");
  EXPECT_EQ(h->subject.size(), 255u);  // 85 whole characters
  EXPECT_EQ(h->subject, long_subject.substr(0, 255));
}

TEST(MakeHeadlineTest, ASourceThatDecodedIsNotDecodedTwice) {
  auto h = MakeHeadline("=?UTF-8?Q?a?=", "=?UTF-8?Q?b?=",
                        /*subject_decoded=*/true);
  EXPECT_EQ(h->subject, "=?UTF-8?Q?a?=");
  EXPECT_EQ(h->from, "b");  // Dovecot's push gives the raw From
}

TEST(MakeHeadlineTest, NothingToShowIsNull) {
  EXPECT_EQ(MakeHeadline("", ""), nullptr);
  EXPECT_EQ(MakeHeadline(" \r\n ", "\t"), nullptr);
  EXPECT_NE(MakeHeadline("", "x"), nullptr);
}

}  // namespace
}  // namespace pimap::session
